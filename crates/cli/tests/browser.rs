//! The web UI in a real browser: a four-replica demo cluster of `medchain node`
//! processes on free ports, then `node tests-web/ui.test.mjs` drives Debian's Chromium
//! through every role's dashboard against replica 0 (see that script for the steps).
//! Needs /usr/bin/chromium and `npm ci` in tests-web/ (`.ci/run` installs both); a
//! machine without them fails here, with the commands to run, rather than skipping.
//! Screenshots go to $TMPDIR/medchain-ui-screenshots (kept after a failure) unless
//! MEDCHAIN_SCREENSHOTS names a directory; the committed docs/screenshots come from
//! running the script by hand.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_medchain");
/// The whole browser run, all steps.
const UI_TIMEOUT: Duration = Duration::from_secs(180);

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A base port with base..base+4 and base+100..base+104 free on 127.0.0.1.
fn free_base() -> (u16, u16) {
    let seed = u64::from(std::process::id())
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
    for attempt in 0..200u64 {
        let base = 20_000 + ((seed.wrapping_mul(7919) + attempt * 97) % 40_000) as u16;
        let ok = (0..4).all(|i| {
            TcpListener::bind(("127.0.0.1", base + i)).is_ok()
                && TcpListener::bind(("127.0.0.1", base + 100 + i)).is_ok()
        });
        if ok {
            return (base, base + 100);
        }
    }
    panic!("no free ports");
}

struct Cluster {
    dir: tempfile::TempDir,
    http: u16,
    nodes: Vec<Child>,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for c in &mut self.nodes {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Cluster {
    fn start() -> Cluster {
        let dir = tempfile::tempdir().expect("tempdir");
        let (http, p2p) = free_base();
        let out = Command::new(BIN)
            .args(["init", "--replicas", "4", "--demo", "--dir"])
            .arg(dir.path())
            .args(["--http-port", &http.to_string()])
            .args(["--p2p-port", &p2p.to_string()])
            .output()
            .expect("run medchain init");
        assert!(
            out.status.success(),
            "init: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut c = Cluster {
            dir,
            http,
            nodes: Vec::new(),
        };
        for i in 0..4 {
            let log =
                std::fs::File::create(c.dir.path().join(format!("node{i}.log"))).expect("log");
            let child = Command::new(BIN)
                .args(["node", "--config"])
                .arg(c.dir.path().join(format!("node{i}.toml")))
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("log"))
                .stderr(log)
                .spawn()
                .expect("spawn node");
            c.nodes.push(child);
        }
        for i in 0..4 {
            c.wait_healthy(i);
        }
        c
    }

    /// (status, body) of a GET, or None if the replica does not answer.
    fn get(&self, i: usize, path: &str) -> Option<(u16, String)> {
        let mut s = TcpStream::connect(("127.0.0.1", self.http + i as u16)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        )
        .ok()?;
        let mut text = String::new();
        s.read_to_string(&mut text).ok()?;
        let status = text.split(' ').nth(1)?.parse().ok()?;
        Some((
            status,
            text.split("\r\n\r\n").nth(1).unwrap_or("").to_string(),
        ))
    }

    fn wait_healthy(&self, i: usize) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if matches!(self.get(i, "/healthz"), Some((200, _))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("replica {i} not healthy in 30 s:\n{}", self.log(i));
    }

    fn log(&self, i: usize) -> String {
        let text = std::fs::read_to_string(self.dir.path().join(format!("node{i}.log")))
            .unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

/// Chromium and playwright-core must be installed; say how if they are not.
fn check_prerequisites() -> PathBuf {
    let chromium = std::env::var_os("CHROMIUM_PATH")
        .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    let script = repo().join("tests-web/ui.test.mjs");
    let mut missing = Vec::new();
    if !chromium.exists() {
        missing.push(format!(
            "{} is missing: apt-get update && apt-get install -y chromium",
            chromium.display()
        ));
    }
    if !repo()
        .join("tests-web/node_modules/playwright-core")
        .exists()
    {
        missing.push(
            "tests-web/node_modules/playwright-core is missing: (cd tests-web && npm ci)".into(),
        );
    }
    if Command::new("node").arg("--version").output().is_err() {
        missing.push("node is not on PATH: apt-get install -y nodejs".into());
    }
    assert!(
        missing.is_empty(),
        "the browser test needs what .ci/run installs:\n  {}",
        missing.join("\n  ")
    );
    script
}

#[test]
fn every_dashboard_works_in_chromium() {
    let script = check_prerequisites();
    let cluster = Cluster::start();
    match cluster.get(0, "/") {
        Some((200, body)) if body.contains("/assets/app.js") => {}
        other => panic!(
            "GET / does not serve the web UI (is medchain_api::web::router() merged?): {:?}",
            other.map(|(s, b)| (s, b.chars().take(200).collect::<String>()))
        ),
    }
    // St Mary's operator proposes a second department administrator (the CLI's half of a
    // co-signed action); the browser test has dep001 sign the other half in the UI.
    let out = Command::new(BIN)
        .args(["user", "add", "--config"])
        .arg(cluster.dir.path().join("node0.toml"))
        .args(["--user-id", "dep-icu", "--role", "department"])
        .args([
            "--department",
            "cardiology",
            "--display-name",
            "Cardiology deputy office",
        ])
        .stdin(Stdio::null())
        .output()
        .expect("run medchain user add");
    assert!(
        out.status.success()
            && String::from_utf8_lossy(&out.stdout).contains("proposal add-dep-icu"),
        "user add: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let shots = std::env::var_os("MEDCHAIN_SCREENSHOTS").map_or_else(
        || std::env::temp_dir().join("medchain-ui-screenshots"),
        PathBuf::from,
    );
    let out_path = cluster.dir.path().join("ui-test.out");
    let out = std::fs::File::create(&out_path).expect("output file");
    let mut child = Command::new("node")
        .arg(&script)
        .current_dir(repo().join("tests-web"))
        .env(
            "MEDCHAIN_UI_URL",
            format!("http://127.0.0.1:{}", cluster.http),
        )
        .env("MEDCHAIN_SCREENSHOTS", &shots)
        .stdin(Stdio::null())
        .stdout(out.try_clone().expect("output file"))
        .stderr(out)
        .spawn()
        .expect("run node tests-web/ui.test.mjs");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for node") {
            break Some(status);
        }
        if started.elapsed() > UI_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let output = std::fs::read_to_string(&out_path).unwrap_or_default();
    println!("{output}");
    let logs = || {
        (0..4)
            .map(|i| format!("--- replica {i} ---\n{}", cluster.log(i)))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let Some(status) = status else {
        panic!(
            "the browser test did not finish in {UI_TIMEOUT:?}:\n{output}\n{}",
            logs()
        );
    };
    assert!(
        status.success(),
        "the browser test failed ({status}); screenshots in {}:\n{output}\n{}",
        shots.display(),
        logs()
    );
}
