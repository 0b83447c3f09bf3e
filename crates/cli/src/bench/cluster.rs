//! The cluster `bench` starts itself: `medchain init --demo` in a temporary directory on
//! free ports, one `medchain node` process per replica, and a guarantee that those
//! processes are stopped and reaped however the run ends (`Drop` kills what `stop` did
//! not), so a benchmark never leaves replicas behind.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

#[derive(Debug)]
pub struct OwnCluster {
    /// `None` once kept: the directory then outlives the run.
    tmp: Option<tempfile::TempDir>,
    path: PathBuf,
    http_base: u16,
    /// Replicas in the cluster's configuration.
    replicas: usize,
    /// The started ones, replica 0 first.
    children: Vec<Child>,
}

/// A base for `replicas` consecutive HTTP ports and as many peer ports, all free now.
/// Another program may still take one before the replicas bind it; the health check
/// then fails with the replica's log.
fn free_ports(replicas: u16) -> anyhow::Result<(u16, u16)> {
    let seed = u64::from(std::process::id())
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
    for attempt in 0..500u64 {
        let base = 20_000 + ((seed.wrapping_mul(7919) + attempt * 97) % 40_000) as u16;
        let ok = (0..replicas).all(|i| {
            TcpListener::bind(("127.0.0.1", base + i)).is_ok()
                && TcpListener::bind(("127.0.0.1", base + 100 + i)).is_ok()
        });
        if ok {
            return Ok((base, base + 100));
        }
    }
    bail!("found no free ports on 127.0.0.1 for the replicas")
}

impl OwnCluster {
    pub fn start(exe: &Path, replicas: usize) -> anyhow::Result<OwnCluster> {
        Self::start_some(exe, replicas, replicas)
    }

    /// Configure `replicas` and start the first `running` of them (the rest with
    /// `start_replica`).
    pub fn start_some(exe: &Path, replicas: usize, running: usize) -> anyhow::Result<OwnCluster> {
        let tmp = tempfile::Builder::new()
            .prefix("medchain-bench-")
            .tempdir()
            .context("creating a temporary directory for the cluster")?;
        let path = tmp.path().to_path_buf();
        let n = u16::try_from(replicas).context("too many replicas")?;
        let (http, p2p) = free_ports(n)?;
        let out = Command::new(exe)
            .args([
                "init",
                "--replicas",
                &replicas.to_string(),
                "--demo",
                "--bench-accounts",
                "--dir",
            ])
            .arg(&path)
            .args(["--http-port", &http.to_string()])
            .args(["--p2p-port", &p2p.to_string()])
            .stdin(Stdio::null())
            .output()
            .context("running medchain init")?;
        if !out.status.success() {
            bail!(
                "medchain init failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        std::fs::create_dir_all(path.join("logs")).context("creating the logs directory")?;
        let mut c = OwnCluster {
            tmp: Some(tmp),
            path,
            http_base: http,
            replicas,
            children: Vec::new(),
        };
        for i in 0..running.min(replicas) {
            // On error `c` is dropped, which kills the replicas already started.
            c.start_replica(exe, i)?;
        }
        Ok(c)
    }

    /// Start replica `i`, the next one not yet started.
    pub fn start_replica(&mut self, exe: &Path, i: usize) -> anyhow::Result<()> {
        if i != self.children.len() || i >= self.replicas {
            bail!("replica {i} is not the next one to start");
        }
        let config = self.path.join(format!("node{i}.toml"));
        let child = crate::replicas::spawn(exe, &config, &self.log_path(i))?;
        self.children.push(child);
        Ok(())
    }

    /// Whether started replica `i` still runs.
    pub fn running(&self, i: usize) -> bool {
        self.children.get(i).is_some_and(|c| alive(c.id()))
    }

    pub fn dir(&self) -> &Path {
        &self.path
    }

    fn log_path(&self, i: usize) -> PathBuf {
        self.path.join(format!("logs/node{i}.log"))
    }

    /// Every configured replica's base URL, started or not.
    pub fn urls(&self) -> Vec<String> {
        (0..self.replicas)
            .map(|i| format!("http://127.0.0.1:{}", usize::from(self.http_base) + i))
            .collect()
    }

    pub fn pids(&self) -> Vec<u32> {
        self.children.iter().map(Child::id).collect()
    }

    fn log_tail(&self, i: usize) -> String {
        let log = std::fs::read_to_string(self.log_path(i)).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(10)..].join("\n")
    }

    /// Wait until every started replica answers `/healthz` with 200, or fail naming the
    /// one that did not (with the end of its log).
    pub async fn wait_healthy(
        &self,
        http: &reqwest::Client,
        timeout: Duration,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        for (i, url) in self.urls().iter().enumerate().take(self.children.len()) {
            loop {
                let ok = http
                    .get(format!("{url}/healthz"))
                    .timeout(Duration::from_secs(1))
                    .send()
                    .await
                    .is_ok_and(|r| r.status().as_u16() == 200);
                if ok {
                    break;
                }
                if let Some(pid) = self.pids().get(i) {
                    if !alive(*pid) {
                        bail!("replica {i} exited at start:\n{}", self.log_tail(i));
                    }
                }
                if Instant::now() >= deadline {
                    bail!(
                        "replica {i} not healthy at {url} after {timeout:?}:\n{}",
                        self.log_tail(i)
                    );
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        Ok(())
    }

    /// Each replica's peak resident memory (VmHWM) in MB; 0 where unreadable.
    pub fn rss_peaks_mb(&self) -> Vec<f64> {
        self.children
            .iter()
            .map(|c| {
                std::fs::read_to_string(format!("/proc/{}/status", c.id()))
                    .ok()
                    .and_then(|s| vm_hwm_kb(&s))
                    .map_or(0.0, |kb| (kb as f64 / 1024.0 * 10.0).round() / 10.0)
            })
            .collect()
    }

    /// SIGTERM every replica (a clean stop), then SIGKILL whatever still runs after 10 s,
    /// and reap them all.
    pub fn stop(&mut self) {
        crate::replicas::stop_all(&mut self.children, Duration::from_secs(10));
        self.children.clear();
    }

    /// Stop deleting the directory when the cluster is dropped; returns its path.
    pub fn keep(mut self) -> PathBuf {
        if let Some(t) = self.tmp.take() {
            return t.keep();
        }
        self.path.clone()
    }
}

impl Drop for OwnCluster {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Whether a child still runs: an exited, unreaped child stays in /proc as a zombie.
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().to_string())
        })
        .is_some_and(|rest| !rest.starts_with('Z') && !rest.starts_with('X'))
}

/// `VmHWM:   12345 kB` from `/proc/PID/status`.
fn vm_hwm_kb(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peak_rss_is_read_from_proc_status() {
        let status =
            "Name:\tmedchain\nVmPeak:\t  900000 kB\nVmHWM:\t   51234 kB\nVmRSS:\t   50000 kB\n";
        assert_eq!(vm_hwm_kb(status), Some(51_234));
        assert_eq!(vm_hwm_kb("Name:\tx\n"), None);
        let own = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        assert!(vm_hwm_kb(&own).is_some_and(|kb| kb > 0));
    }
}
