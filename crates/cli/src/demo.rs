//! `medchain demo`: a four-replica cluster on this machine, each replica its own process,
//! stopped together on Ctrl-C.

use std::path::Path;
use std::process::{Child, ExitStatus};
use std::time::Duration;

use anyhow::Context;

const DEMO_DIR: &str = "medchain-demo";

pub fn run() -> anyhow::Result<()> {
    let dir = Path::new(DEMO_DIR);
    if !dir.join("genesis.toml").exists() {
        crate::init::run(&crate::init::InitArgs {
            replicas: 4,
            dir: dir.to_path_buf(),
            http_port: 5000,
            p2p_port: 7000,
            demo: true,
            bench_accounts: false,
        })?;
    }
    std::fs::create_dir_all(dir.join("logs"))?;
    let exe = std::env::current_exe().context("locating the medchain binary")?;
    let mut children = spawn_replicas(&exe, dir)?;
    print_welcome();
    let exited = wait_for_exit(&mut children)?;
    stop_all(&mut children);
    if let Some((i, status)) = exited {
        anyhow::bail!("replica {i} exited ({status}); see {DEMO_DIR}/logs/node{i}.log");
    }
    println!("all replicas stopped");
    Ok(())
}

/// All four replicas, or none: those already started are stopped if one fails to start.
fn spawn_replicas(exe: &Path, dir: &Path) -> anyhow::Result<Vec<Child>> {
    let mut children: Vec<Child> = Vec::new();
    for i in 0..4 {
        let child = crate::replicas::spawn(
            exe,
            &dir.join(format!("node{i}.toml")),
            &dir.join(format!("logs/node{i}.log")),
        );
        match child {
            Ok(c) => children.push(c),
            Err(e) => {
                stop_all(&mut children);
                return Err(e);
            }
        }
    }
    Ok(children)
}

/// Where the replicas are and how to sign in.
fn print_welcome() {
    println!("MedChain demo: 4 replicas running as separate processes");
    for i in 0..4 {
        println!(
            "  replica {i}: http://127.0.0.1:{}  (peers on 127.0.0.1:{}, log {}/logs/node{i}.log)",
            5000 + i,
            7000 + i,
            DEMO_DIR
        );
    }
    println!("Open http://127.0.0.1:5000 in a browser (API: /api/openapi.json).");
    println!(
        "Demo accounts (all of St Mary's, organisation 0: users sign in only at their home \
         organisation's node, here http://127.0.0.1:5000):"
    );
    for (user, password, role, org, department, name) in crate::init::DEMO_ACCOUNTS {
        println!(
            "  {:<7} {:<14} {:<11} {:<11} {name} (sign in at http://127.0.0.1:{})",
            user,
            password,
            role.as_str(),
            department,
            5000 + org
        );
    }
    println!("Standing consents: p001 and p002 -> d001; p002 -> d002.");
    println!("Press Ctrl-C to stop all replicas.");
}

/// Until Ctrl-C (`None`) or until a replica exits on its own (which one, and how).
fn wait_for_exit(children: &mut [Child]) -> anyhow::Result<Option<(usize, ExitStatus)>> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    Ok(rt.block_on(async {
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => return None,
                _ = tokio::time::sleep(Duration::from_millis(500)) => {
                    for (i, c) in children.iter_mut().enumerate() {
                        if let Ok(Some(status)) = c.try_wait() {
                            return Some((i, status));
                        }
                    }
                }
            }
        }
    }))
}

/// Stop the replicas: SIGTERM, then SIGKILL after 5 s.
fn stop_all(children: &mut [Child]) {
    crate::replicas::stop_all(children, Duration::from_secs(5));
}
