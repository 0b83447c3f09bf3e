//! Replica child processes, as `demo` and `bench` run them: one `medchain node` per
//! config with its output in a log file, stopped cleanly (SIGTERM) and then for sure.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;

/// Start `exe node --config CONFIG`, stdout and stderr into `log`.
pub fn spawn(exe: &Path, config: &Path, log: &Path) -> anyhow::Result<Child> {
    let log = std::fs::File::create(log)
        .with_context(|| format!("creating the replica log {}", log.display()))?;
    Command::new(exe)
        .args(["node", "--config"])
        .arg(config)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("starting the replica of {}", config.display()))
}

/// SIGTERM each child (a clean stop), then SIGKILL whatever still runs after `grace`,
/// and reap them all.
pub fn stop_all(children: &mut [Child], grace: Duration) {
    for c in children.iter() {
        // No signal API without `unsafe` in std; `kill` is on every Linux.
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(c.id().to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
    let deadline = Instant::now() + grace;
    for c in children.iter_mut() {
        while Instant::now() < deadline {
            if let Ok(Some(_)) = c.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = c.kill();
        let _ = c.wait();
    }
}
