//! Four organisations on four "hosts": each replica in a Linux network namespace of its
//! own with its own address, joined by veth pairs to a switch (a bridge in a fifth
//! namespace). The organisations run the key ceremony in separate folders (`org new`,
//! then `genesis` from the public files only), write records, lose one host's link and
//! another's process, and end with four chains that verify.
//!
//! Needs root (creating namespaces). `.ci/run` sets `MEDCHAIN_REQUIRE_NETNS=1`, so in CI
//! the test fails rather than skips when it cannot create them. Every address is inside
//! namespaces this test creates, and they are all deleted when it ends, passed or not.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{BIN, SERIAL};

/// Names short enough for interface names (15 bytes) and unique to this run.
struct Net {
    tag: String,
}

impl Net {
    fn ns(&self, i: usize) -> String {
        format!("{}n{i}", self.tag)
    }
    fn switch(&self) -> String {
        format!("{}sw", self.tag)
    }
    /// The switch's end of host i's veth pair.
    fn port(&self, i: usize) -> String {
        format!("{}p{i}", self.tag)
    }
    fn addr(i: usize) -> String {
        format!("10.231.0.{}", i + 1)
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for i in 0..4 {
            let _ = ip(&["netns", "del", &self.ns(i)]);
        }
        let _ = ip(&["netns", "del", &self.switch()]);
    }
}

fn ip(args: &[&str]) -> Output {
    Command::new("ip")
        .args(args)
        .output()
        .expect("ip (iproute2)")
}

fn must(args: &[&str]) {
    let out = ip(args);
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A switch namespace with a bridge, four host namespaces each with `eth0` on it.
fn build_net() -> Option<Net> {
    let tag = format!("mc{}", std::process::id() % 100_000);
    let probe = ip(&["netns", "add", &format!("{tag}sw")]);
    if !probe.status.success() {
        let why = String::from_utf8_lossy(&probe.stderr).to_string();
        if std::env::var_os("MEDCHAIN_REQUIRE_NETNS").is_some() {
            panic!("cannot create a network namespace: {why}");
        }
        eprintln!("skipped: cannot create network namespaces here ({why})");
        return None;
    }
    let net = Net { tag };
    let sw = net.switch();
    must(&["-n", &sw, "link", "add", "br0", "type", "bridge"]);
    must(&["-n", &sw, "link", "set", "br0", "up"]);
    for i in 0..4 {
        let ns = net.ns(i);
        let port = net.port(i);
        must(&["netns", "add", &ns]);
        must(&[
            "-n", &sw, "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns", &ns,
        ]);
        must(&["-n", &sw, "link", "set", &port, "master", "br0"]);
        must(&["-n", &sw, "link", "set", &port, "up"]);
        must(&[
            "-n",
            &ns,
            "addr",
            "add",
            &format!("{}/24", Net::addr(i)),
            "dev",
            "eth0",
        ]);
        must(&["-n", &ns, "link", "set", "eth0", "up"]);
        must(&["-n", &ns, "link", "set", "lo", "up"]);
    }
    Some(net)
}

/// `medchain ARGS` inside namespace `ns`.
fn in_ns(ns: &str, args: &[&str]) -> Command {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", ns, BIN]).args(args);
    c
}

fn run_ok(mut c: Command, what: &str) -> String {
    let out = c.output().expect(what);
    assert!(
        out.status.success(),
        "{what}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// The committed height replica i reports over HTTPS (a non-loopback address, so the
/// node serves the certificate `org new` made), read from inside its own namespace by a
/// client that trusts that certificate only.
fn height(net: &Net, dirs: &[PathBuf], i: usize) -> Option<u64> {
    let url = format!("https://{}:5000/api/chain/head", Net::addr(i));
    let ca = dirs[i].join("tls/api.crt");
    let out = Command::new("ip")
        .args(["netns", "exec", &net.ns(i), "python3", "-c"])
        .arg(format!(
            "import json,ssl,urllib.request;ctx=ssl.create_default_context(cafile={:?});\
             print(json.load(urllib.request.urlopen('{url}',context=ctx,timeout=2))['height'])",
            ca.display().to_string()
        ))
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

fn wait_height(net: &Net, dirs: &[PathBuf], i: usize, at_least: u64, timeout: Duration) -> u64 {
    let started = Instant::now();
    while started.elapsed() < timeout {
        if let Some(h) = height(net, dirs, i) {
            if h >= at_least {
                return h;
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!(
        "replica {i} did not reach height {at_least} in {timeout:?} (at {:?})",
        height(net, dirs, i)
    );
}

struct Hosts {
    net: Net,
    dirs: Vec<PathBuf>,
    nodes: Vec<Option<Child>>,
}

impl Hosts {
    fn start(&mut self, i: usize) {
        let log = std::fs::File::create(self.dirs[i].join("node.log")).expect("log");
        let config = self.dirs[i].join("node.toml");
        let child = in_ns(&self.net.ns(i), &["node", "--config"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawn node");
        self.nodes[i] = Some(child);
    }
    fn stop(&mut self, i: usize) {
        if let Some(mut c) = self.nodes[i].take() {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(10) {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
    fn kill9(&mut self, i: usize) {
        if let Some(mut c) = self.nodes[i].take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
    /// `medchain load` through host i's own replica, as its operator.
    fn load(&self, i: usize, records: u64, start_id: u64) {
        let config = self.dirs[i].join("node.toml");
        let config = config.to_str().expect("utf-8 path");
        run_ok(
            in_ns(
                &self.net.ns(i),
                &[
                    "load",
                    "--config",
                    config,
                    "--records",
                    &records.to_string(),
                    "--start-id",
                    &start_id.to_string(),
                    "--concurrency",
                    "4",
                    "--timeout-s",
                    "60",
                ],
            ),
            "load",
        );
    }
    fn log(&self, i: usize) -> String {
        std::fs::read_to_string(self.dirs[i].join("node.log")).unwrap_or_default()
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        for i in 0..4 {
            self.kill9(i);
        }
    }
}

/// Each organisation's ceremony step in its own folder; the genesis from the four public
/// files; each organisation's copy of it.
fn ceremony(root: &Path) -> Vec<PathBuf> {
    let names = [
        "St Mary's Hospital",
        "Riverside Clinic",
        "City Pharmacy",
        "Northwind Insurance",
    ];
    let mut dirs = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let dir = root.join(format!("host{i}"));
        let mut c = Command::new(BIN);
        c.args(["org", "new", "--dir"])
            .arg(&dir)
            .args(["--name", name])
            .args(["--p2p", &format!("{}:7000", Net::addr(i))])
            .args(["--http", &format!("{}:5000", Net::addr(i))]);
        run_ok(c, "org new");
        dirs.push(dir);
    }
    // What the assembler receives: the public files only, copied out of the folders.
    let public = root.join("public");
    std::fs::create_dir_all(&public).expect("public");
    let mut c = Command::new(BIN);
    c.args(["genesis", "--out"])
        .arg(public.join("genesis.toml"));
    for (i, d) in dirs.iter().enumerate() {
        let copy = public.join(format!("org{i}.toml"));
        std::fs::copy(d.join("org.toml"), &copy).expect("copy org.toml");
        let text = std::fs::read_to_string(&copy).expect("org.toml");
        assert!(!text.contains("secret"), "org.toml is public: {text}");
        c.arg(copy);
    }
    run_ok(c, "genesis");
    for d in &dirs {
        std::fs::copy(public.join("genesis.toml"), d.join("genesis.toml")).expect("copy genesis");
    }
    dirs
}

#[test]
fn four_organisations_on_four_hosts_survive_a_partition_and_a_crash() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(net) = build_net() else {
        return;
    };
    let work = tempfile::tempdir().expect("tempdir");
    let dirs = ceremony(work.path());
    let mut hosts = Hosts {
        net,
        dirs,
        nodes: (0..4).map(|_| None).collect(),
    };
    for i in 0..4 {
        hosts.start(i);
    }
    for i in 0..4 {
        wait_height(&hosts.net, &hosts.dirs, i, 0, Duration::from_secs(30));
    }

    // All four commit together.
    hosts.load(0, 40, 1);
    let h1 = wait_height(&hosts.net, &hosts.dirs, 3, 1, Duration::from_secs(30));

    // Host 3's link goes down: the other three keep committing, through host 1 this time.
    must(&[
        "-n",
        &hosts.net.switch(),
        "link",
        "set",
        &hosts.net.port(3),
        "down",
    ]);
    hosts.load(1, 40, 1);
    let during = height(&hosts.net, &hosts.dirs, 0).expect("replica 0 answers");
    assert!(
        during > h1,
        "no commits while host 3 was cut off ({during} <= {h1})"
    );
    assert!(
        height(&hosts.net, &hosts.dirs, 3).unwrap_or(0) < during,
        "host 3 could not have seen those commits"
    );

    // Healed: host 3 catches up.
    must(&[
        "-n",
        &hosts.net.switch(),
        "link",
        "set",
        &hosts.net.port(3),
        "up",
    ]);
    wait_height(&hosts.net, &hosts.dirs, 3, during, Duration::from_secs(60));

    // Host 2's process dies (SIGKILL): the others keep committing through host 0; it
    // restarts and catches up.
    hosts.kill9(2);
    hosts.load(0, 40, 41);
    let after = height(&hosts.net, &hosts.dirs, 0).expect("replica 0 answers");
    assert!(after > during, "no commits while host 2 was down");
    hosts.start(2);
    wait_height(&hosts.net, &hosts.dirs, 2, after, Duration::from_secs(60));
    wait_height(&hosts.net, &hosts.dirs, 3, after, Duration::from_secs(60));

    eprintln!("heights: first load {h1}, during the partition {during}, after the crash {after}");
    // Every chain verifies offline against the genesis keys.
    for i in 0..4 {
        hosts.stop(i);
    }
    for i in 0..4 {
        let config = hosts.dirs[i].join("node.toml");
        let out = Command::new(BIN)
            .args(["verify", "--config"])
            .arg(&config)
            .output()
            .expect("verify");
        assert!(
            out.status.success(),
            "host {i} does not verify: {}{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            common::tail(&hosts.log(i))
        );
    }
    // No host's folder holds another's private keys: each holds exactly its own.
    for (i, d) in hosts.dirs.iter().enumerate() {
        let mut keys: Vec<String> = std::fs::read_dir(d.join("keys"))
            .expect("keys")
            .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().to_string()))
            .collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "api-tls.key",
                "encryption.key",
                "gateway.key",
                "operator.key",
                "replica.key"
            ],
            "host {i}"
        );
    }
}
