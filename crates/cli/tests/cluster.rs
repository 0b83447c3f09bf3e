//! Real-process tests: four `medchain node` processes on 127.0.0.1 with free ports,
//! crashed with SIGKILL, cut off, fed garbage and corrupted on disk. Every test is
//! bounded in time and stops its processes when it ends (also when it fails).

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{ids, tail, Cluster, BIN, OPERATOR_OF_1, SERIAL};
use medchain_store::Reader;

#[test]
fn backup_killed_during_5000_writes_catches_up_with_identical_hashes() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut c = Cluster::start();
    c.kill9(3);
    let acked = c.load(1, 5_000, 1, 200);
    assert_eq!(
        acked.len(),
        5_000,
        "three replicas of four must keep committing"
    );
    // The metrics saw the same: every acknowledged record committed at replica 1 (whose
    // client port the load used), none failed, and replica 3 is reported down.
    let committed = c.metric(1, "medchain_requests_total{result=\"committed\"}");
    assert_eq!(committed, Some(5_000.0), "requests counted at replica 1");
    assert!(c.metric(1, "medchain_committed_records_total") >= Some(5_000.0));
    // A peer silent for 2 s is shown down, a live one up (the gauge is refreshed once a
    // second, and on a fast machine the load can end before its first refresh).
    let dead = Instant::now();
    while (c.metric(1, "medchain_peer_up{peer=\"3\"}") != Some(0.0)
        || c.metric(1, "medchain_peer_up{peer=\"2\"}") != Some(1.0))
        && dead.elapsed() < Duration::from_secs(10)
    {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(c.metric(1, "medchain_peer_up{peer=\"3\"}"), Some(0.0));
    assert_eq!(c.metric(1, "medchain_peer_up{peer=\"2\"}"), Some(1.0));
    assert!(c.metric(1, "medchain_energy_joules_total") > Some(0.0));
    c.start_node(3);
    let took = c.wait_same_head(3, 1, Duration::from_secs(60));
    eprintln!("replica 3 caught up in {took:?}");
    let heads: Vec<_> = (0..4).map(|i| c.head(i)).collect();
    assert!(heads.windows(2).all(|w| w[0] == w[1]), "{heads:?}");
    let back = Instant::now();
    while c.metric(1, "medchain_peer_up{peer=\"3\"}") != Some(1.0)
        && back.elapsed() < Duration::from_secs(10)
    {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        c.metric(1, "medchain_peer_up{peer=\"3\"}"),
        Some(1.0),
        "replica 3 back up"
    );
    c.stop_all();
    c.assert_no_acknowledged_write_lost(OPERATOR_OF_1, &acked);
}

#[test]
fn primary_killed_under_load_the_others_change_view_and_it_catches_up() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut c = Cluster::start();
    let loader = {
        let config = c.config(1);
        std::thread::spawn(move || {
            let out = Command::new(BIN)
                .args(["load", "--config"])
                .arg(config)
                .args([
                    "--records",
                    "8000",
                    "--concurrency",
                    "50",
                    "--timeout-s",
                    "90",
                ])
                .output()
                .expect("load");
            ids(&out.stdout)
        })
    };
    // Let the load run, then kill the primary of view 0 and time the stall.
    let t0 = Instant::now();
    while c.head(1).map_or(0, |h| h.0) < 20 && t0.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(20));
    }
    c.kill9(0);
    let killed = Instant::now();
    // The stall: from the kill to the first block committed in the new view.
    let mut stall = None;
    let mut height_at_new_view = None;
    while killed.elapsed() < Duration::from_secs(30) {
        if let Some(v) = c.get(1, "/api/chain/head") {
            let (height, view) = (v["height"].as_u64(), v["view"].as_u64());
            if view >= Some(1) {
                match height_at_new_view {
                    None => height_at_new_view = height,
                    Some(h0) if height > Some(h0) => {
                        stall = Some(killed.elapsed());
                        break;
                    }
                    Some(_) => {}
                }
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let Some(stall) = stall else {
        panic!(
            "no commit in a new view within 30 s of killing the primary; logs:\n{}",
            (1..4)
                .map(|i| tail(&c.log(i)))
                .collect::<Vec<_>>()
                .join("\n")
        );
    };
    eprintln!("STALL after killing the primary: {} ms", stall.as_millis());
    let acked = loader.join().expect("loader");
    assert_eq!(
        acked.len(),
        8_000,
        "every record is committed despite the crash; logs:\n{}",
        (1..4)
            .map(|i| tail(&c.log(i)))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(c.get(1, "/api/chain/head").expect("head")["view"].as_u64() >= Some(1));
    assert!(
        c.metric(1, "medchain_view_changes_total") >= Some(1.0),
        "the view change is counted"
    );
    c.start_node(0);
    c.wait_same_head(0, 1, Duration::from_secs(60));
    c.stop_all();
    c.assert_no_acknowledged_write_lost(OPERATOR_OF_1, &acked);
}

#[test]
fn replica_cut_off_for_30_seconds_rejoins() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut c = Cluster::start();
    let switch = c.dir.path().join("org2/data/FAULT_ISOLATE");
    std::fs::write(&switch, b"").expect("fault switch");
    let cut = Instant::now();
    std::thread::sleep(Duration::from_millis(300)); // the switch is polled every 100 ms
    let mut acked = c.load(1, 2_000, 1, 100);
    assert_eq!(acked.len(), 2_000);
    let behind = c.head(2).map_or(0, |h| h.0);
    assert!(
        behind < c.head(1).map_or(0, |h| h.0),
        "the cut-off replica must fall behind"
    );
    std::thread::sleep(Duration::from_secs(30).saturating_sub(cut.elapsed()));
    std::fs::remove_file(&switch).expect("heal");
    acked.extend(c.load(1, 500, 2_001, 50));
    c.wait_same_head(2, 1, Duration::from_secs(60));
    c.stop_all();
    c.assert_no_acknowledged_write_lost(OPERATOR_OF_1, &acked);
}

#[test]
fn a_flipped_byte_is_named_by_verify_and_the_node_refuses_to_start() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut c = Cluster::start();
    let acked = c.load(1, 400, 1, 20);
    assert_eq!(acked.len(), 400);
    c.wait_same_head(2, 1, Duration::from_secs(30));
    c.stop_all();
    let height = Reader::open(&c.db(2))
        .expect("db")
        .height()
        .expect("height");
    assert!(height >= 5, "need a few blocks, got {height}");
    let target = height / 2;
    {
        let conn = rusqlite::Connection::open(c.db(2)).expect("db");
        let mut data: Vec<u8> = conn
            .query_row(
                "SELECT data FROM blocks WHERE height = ?1",
                [target as i64],
                |r| r.get(0),
            )
            .expect("row");
        let mid = data.len() / 2;
        data[mid] ^= 0x01;
        conn.execute(
            "UPDATE blocks SET data = ?1 WHERE height = ?2",
            rusqlite::params![data, target as i64],
        )
        .expect("update");
    }
    let (ok, text) = c.verify(2);
    assert!(!ok, "verify must fail");
    assert!(
        text.contains(&format!("block {target}")),
        "verify must name block {target}: {text}"
    );
    let out = Command::new(BIN)
        .args(["node", "--config"])
        .arg(c.config(2))
        .output()
        .expect("node");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the node must refuse to start");
    assert!(err.contains(&format!("block {target}")), "{err}");
    // The other replicas are untouched.
    assert!(c.verify(1).0);
}

#[test]
fn garbage_oversized_and_badly_signed_frames_do_not_hurt_the_cluster() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let c = Cluster::start();
    let p2p = {
        let text = std::fs::read_to_string(c.config(1)).expect("config");
        let line = text
            .lines()
            .find(|l| l.starts_with("p2p_listen"))
            .expect("p2p")
            .to_string();
        line.split('"').nth(1).expect("addr").to_string()
    };
    let attack = |bytes: &[u8]| {
        if let Ok(mut s) = TcpStream::connect(&p2p) {
            let _ = s.set_write_timeout(Some(Duration::from_secs(1)));
            let _ = s.write_all(bytes);
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    let mut state = 0x1234_5678_u64;
    for round in 0..50u8 {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let garbage: Vec<u8> = (0..(state % 300) as usize)
            .map(|i| (state >> (i % 56)) as u8)
            .collect();
        attack(&garbage);
        // A frame header claiming 4 GiB.
        attack(&[0xff, 0xff, 0xff, 0xff, 1, 2, 3]);
        // A hello frame naming replica 0, then a "proof" that is no signature.
        let mut hello = vec![0, 0, 0, 35, 0, 0, 0];
        hello.extend_from_slice(&[round; 32]);
        hello.extend_from_slice(&[0, 0, 0, 64]);
        hello.extend_from_slice(&[round; 64]);
        attack(&hello);
    }
    let acked = c.load(1, 300, 1, 30);
    assert_eq!(acked.len(), 300, "the cluster keeps committing");
    for i in 0..4 {
        assert!(
            c.get(i, "/healthz").is_some(),
            "replica {i} is down: {}",
            c.log(i)
        );
    }
}

#[test]
fn two_pharmacies_of_two_organisations_dispensing_at_once_one_wins() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let c = Cluster::start_with(&["--demo"]);
    // Demo accounts are St Mary's: they sign in at replica 0 and nowhere else.
    for (u, p) in [
        ("d001", "doctor123"),
        ("p002", "patient456"),
        ("ph001", "pharmacy123"),
        ("dep001", "department123"),
    ] {
        c.login(0, u, p);
        for i in 1..4 {
            let (status, v) = c.try_login(i, u, p);
            assert_eq!(status, 401, "{u} at replica {i}: {v}");
        }
    }
    // A second pharmacy, City Pharmacy's own (organisation 2), registered by its operator.
    let out = c.user_add(2, "ph-city", "pharmacy", "pharmacy", "city-pharmacy-pw");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let d001 = c.login(0, "d001", "doctor123");
    let (status, rec) = c.post(
        0,
        "/api/add_record",
        Some(&d001),
        r#"{"patient_id":"p001","diagnosis":"Atrial fibrillation","prescription":"Apixaban 5 mg twice daily","notes":""}"#,
    );
    assert_eq!(status, 200, "{rec}");
    let record_id = rec["record_id"].as_str().expect("record_id").to_string();
    let code = rec["prescription_code"].as_str().expect("code").to_string();
    let tokens = vec![
        c.login(0, "ph001", "pharmacy123"),
        c.login_changing_password(2, "ph-city", "city-pharmacy-pw", "city-pharmacy-own"),
    ];
    let c = std::sync::Arc::new(c);
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(2));
    let handles: Vec<_> = [0usize, 2]
        .into_iter()
        .zip(tokens)
        .map(|(i, token)| {
            let (c, barrier, path, body) = (
                c.clone(),
                barrier.clone(),
                format!("/api/prescriptions/{record_id}/dispense"),
                format!(r#"{{"code":"{code}"}}"#),
            );
            std::thread::spawn(move || {
                barrier.wait();
                c.post(i, &path, Some(&token), &body)
            })
        })
        .collect();
    let mut results: Vec<(u16, serde_json::Value, &str)> = handles
        .into_iter()
        .zip(["ph001", "ph-city"])
        .map(|(h, pharmacy)| {
            let (status, body) = h.join().expect("thread");
            (status, body, pharmacy)
        })
        .collect();
    results.sort_by_key(|r| r.0);
    assert_eq!(results[0].0, 200, "one dispense succeeds: {results:?}");
    assert_eq!(results[1].0, 409, "the other is refused: {results:?}");
    assert_eq!(results[1].1["error"]["code"], "conflict");
    // Every replica agrees on the one dispense.
    let winner = results[0].1["block_height"].as_u64().expect("height");
    let winning_pharmacy = results[0].2;
    for i in 0..4 {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let db = rusqlite::Connection::open(c.db(i)).expect("db");
            let rows: Vec<(String, i64)> = db
                .prepare("SELECT pharmacy, height FROM dispenses")
                .and_then(|mut s| s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
                .unwrap_or_default();
            if rows.len() == 1 {
                assert_eq!(
                    rows[0],
                    (winning_pharmacy.to_string(), winner as i64),
                    "replica {i}"
                );
                break;
            }
            assert!(
                Instant::now() < deadline,
                "replica {i} has dispenses {rows:?}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

#[test]
fn operator_adds_a_department_administrator_who_can_sign_in() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // The demo's users are all St Mary's (organisation 0); organisation 2 starts with none.
    let c = Cluster::start_with(&["--demo"]);
    let add = |user: &str, role: &str, password: &str| {
        let mut child = Command::new(BIN)
            .args(["user", "add", "--config"])
            .arg(c.config(2))
            .args([
                "--user-id",
                user,
                "--role",
                role,
                "--department",
                "radiology",
                "--display-name",
                "Radiology admin",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(format!("{password}\n").as_bytes())
            .expect("password");
        child.wait_with_output().expect("user add")
    };
    let out = add("rad-admin", "department", "s3cure-enough");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = c.login_changing_password(2, "rad-admin", "s3cure-enough", "my-own-secret");
    let (status, me) = c.post(2, "/api/validate_block", Some(&token), "");
    assert_eq!(status, 200, "a department may validate blocks: {me}");
    // The same id twice is refused by the ledger, with the reason.
    let out = add("rad-admin", "department", "s3cure-enough");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));
    // A short password is refused before anything is submitted.
    let out = add("rad-doc", "doctor", "short");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("password"));

    // A second administrator is a co-signed proposal: the operator's signature alone
    // registers no one; rad-admin's approval (through its own node, the API) does.
    let out = add("rad-2", "department", "second-admin-pw");
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success() && said.contains("proposal add-rad-2"),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let set_password = || {
        let mut child = Command::new(BIN)
            .args(["user", "set-password", "--config"])
            .arg(c.config(2))
            .args(["--user-id", "rad-2"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(b"second-admin-pw\n")
            .expect("password");
        child.wait_with_output().expect("set-password")
    };
    assert!(
        !set_password().status.success(),
        "rad-2 is on the ledger before the second signature"
    );
    let (status, list) = c.get_with(2, "/api/proposals", &token);
    assert_eq!(status, 200, "{list}");
    let open = &list["proposals"][0];
    assert_eq!(open["proposal_id"], "add-rad-2", "{list}");
    assert_eq!(
        open["approvals"],
        serde_json::json!(["@operator"]),
        "{list}"
    );
    assert_eq!(open["may_approve"], true, "{list}");
    // Another organisation's administrator cannot sign it: org 0's dep001 sees nothing
    // of org 2's proposals, and its node's approval is refused by the ledger.
    let dep = c.login(0, "dep001", "department123");
    // The access monitor's counters on /metrics: d001 reads a consenting patient's
    // chart, the department's alert list feeds the monitor, and the read is counted
    // under the fact that explains it.
    let d001 = c.login(0, "d001", "doctor123");
    let (status, v) = c.post(0, "/api/get_chain", Some(&d001), r#"{"patient_id":"p001"}"#);
    assert_eq!(status, 200, "{v}");
    let (status, v) = c.get_with(0, "/api/alerts", &dep);
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        c.metric(
            0,
            "medchain_monitor_reads_total{explanation=\"personal_consent\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        c.metric(
            0,
            "medchain_monitor_alerts_total{rule=\"no_treatment_relationship\"}"
        ),
        Some(0.0)
    );
    let (_, theirs) = c.get_with(0, "/api/proposals", &dep);
    assert_eq!(theirs["proposals"], serde_json::json!([]), "{theirs}");
    let (status, v) = c.post(0, "/api/proposals/add-rad-2/approve", Some(&dep), "{}");
    assert_eq!(status, 403, "{v}");
    let (status, v) = c.post(2, "/api/proposals/add-rad-2/approve", Some(&token), "{}");
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["executed"], true, "{v}");
    let (status, v) = c.post(2, "/api/proposals/add-rad-2/approve", Some(&token), "{}");
    assert_eq!(status, 409, "an executed proposal is not signed again: {v}");
    let out = set_password();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = c.login_changing_password(2, "rad-2", "second-admin-pw", "rad-2-own-secret");
}

/// The gateway batches transactions that arrive together into one signed request, and
/// each caller still gets its own transaction's verdict from the ledger: here records
/// (all allowed) and registrations of one user id (the ledger accepts the first and
/// refuses the rest, which the API's pre-check cannot see), sent at once to one replica.
#[test]
fn concurrent_transactions_share_batches_and_keep_their_own_outcomes() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let c = Cluster::start_with(&["--demo"]);
    let d001 = c.login(0, "d001", "doctor123");
    let dep = c.login(0, "dep001", "department123");
    let c = std::sync::Arc::new(c);
    const RECORDS: usize = 24;
    const REGISTRATIONS: usize = 8;
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(RECORDS + REGISTRATIONS));
    let handles: Vec<_> = (0..RECORDS + REGISTRATIONS)
        .map(|k| {
            let (c, barrier) = (c.clone(), barrier.clone());
            let (what, path, token, body) = if k < RECORDS {
                (
                    "record",
                    "/api/add_record",
                    d001.clone(),
                    format!(
                        r#"{{"patient_id":"p001","diagnosis":"check-up {k}","prescription":"","notes":""}}"#
                    ),
                )
            } else {
                (
                    "registration",
                    "/api/users",
                    dep.clone(),
                    r#"{"user_id":"d900","role":"doctor","display_name":"Dr New","password":"a long password"}"#
                        .to_string(),
                )
            };
            std::thread::spawn(move || {
                barrier.wait();
                (what, c.post(0, path, Some(&token), &body))
            })
        })
        .collect();
    let (mut records_ok, mut registered, mut conflicts) = (0, 0, 0);
    for h in handles {
        let (what, (status, body)) = h.join().expect("thread");
        match (what, status) {
            ("record", 200) => records_ok += 1,
            ("registration", 200) => registered += 1,
            // Refused by the API's pre-check (already committed) or by the ledger.
            ("registration", 409) => conflicts += 1,
            _ => panic!("{what}: {status} {body}"),
        }
    }
    assert_eq!(records_ok, RECORDS);
    assert_eq!(registered, 1, "exactly one registration of d900 wins");
    assert_eq!(conflicts, REGISTRATIONS - 1);
    let db = rusqlite::Connection::open(c.db(0)).expect("db");
    // Replica 0's gateway is client 0: some of its requests carried several transactions.
    // (A request whose n transactions all succeeded keeps one row, idx = -n.)
    let batched: i64 = db
        .query_row(
            "SELECT COUNT(*) FROM (SELECT request_id FROM outcomes WHERE client = 0
             GROUP BY request_id HAVING SUM(CASE WHEN idx < 0 THEN -idx ELSE 1 END) > 1)",
            [],
            |r| r.get(0),
        )
        .expect("outcomes");
    assert!(batched > 0, "no request carried more than one transaction");
    // Every conflict the ledger recorded reached its own caller as a 409.
    let ledger_conflicts: i64 = db
        .query_row(
            "SELECT COUNT(*) FROM outcomes WHERE client = 0 AND outcome = 'conflict'",
            [],
            |r| r.get(0),
        )
        .expect("outcomes");
    assert!(ledger_conflicts as usize <= conflicts);
    let records: i64 = db
        .query_row(
            "SELECT COUNT(*) FROM records WHERE patient = 'p001' AND doctor = 'd001'",
            [],
            |r| r.get(0),
        )
        .expect("records");
    assert_eq!(
        records, RECORDS as i64,
        "each acknowledged record exists once"
    );
}
