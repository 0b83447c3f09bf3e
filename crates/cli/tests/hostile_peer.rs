//! A hostile organisation against a real replica's resources, acting with its own keys
//! (organisation 3's replica and gateway keys, its node stopped so the attacker can
//! stand in at its address): many connections with one identity, frames announced and
//! never finished, FETCH-BLOCKS replayed by the hundred; and, as anyone on the network,
//! requests whose headers never end and more connections than the node serves. Each
//! is shown to cost the replica a bounded amount (connections it keeps, bytes it sends,
//! memory it grows) while it goes on serving.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream as StdTcpStream;
use std::time::{Duration, Instant};

use common::{Cluster, SERIAL};
use medchain_node::frame::{read_frame, write_frame};
use medchain_node::handshake::{accept, Role};
use medchain_node::{tls, NodeFiles};
use medchain_types::{decode, encode, ClientId, FetchBlocks, PeerMessage, ReplicaId, Signed};
use tokio::io::AsyncWriteExt;

/// Organisation 3's node files (its keys, the genesis), as its own operator holds them.
fn org3(c: &Cluster) -> NodeFiles {
    NodeFiles::load(&c.config(3)).expect("org 3's node.toml")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// The resident memory of a process, from /proc.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// Open sockets of a process.
fn sockets(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.flatten()
                .filter(|e| {
                    std::fs::read_link(e.path())
                        .is_ok_and(|l| l.to_string_lossy().starts_with("socket:"))
                })
                .count()
        })
        .unwrap_or(0)
}

fn pid(c: &Cluster, i: usize) -> u32 {
    c.nodes[i].as_ref().expect("running").id()
}

/// Connect to replica 0's peer port as `role`, with that identity's own key.
async fn link(
    c: &Cluster,
    files: &NodeFiles,
    role: Role,
    key: &medchain_types::KeyPair,
) -> std::io::Result<tls::ClientStream> {
    let addr = format!("127.0.0.1:{}", c.p2p_base());
    let connector = tls::connector(key, files.genesis.replicas[0].public_key)?;
    medchain_node::transport::dial_replica(
        &addr,
        &connector,
        role,
        key,
        files.genesis.hash(),
        ReplicaId(0),
    )
    .await
}

/// Whether the replica has closed `s` (reads end) within `within`.
async fn closed_within(s: &mut tls::ClientStream, within: Duration) -> bool {
    let mut buf = [0u8; 256];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, tokio::io::AsyncReadExt::read(s, &mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

#[test]
fn one_identity_keeps_one_connection_and_stalled_frames_are_cut() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut c = Cluster::start_with(&["--demo"]);
    c.kill9(3);
    let files = org3(&c);
    let before_sockets = sockets(pid(&c, 0));
    let before_rss = rss_kib(pid(&c, 0));
    runtime().block_on(async {
        // Twenty connections, each with organisation 3's real replica key: every one
        // but the newest is closed by the replica.
        let mut links = Vec::new();
        for _ in 0..20 {
            links.push(
                link(&c, &files, Role::Replica(ReplicaId(3)), &files.key)
                    .await
                    .expect("org 3 may connect"),
            );
        }
        let newest = links.pop().expect("20 links");
        for (i, l) in links.iter_mut().enumerate() {
            assert!(
                closed_within(l, Duration::from_secs(3)).await,
                "connection {i} of 20 with the same key is still open"
            );
        }
        // The newest one is live: it announces a 64 MiB frame, sends 10 bytes and stalls;
        // so does org 3's gateway (a second identity of the same organisation).
        let mut gateway = link(&c, &files, Role::Client(ClientId(3)), &files.client_key)
            .await
            .expect("org 3's gateway may connect");
        let mut newest = newest;
        for s in [&mut newest, &mut gateway] {
            s.write_u32(64 << 20).await.expect("length");
            s.write_all(&[0u8; 10]).await.expect("bytes");
            s.flush().await.expect("flush");
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        let during = rss_kib(pid(&c, 0));
        assert!(
            during < before_rss + 16 * 1024,
            "two announced 64 MiB frames grew replica 0 from {before_rss} to {during} KiB"
        );
        // The frame deadline (10 s plus a second per MiB announced: 74 s for 64 MiB) is
        // long; a small frame's is 10 s. Announce one of 1000 bytes on a fresh link.
        let mut small = link(&c, &files, Role::Replica(ReplicaId(3)), &files.key)
            .await
            .expect("reconnect");
        assert!(
            closed_within(&mut newest, Duration::from_secs(3)).await,
            "the reconnect replaces the stalled link"
        );
        small.write_u32(1000).await.expect("length");
        small.write_all(&[0u8; 10]).await.expect("bytes");
        small.flush().await.expect("flush");
        let t = Instant::now();
        assert!(
            closed_within(&mut small, Duration::from_secs(20)).await,
            "a frame stalled after 10 of 1000 bytes is never cut"
        );
        let took = t.elapsed();
        assert!(
            took >= Duration::from_secs(9) && took <= Duration::from_secs(16),
            "cut after {took:?}, expected about 10 s"
        );
        drop(gateway);
    });
    // The replica went on committing throughout, and holds no more sockets than before.
    let token = c.login(0, "d001", "doctor123");
    let (status, body) = c.post(
        0,
        "/api/add_record",
        Some(&token),
        &serde_json::json!({"patient_id": "p001", "diagnosis": "after the attack", "prescription": "", "notes": ""})
            .to_string(),
    );
    assert_eq!(status, 200, "{body}");
    std::thread::sleep(Duration::from_millis(500));
    let after = sockets(pid(&c, 0));
    assert!(
        after <= before_sockets + 2,
        "replica 0 held {before_sockets} sockets before and {after} after"
    );
}

#[test]
fn replayed_fetch_blocks_are_answered_within_the_budget() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut c = Cluster::start_with(&["--demo"]);
    // A chain to fetch: a few committed records.
    let token = c.login(0, "d001", "doctor123");
    for i in 0..6 {
        let (status, body) = c.post(
            0,
            "/api/add_record",
            Some(&token),
            &serde_json::json!({"patient_id": "p001", "diagnosis": format!("visit {i}"), "prescription": "", "notes": ""})
                .to_string(),
        );
        assert_eq!(status, 200, "{body}");
    }
    c.kill9(3);
    let files = org3(&c);
    let answered = runtime().block_on(async {
        // Stand in for replica 3 at its own address with its own key: replica 0 sends its
        // answers (BLOCKS) there, as to any peer.
        let listener = tokio::net::TcpListener::bind(&files.config.p2p_listen)
            .await
            .expect("org 3's peer address");
        let acceptor = tls::acceptor(&files.key, &files.genesis).expect("acceptor");
        let genesis = files.genesis.clone();
        let counter = tokio::spawn(async move {
            let mut blocks = 0usize;
            let mut bytes = 0usize;
            let deadline = tokio::time::Instant::now() + Duration::from_secs(6);
            while let Ok(Ok((tcp, _))) = tokio::time::timeout_at(deadline, listener.accept()).await
            {
                let Ok(Ok(mut s)) = tokio::time::timeout_at(deadline, acceptor.accept(tcp)).await
                else {
                    continue;
                };
                if !matches!(
                    accept(&mut s, &genesis, ReplicaId(3)).await,
                    Ok(Role::Replica(ReplicaId(0)))
                ) {
                    continue;
                }
                while let Ok(Ok(frame)) =
                    tokio::time::timeout_at(deadline, read_frame(&mut s, 64 << 20)).await
                {
                    if let Ok(PeerMessage::Blocks(b)) = decode::<PeerMessage>(&frame, 64 << 20) {
                        if !b.is_empty() {
                            blocks += 1;
                            bytes += frame.len();
                        }
                    }
                }
            }
            (blocks, bytes)
        });
        // One signed FETCH-BLOCKS from height 1, replayed 500 times as fast as possible.
        let fetch = encode(&PeerMessage::FetchBlocks(Signed::sign(
            FetchBlocks {
                from_height: 1,
                max_blocks: 256,
                replica: ReplicaId(3),
            },
            &files.key,
        )));
        let mut s = link(&c, &files, Role::Replica(ReplicaId(3)), &files.key)
            .await
            .expect("org 3 may connect");
        let sent_at = Instant::now();
        for _ in 0..500 {
            write_frame(&mut s, &fetch).await.expect("send");
        }
        let sending = sent_at.elapsed();
        let answered = counter.await.expect("counter");
        drop(s);
        (answered, sending)
    });
    let ((blocks, bytes), sending) = answered;
    // The budget: a burst of 40, then 20 a second over the 6 s the counter listens
    // (the replays all arrive within `sending`, well under a second).
    let bound = 40 + (20.0 * sending.as_secs_f64()).ceil() as usize + 2;
    assert!(blocks >= 1, "replica 0 answered no FETCH-BLOCKS at all");
    assert!(
        blocks <= bound,
        "500 replayed FETCH-BLOCKS (sent in {sending:?}) got {blocks} answers ({bytes} bytes); \
         the budget allows {bound}"
    );
    eprintln!("500 replayed FETCH-BLOCKS -> {blocks} answers, {bytes} bytes");
}

/// A request line and some headers, never finished.
fn half_open_request(port: u16) -> Option<StdTcpStream> {
    let mut s = StdTcpStream::connect(("127.0.0.1", port)).ok()?;
    s.write_all(b"GET /api/chain/head HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .ok()?;
    Some(s)
}

#[test]
fn http_connections_are_capped_and_slow_headers_are_cut() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // Room in this process for more sockets than the node's cap of 1024.
    let raised = std::process::Command::new("prlimit")
        .args(["--pid", &std::process::id().to_string(), "--nofile=8192:"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        raised,
        "prlimit (util-linux) could not raise this test's file limit"
    );
    let mut c = Cluster::start();
    let node = pid(&c, 0);
    let before_rss = rss_kib(node);
    // 150 requests whose headers never end: cut at the 10 s header deadline.
    let mut slow: Vec<StdTcpStream> = (0..150).filter_map(|_| half_open_request(c.http)).collect();
    assert_eq!(slow.len(), 150);
    assert!(
        c.get(0, "/api/chain/head").is_some(),
        "serving during the attack"
    );
    std::thread::sleep(Duration::from_secs(12));
    let mut still_open = 0;
    for s in &mut slow {
        s.set_read_timeout(Some(Duration::from_millis(200))).ok();
        let mut buf = [0u8; 512];
        match s.read(&mut buf) {
            Ok(0) => {}
            Ok(_) => {} // an error answer (408) then close counts as cut as well
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                still_open += 1
            }
            Err(_) => {}
        }
    }
    assert_eq!(
        still_open, 0,
        "{still_open} of 150 slow-header requests held after 12 s"
    );
    drop(slow);
    // 1,300 idle connections: the node holds at most its cap of 1,024 open (the rest wait
    // in the kernel's backlog or are refused) and stays within bounded memory.
    let addr: std::net::SocketAddr = ([127, 0, 0, 1], c.http).into();
    let flood: Vec<StdTcpStream> = (0..1300)
        .filter_map(|_| StdTcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok())
        .collect();
    std::thread::sleep(Duration::from_secs(2));
    let held = sockets(node);
    let during_rss = rss_kib(node);
    assert!(
        held <= 1024 + 64,
        "replica 0 holds {held} sockets with {} connections offered",
        flood.len()
    );
    assert!(
        during_rss < before_rss + 64 * 1024,
        "RSS grew from {before_rss} to {during_rss} KiB"
    );
    drop(flood);
    // Once they go, it serves again at once.
    let t = Instant::now();
    while c.get(0, "/api/chain/head").is_none() {
        assert!(
            t.elapsed() < Duration::from_secs(15),
            "not serving after the flood"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    c.stop_all();
}

/// Out of file descriptors, the accept loops pause instead of spinning a core, and the
/// node serves again when descriptors free up.
#[test]
fn accept_loops_back_off_when_out_of_file_descriptors() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let raised = std::process::Command::new("prlimit")
        .args(["--pid", &std::process::id().to_string(), "--nofile=8192:"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(raised, "prlimit could not raise this test's file limit");
    let c = Cluster::start();
    let node = pid(&c, 0);
    // Leave replica 0 a few spare descriptors, then take them with idle connections.
    let open_now = std::fs::read_dir(format!("/proc/{node}/fd")).map_or(0, |d| d.count());
    let limit = open_now + 20;
    let set = std::process::Command::new("prlimit")
        .args([
            "--pid",
            &node.to_string(),
            &format!("--nofile={limit}:{limit}"),
        ])
        .status()
        .is_ok_and(|s| s.success());
    assert!(set, "prlimit could not lower replica 0's file limit");
    let addr: std::net::SocketAddr = ([127, 0, 0, 1], c.http).into();
    let flood: Vec<StdTcpStream> = (0..200)
        .filter_map(|_| StdTcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok())
        .collect();
    assert!(flood.len() >= 100);
    let cpu = |pid: u32| -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map_or("", |(_, r)| r)
            .split_whitespace()
            .collect();
        let ticks: f64 =
            fields[11].parse::<f64>().unwrap_or(0.0) + fields[12].parse::<f64>().unwrap_or(0.0);
        ticks / 100.0
    };
    std::thread::sleep(Duration::from_secs(1));
    let before = cpu(node);
    std::thread::sleep(Duration::from_secs(4));
    let used = cpu(node) - before;
    assert!(
        used < 1.0,
        "replica 0 used {used:.2} s of CPU in 4 s while out of descriptors (a spinning accept loop uses 4)"
    );
    let log = c.log(0);
    assert!(log.contains("accept failed"), "no accept error was logged");
    drop(flood);
    let t = Instant::now();
    while c.get(0, "/api/chain/head").is_none() {
        assert!(
            t.elapsed() < Duration::from_secs(15),
            "not serving after descriptors freed"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
