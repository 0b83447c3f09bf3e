//! An eavesdropper on the wire between replicas: `tcpdump` on the loopback interface
//! while a doctor adds a record with a unique diagnosis. The peer ports carry TLS only,
//! so the capture of them holds no clinical text; the same capture of the API port
//! (plain HTTP on loopback, as the demo serves it) finds the text, which shows that the
//! capture would have seen it had it crossed in clear.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Cluster, SERIAL};

/// Start tcpdump writing every packet of `filter` on `lo` to `file`; returns once it is
/// capturing (it says so on stderr). Its stderr goes to a file, not a pipe: a pipe
/// closed under it would kill it with SIGPIPE when it prints its totals on exit, before
/// it has written the last packets.
fn start_capture(file: &std::path::Path, filter: &str) -> std::process::Child {
    let log = file.with_extension("log");
    let child = Command::new("tcpdump")
        .args([
            "-i",
            "lo",
            "--immediate-mode",
            "-U",
            "-B",
            "65536",
            "-s",
            "0",
            "-w",
        ])
        .arg(file)
        .arg(filter)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("tcpdump log"))
        .spawn()
        .expect("tcpdump is installed (.ci/run installs it) and may capture (root)");
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(10) {
        if std::fs::read_to_string(&log).is_ok_and(|l| l.contains("listening on")) {
            return child;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut child = child;
    let _ = child.kill();
    panic!(
        "tcpdump did not start: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
}

fn stop_capture(mut child: std::process::Child) {
    // SIGINT flushes the file; -U already wrote each packet as it came.
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(5) {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn a_capture_of_the_peer_ports_during_add_record_holds_no_clinical_text() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let c = Cluster::start_with(&["--demo"]);
    let p2p = c.p2p_base();
    let work = tempfile::tempdir().expect("tempdir");
    let peers_file = work.path().join("peers.pcap");
    let api_file = work.path().join("api.pcap");
    let peers = start_capture(&peers_file, &format!("tcp portrange {}-{}", p2p, p2p + 3));
    let api = start_capture(&api_file, &format!("tcp port {}", c.http));
    // "listening on" comes as the capture opens; give the kernel filter a moment too.
    std::thread::sleep(Duration::from_millis(500));

    let unique = format!("capture-probe-diagnosis-{}", std::process::id());
    let notes = format!("capture-probe-notes-{}", std::process::id());
    let d001 = c.login(0, "d001", "doctor123");
    let (status, rec) = c.post(
        0,
        "/api/add_record",
        Some(&d001),
        &format!(
            r#"{{"patient_id":"p001","diagnosis":"{unique}","prescription":"Apixaban 5 mg","notes":"{notes}"}}"#
        ),
    );
    assert_eq!(status, 200, "{rec}");
    // Committed at replica 0 means its peers have the block; wait for all four so the
    // capture holds the whole replication of it.
    for i in 1..4 {
        c.wait_same_head(i, 0, Duration::from_secs(20));
    }
    // Let the last packets reach the capture before stopping it.
    std::thread::sleep(Duration::from_millis(500));
    stop_capture(peers);
    stop_capture(api);

    let peer_bytes = std::fs::read(&peers_file).expect("peer capture");
    let api_bytes = std::fs::read(&api_file).expect("api capture");
    // The control: the capture does see the text where it travels in clear.
    assert!(
        contains(&api_bytes, unique.as_bytes()),
        "the API capture should hold the request in clear ({} bytes; tcpdump: {})",
        api_bytes.len(),
        std::fs::read_to_string(api_file.with_extension("log")).unwrap_or_default()
    );
    // Nothing was lost to the capture: tcpdump counted no kernel drops, so every packet
    // of the replication (which did happen on these ports: the heads converged) is in
    // the file, and it is TLS application data.
    for file in [&peers_file, &api_file] {
        let log = std::fs::read_to_string(file.with_extension("log")).unwrap_or_default();
        assert!(
            log.lines()
                .any(|l| l.trim() == "0 packets dropped by kernel"),
            "the capture lost packets, so it proves nothing: {log}"
        );
    }
    assert!(
        contains(&peer_bytes, &[0x17, 0x03, 0x03]),
        "no TLS application-data record in the peer capture ({} bytes)",
        peer_bytes.len()
    );
    for text in [unique.as_str(), notes.as_str(), "Apixaban", "Maria Santos"] {
        assert!(
            !contains(&peer_bytes, text.as_bytes()),
            "{text:?} crossed between replicas in clear"
        );
    }
}
