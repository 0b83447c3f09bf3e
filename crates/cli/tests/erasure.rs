//! Erasure by crypto-shredding across four real replica processes: p002 asks, dep001
//! (p002's department) approves with the ledger's co-signing rule, and then every node
//! answers 410 for p002, no file of any replica holds p002's ciphertext, sealed keys or
//! clinical text, every chain still verifies (reporting the content as erased), and a
//! restart keeps it so. The ledger, not only the API, refuses an erasure signed by the
//! wrong people.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{read_only, Cluster, SERIAL};
use medchain_store::rusqlite::params;
use serde_json::json;

/// Each needle found in a file of the cluster, as "label in file".
fn found(c: &Cluster, needles: &[(String, Vec<u8>)]) -> Vec<String> {
    common::files_holding(c.dir.path(), needles).1
}

/// 32 bytes from the middle of every stored piece of `patient`'s content, sealed keys and
/// sealed reasons at replica 0: what must be gone everywhere afterwards.
fn patient_bytes(db: &Path, patient: &str) -> Vec<(String, Vec<u8>)> {
    let conn = read_only(db);
    let mut out = Vec::new();
    for (label, sql) in [
        (
            "record ciphertext",
            "SELECT c.bytes FROM records r JOIN content c
               ON c.height = r.height AND c.hash = r.content_hash WHERE r.patient = ?1",
        ),
        (
            "sealed key",
            "SELECT c.bytes FROM patient_keys k JOIN content c
               ON c.height = k.height AND c.hash = k.hash WHERE k.patient = ?1",
        ),
        (
            "sealed reason",
            "SELECT c.bytes FROM reason_pieces p JOIN content c
               ON c.height = p.height AND c.hash = p.hash WHERE p.patient = ?1",
        ),
    ] {
        let mut stmt = conn.prepare(sql).expect("prepare");
        let rows: Vec<Vec<u8>> = stmt
            .query_map(params![patient], |r| r.get(0))
            .expect("query")
            .flatten()
            .collect();
        for b in rows {
            let mid = b.len() / 2;
            out.push((label.to_string(), b[mid - 16..mid + 16].to_vec()));
        }
    }
    out
}

fn get_chain(c: &Cluster, i: usize, token: &str, patient: &str) -> (u16, serde_json::Value) {
    c.post(
        i,
        "/api/get_chain",
        Some(token),
        &json!({ "patient_id": patient }).to_string(),
    )
}

#[test]
fn an_approved_erasure_shreds_the_patient_everywhere_and_the_chain_still_verifies() {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut c = Cluster::start_with(&["--demo"]);
    // A doctor at each other organisation, with p002's consent, reads p002 there first.
    let mut doctors = vec![(0usize, c.login(0, "d001", "doctor123"))];
    let p002 = c.login(0, "p002", "patient456");
    for org in 1..4 {
        let id = format!("er-doc{org}");
        let out = c.user_add(org, &id, "doctor", "cardiology", "erasure-doctor-pw");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let t = c.login_changing_password(org, &id, "erasure-doctor-pw", "erasure-doctor-own");
        let grant = json!({"grantee_kind": "doctor", "grantee_id": id}).to_string();
        let (status, v) = c.post(0, "/api/consents", Some(&p002), &grant);
        assert_eq!(status, 200, "{v}");
        doctors.push((org, t));
    }
    let diagnosis = "Capybara-pox-3e8f";
    let body = json!({"patient_id": "p002", "diagnosis": diagnosis,
                      "prescription": "Wombatine 2 mg", "notes": "Notes-ibis-60a1"});
    let (status, v) = c.post(0, "/api/add_record", Some(&doctors[0].1), &body.to_string());
    assert_eq!(status, 200, "{v}");
    for (org, t) in &doctors {
        let (status, v) = get_chain(&c, *org, t, "p002");
        assert_eq!(status, 200, "org {org}: {v}");
        assert!(v.to_string().contains(diagnosis), "org {org}: {v}");
    }
    // Riverside's doctor also breaks the glass: the reason is sealed beside the block.
    let reason = "Reason-heron-77b1, collapsed in the lobby";
    let bg = json!({"patient_id": "p002", "reason": reason, "minutes": 5}).to_string();
    let (status, v) = c.post(1, "/api/break_glass", Some(&doctors[1].1), &bg);
    assert_eq!(status, 200, "{v}");
    for i in 1..4 {
        c.wait_same_head(0, i, Duration::from_secs(30));
    }
    let mut needles = patient_bytes(&c.db(0), "p002");
    assert!(
        needles.len() >= 6,
        "record, key copies and reason: {needles:?}"
    );
    assert!(
        needles.iter().any(|(l, _)| l == "sealed reason"),
        "{needles:?}"
    );
    needles.push(("diagnosis".into(), diagnosis.as_bytes().to_vec()));
    needles.push(("reason".into(), reason.as_bytes().to_vec()));

    // The patient asks; the wrong department cannot approve, p002's own does.
    let (status, v) = c.post(
        0,
        "/api/erasure",
        Some(&p002),
        &json!({"reason": "moving abroad; please erase my data"}).to_string(),
    );
    assert_eq!(status, 200, "{v}");
    let request_id = v["request_id"].as_str().expect("request_id").to_string();
    let dep001 = c.login(0, "dep001", "department123");
    let (status, v) = c.get_with(0, "/api/proposals", &dep001);
    assert_eq!(status, 200, "{v}");
    let listed = v["proposals"]
        .as_array()
        .expect("proposals")
        .iter()
        .find(|p| p["proposal_id"] == request_id.as_str())
        .cloned()
        .expect("the request waits for dep001");
    assert_eq!(
        listed["reason"], "moving abroad; please erase my data",
        "{listed}"
    );
    let approve = format!("/api/erasure/{request_id}/approve");
    let (status, v) = c.post(0, &approve, Some(&doctors[0].1), "{}");
    assert_eq!(status, 403, "a doctor does not approve erasures: {v}");
    let (status, v) = c.post(0, &approve, Some(&dep001), "{}");
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["erased"], true, "{v}");
    let (status, v) = c.post(0, &approve, Some(&dep001), "{}");
    assert_eq!(status, 409, "an erasure executes once: {v}");

    for i in 1..4 {
        c.wait_same_head(0, i, Duration::from_secs(30));
    }
    // Every node answers 410, to every reader who could read p002 before.
    for (org, t) in &doctors {
        let (status, v) = get_chain(&c, *org, t, "p002");
        assert_eq!(status, 410, "org {org}: {v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap_or("")
                .contains("erased"),
            "{v}"
        );
    }
    // p001 is untouched.
    let (status, v) = get_chain(&c, 0, &doctors[0].1, "p001");
    assert_eq!(status, 200, "{v}");

    // Nothing of p002's ciphertext, keys or text is in any file of any replica, running.
    let hits = found(&c, &needles);
    assert!(hits.is_empty(), "erased bytes still on disk: {hits:?}");
    for i in 0..4 {
        let n: i64 = read_only(&c.db(i))
            .query_row(
                "SELECT (SELECT COUNT(*) FROM patient_keys WHERE patient = 'p002')
                      + (SELECT COUNT(*) FROM reason_pieces WHERE patient = 'p002')",
                [],
                |r| r.get(0),
            )
            .expect("query");
        assert_eq!(n, 0, "replica {i} keeps sealed keys or reasons of p002");
    }

    // Stopped: every chain verifies and reports the erased content; restarted, p002
    // stays erased.
    c.stop_all();
    assert!(found(&c, &needles).is_empty());
    for i in 0..4 {
        let (ok, text) = c.verify(i);
        assert!(ok, "verify replica {i}: {text}");
        assert!(
            text.contains("erased") && !text.contains(" 0 erased"),
            "{text}"
        );
    }
    for i in 0..4 {
        c.start_node(i);
    }
    for i in 0..4 {
        c.wait_healthy(i);
    }
    let d001 = c.login(0, "d001", "doctor123");
    let (status, v) = get_chain(&c, 0, &d001, "p002");
    assert_eq!(status, 410, "{v}");
}

/// A backup taken before an erasure and restored after it does not bring the patient
/// back: `medchain restore` shreds what the replica erased since, and the replica then
/// catches up, verifies and answers 410.
#[test]
fn a_backup_restored_after_an_erasure_stays_erased() {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut c = Cluster::start_with(&["--demo"]);
    let p002 = c.login(0, "p002", "patient456");
    let out = c.user_add(1, "bk-doc", "doctor", "cardiology", "backup-doctor-pw");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc1 = c.login_changing_password(1, "bk-doc", "backup-doctor-pw", "backup-doctor-own");
    let grant = json!({"grantee_kind": "doctor", "grantee_id": "bk-doc"}).to_string();
    let (status, v) = c.post(0, "/api/consents", Some(&p002), &grant);
    assert_eq!(status, 200, "{v}");
    let d001 = c.login(0, "d001", "doctor123");
    let body = json!({"patient_id": "p002", "diagnosis": "Quetzal-gout-77b1",
                      "prescription": "", "notes": ""});
    let (status, v) = c.post(0, "/api/add_record", Some(&d001), &body.to_string());
    assert_eq!(status, 200, "{v}");
    let (status, v) = get_chain(&c, 1, &doc1, "p002");
    assert_eq!(status, 200, "{v}");
    c.wait_same_head(0, 1, Duration::from_secs(30));
    let needles = patient_bytes(&c.db(1), "p002");
    assert!(!needles.is_empty());

    // The backup, taken while replica 1 runs, holds p002's ciphertext.
    let backup = c.dir.path().join("org1-backup.sqlite");
    let out = std::process::Command::new(common::BIN)
        .args(["backup", "--config"])
        .arg(c.config(1))
        .arg("--out")
        .arg(&backup)
        .output()
        .expect("backup");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let copy = std::fs::read(&backup).expect("backup file");
    assert!(needles
        .iter()
        .any(|(_, n)| copy.windows(n.len()).any(|w| w == n.as_slice())));

    // Erased after the backup.
    let (status, v) = c.post(
        0,
        "/api/erasure",
        Some(&p002),
        r#"{"reason":"please erase"}"#,
    );
    assert_eq!(status, 200, "{v}");
    let id = v["request_id"].as_str().expect("request_id").to_string();
    let dep001 = c.login(0, "dep001", "department123");
    let (status, v) = c.post(
        0,
        &format!("/api/erasure/{id}/approve"),
        Some(&dep001),
        "{}",
    );
    assert_eq!(status, 200, "{v}");
    c.wait_same_head(0, 1, Duration::from_secs(30));

    // Replica 1 stopped, restored from the older copy: nothing of p002 in its folder.
    c.kill9(1);
    let out = std::process::Command::new(common::BIN)
        .args(["restore", "--config"])
        .arg(c.config(1))
        .arg("--from")
        .arg(&backup)
        .output()
        .expect("restore");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains("p002"), "the erasure is re-applied: {said}");
    std::fs::remove_file(&backup).expect("the operator deletes the old copy");
    let hits = found(&c, &needles);
    assert!(hits.is_empty(), "erased bytes back on disk: {hits:?}");

    c.start_node(1);
    c.wait_healthy(1);
    c.wait_same_head(0, 1, Duration::from_secs(30));
    let doc1 = c.login(1, "bk-doc", "backup-doctor-own");
    let (status, v) = get_chain(&c, 1, &doc1, "p002");
    assert_eq!(status, 410, "{v}");
    c.stop_all();
    let (ok, text) = c.verify(1);
    assert!(ok, "{text}");
    assert!(found(&c, &needles).is_empty());
}
