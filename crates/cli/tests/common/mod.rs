//! A four-replica cluster of real `medchain node` processes on free 127.0.0.1 ports,
//! for the real-process tests: start, kill, call the API, load, verify. Every wait is
//! bounded, and the processes stop when the cluster is dropped.
#![allow(dead_code)] // each test file uses part of it

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use medchain_store::Reader;

pub const BIN: &str = env!("CARGO_BIN_EXE_medchain");

/// Clusters run one at a time: four replicas already share two cores.
pub static SERIAL: Mutex<()> = Mutex::new(());

/// `medchain load --config node1.toml` submits as replica 1's operator client (4 + 1).
pub const OPERATOR_OF_1: u16 = 5;

pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub http: u16,
    pub nodes: Vec<Option<Child>>,
}

pub fn free_base() -> (u16, u16) {
    let seed = std::process::id() as u64
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

impl Cluster {
    pub fn start() -> Cluster {
        Self::start_with(&[])
    }

    pub fn start_with(extra_init_args: &[&str]) -> Cluster {
        let dir = tempfile::tempdir().expect("tempdir");
        let (http, p2p) = free_base();
        let out = Command::new(BIN)
            .args(["init", "--replicas", "4", "--dir"])
            .arg(dir.path())
            .args(extra_init_args)
            .args([
                "--http-port",
                &http.to_string(),
                "--p2p-port",
                &p2p.to_string(),
            ])
            .output()
            .expect("init");
        assert!(
            out.status.success(),
            "init: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut c = Cluster {
            dir,
            http,
            nodes: (0..4).map(|_| None).collect(),
        };
        for i in 0..4 {
            c.start_node(i);
        }
        for i in 0..4 {
            c.wait_healthy(i);
        }
        c
    }

    /// Replica 0's peer port (`free_base` puts the peer ports 100 above the HTTP ports).
    pub fn p2p_base(&self) -> u16 {
        self.http + 100
    }

    pub fn config(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("node{i}.toml"))
    }

    pub fn start_node(&mut self, i: usize) {
        self.start_node_with_env(i, &[]);
    }

    /// Start replica i with extra environment (the `MEDCHAIN_*` overrides).
    pub fn start_node_with_env(&mut self, i: usize, env: &[(&str, &std::path::Path)]) {
        let log = std::fs::File::create(self.dir.path().join(format!("node{i}.log"))).expect("log");
        let child = Command::new(BIN)
            .args(["node", "--config"])
            .arg(self.config(i))
            .envs(env.iter().map(|(k, v)| (k, v.as_os_str())))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawn node");
        self.nodes[i] = Some(child);
    }

    pub fn kill9(&mut self, i: usize) {
        if let Some(mut c) = self.nodes[i].take() {
            let _ = c.kill(); // SIGKILL
            let _ = c.wait();
        }
    }

    pub fn stop_all(&mut self) {
        for c in self.nodes.iter_mut().flatten() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(c.id().to_string())
                .status();
        }
        for c in self.nodes.iter_mut() {
            if let Some(mut child) = c.take() {
                let deadline = Instant::now() + Duration::from_secs(10);
                while Instant::now() < deadline {
                    if let Ok(Some(_)) = child.try_wait() {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }

    pub fn get(&self, i: usize, path: &str) -> Option<serde_json::Value> {
        serde_json::from_str(&self.get_text(i, path)?).ok()
    }

    /// A value of replica `i`'s Prometheus text at `/metrics` (`name` with its labels).
    pub fn metric(&self, i: usize, name: &str) -> Option<f64> {
        let text = self.get_text(i, "/metrics")?;
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
    }

    pub fn get_text(&self, i: usize, path: &str) -> Option<String> {
        let mut s = TcpStream::connect(("127.0.0.1", self.http + i as u16)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        )
        .ok()?;
        let mut body = String::new();
        s.read_to_string(&mut body).ok()?;
        Some(body.split_once("\r\n\r\n")?.1.to_string())
    }

    /// GET with a bearer token from replica `i`'s API: (status, body).
    pub fn get_with(&self, i: usize, path: &str, token: &str) -> (u16, serde_json::Value) {
        self.request(i, "GET", path, Some(token), "")
    }

    /// POST JSON to replica `i`'s API: (status, body).
    pub fn post(
        &self,
        i: usize,
        path: &str,
        token: Option<&str>,
        body: &str,
    ) -> (u16, serde_json::Value) {
        self.request(i, "POST", path, token, body)
    }

    fn request(
        &self,
        i: usize,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: &str,
    ) -> (u16, serde_json::Value) {
        let mut s = TcpStream::connect(("127.0.0.1", self.http + i as u16)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        let auth = token
            .map(|t| format!("Authorization: Bearer {t}\r\n"))
            .unwrap_or_default();
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .expect("write");
        let mut resp = String::new();
        s.read_to_string(&mut resp).expect("read");
        let status = resp
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let json = resp.split("\r\n\r\n").nth(1).unwrap_or("");
        (
            status,
            serde_json::from_str(json).unwrap_or(serde_json::Value::Null),
        )
    }

    pub fn login(&self, i: usize, user: &str, password: &str) -> String {
        let (status, v) = self.post(
            i,
            "/api/login",
            None,
            &format!(r#"{{"username":"{user}","password":"{password}"}}"#),
        );
        assert_eq!(status, 200, "login {user} at replica {i}: {v}");
        v["token"].as_str().expect("token").to_string()
    }

    pub fn head(&self, i: usize) -> Option<(u64, String)> {
        let v = self.get(i, "/api/chain/head")?;
        Some((v["height"].as_u64()?, v["hash"].as_str()?.to_string()))
    }

    pub fn wait_healthy(&self, i: usize) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if self.get(i, "/healthz").is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("node {i} not healthy: {}", self.log(i));
    }

    pub fn log(&self, i: usize) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("node{i}.log"))).unwrap_or_default()
    }

    /// Wait until replica `i` has the same head as replica `j`.
    pub fn wait_same_head(&self, i: usize, j: usize, timeout: Duration) -> Duration {
        let started = Instant::now();
        while started.elapsed() < timeout {
            if let (Some(a), Some(b)) = (self.head(i), self.head(j)) {
                if a == b && a.0 > 0 {
                    return started.elapsed();
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "replica {i} ({:?}) did not reach replica {j}'s head ({:?}) in {timeout:?}",
            self.head(i),
            self.head(j)
        );
    }

    /// `medchain load` through replica `i`: the ids it saw acknowledged.
    pub fn load(&self, i: usize, records: u64, start_id: u64, concurrency: usize) -> Vec<u64> {
        let out = Command::new(BIN)
            .args(["load", "--config"])
            .arg(self.config(i))
            .args([
                "--records",
                &records.to_string(),
                "--start-id",
                &start_id.to_string(),
                "--concurrency",
                &concurrency.to_string(),
                "--timeout-s",
                "90",
            ])
            .output()
            .expect("load");
        assert!(
            out.status.success(),
            "load: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        ids(&out.stdout)
    }

    /// `medchain user add` with replica `i`'s operator key, the password on stdin.
    pub fn user_add(
        &self,
        i: usize,
        user: &str,
        role: &str,
        department: &str,
        password: &str,
    ) -> std::process::Output {
        let args = [
            "--user-id",
            user,
            "--role",
            role,
            "--department",
            department,
            "--display-name",
            user,
        ];
        self.user_cmd(i, "add", &args, password)
    }

    /// `medchain user set-password` at replica `i`, the password on stdin.
    pub fn set_password(&self, i: usize, user: &str, password: &str) -> std::process::Output {
        self.user_cmd(i, "set-password", &["--user-id", user], password)
    }

    fn user_cmd(&self, i: usize, sub: &str, args: &[&str], password: &str) -> std::process::Output {
        use std::io::Write;
        let mut child = Command::new(BIN)
            .args(["user", sub, "--config"])
            .arg(self.config(i))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn medchain user");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(format!("{password}\n").as_bytes())
            .expect("password");
        child.wait_with_output().expect("medchain user")
    }

    /// Sign in with a password an administrator set: the node answers with a token that
    /// only changes the password; change it to `new_password` and return the session's
    /// token.
    pub fn login_changing_password(
        &self,
        i: usize,
        user: &str,
        initial: &str,
        new_password: &str,
    ) -> String {
        let (status, v) = self.try_login(i, user, initial);
        assert_eq!(status, 200, "login {user} at replica {i}: {v}");
        assert_eq!(v["password_change_required"], true, "{v}");
        let token = v["token"].as_str().expect("token").to_string();
        let body = serde_json::json!({"current_password": initial, "new_password": new_password})
            .to_string();
        let (status, v) = self.post(i, "/api/password", Some(&token), &body);
        assert_eq!(status, 200, "password change of {user}: {v}");
        v["token"].as_str().expect("token").to_string()
    }

    /// A login attempt at replica `i`: the status and body.
    pub fn try_login(&self, i: usize, user: &str, password: &str) -> (u16, serde_json::Value) {
        let body = serde_json::json!({"username": user, "password": password}).to_string();
        self.post(i, "/api/login", None, &body)
    }

    pub fn verify(&self, i: usize) -> (bool, String) {
        let out = Command::new(BIN)
            .args(["verify", "--config"])
            .arg(self.config(i))
            .output()
            .expect("verify");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    pub fn db(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("org{i}/data/medchain.sqlite"))
    }

    /// (client, request id) of every request in replica `i`'s chain.
    pub fn committed(&self, i: usize) -> BTreeSet<(u16, u64)> {
        let r = Reader::open(&self.db(i)).expect("open db");
        let mut set = BTreeSet::new();
        r.for_each_block(|b| {
            for req in &b.requests {
                set.insert((req.request.client.0, req.request.request_id));
            }
            Ok(())
        })
        .expect("read chain");
        set
    }

    /// After a stop: every acknowledged record is on every replica and `verify` passes.
    pub fn assert_no_acknowledged_write_lost(&self, client: u16, acked: &[u64]) {
        for i in 0..4 {
            let have = self.committed(i);
            let missing = acked
                .iter()
                .filter(|id| !have.contains(&(client, **id)))
                .count();
            assert_eq!(
                missing, 0,
                "replica {i} lost {missing} acknowledged records"
            );
            let (ok, text) = self.verify(i);
            assert!(ok, "verify {i}: {text}");
        }
    }
}

pub fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

pub fn ids(stdout: &[u8]) -> Vec<u64> {
    let v: serde_json::Value = serde_json::from_slice(stdout).expect("load output");
    v["acked_ids"]
        .as_array()
        .expect("ids")
        .iter()
        .filter_map(|x| x.as_u64())
        .collect()
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for c in self.nodes.iter_mut().flatten() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Every file under `dir`, recursively (for byte searches of a replica's folder).
pub fn files_under(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).expect("read dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                todo.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out
}

/// Which `(label, bytes)` needles occur in which files under `dir`, as "label in file",
/// and how many files were searched.
pub fn files_holding(dir: &std::path::Path, needles: &[(String, Vec<u8>)]) -> (usize, Vec<String>) {
    let files = files_under(dir);
    let mut hits = Vec::new();
    for f in &files {
        let bytes = std::fs::read(f).unwrap_or_default();
        for (label, n) in needles {
            if bytes.windows(n.len()).any(|w| w == n.as_slice()) {
                hits.push(format!("{label} in {}", f.display()));
            }
        }
    }
    (files.len(), hits)
}

/// A read-only connection to a replica's database, as anyone with the file could open.
pub fn read_only(path: &std::path::Path) -> rusqlite::Connection {
    rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .expect("open db")
}
