//! An organisation replaces its encryption key, on four real processes: Riverside
//! (organisation 1) proposes a new key with `medchain user rotate-encryption-key`; it
//! takes effect only with the operators of 2f+1 = 3 organisations; St Mary's node then
//! seals the patient keys Riverside holds again, to the new key; Riverside's doctor keeps
//! reading, also once the old key file is gone, and the old key opens none of the new
//! copies.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{read_only, Cluster, BIN, SERIAL};
use medchain_records::sealed::key_aad;
use medchain_seal::{OrgSecretKey, SealedKey};
use serde_json::json;

const RIVERSIDE: usize = 1;

fn secret_in(path: &Path) -> OrgSecretKey {
    let text = std::fs::read_to_string(path).expect("key file");
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(text.trim(), &mut bytes).expect("hex");
    OrgSecretKey::from_bytes(bytes)
}

fn approve(c: &Cluster, org: usize, proposal: &str) -> String {
    let out = Command::new(BIN)
        .args(["user", "approve", "--config"])
        .arg(c.config(org))
        .args(["--proposal-id", proposal])
        .output()
        .expect("approve");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// Riverside's copies of p001's keys: (epoch, the key they are sealed to, sealed bytes).
fn copies(c: &Cluster) -> Vec<(u32, Option<Vec<u8>>, Vec<u8>)> {
    let conn = read_only(&c.db(RIVERSIDE));
    let mut stmt = conn
        .prepare(
            "SELECT k.epoch, k.recipient_key, c.bytes FROM patient_keys k
               JOIN content c ON c.height = k.height AND c.hash = k.hash
             WHERE k.patient = 'p001' AND k.organisation = ?1 ORDER BY k.epoch",
        )
        .expect("prepare");
    stmt.query_map([RIVERSIDE as i64], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
    })
    .expect("query")
    .flatten()
    .collect()
}

fn read_p001(c: &Cluster, token: &str) -> (u16, serde_json::Value) {
    c.post(
        RIVERSIDE,
        "/api/get_chain",
        Some(token),
        &json!({"patient_id": "p001"}).to_string(),
    )
}

#[test]
fn an_organisation_rotates_its_encryption_key_with_2f_plus_1_organisations() {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut c = Cluster::start_with(&["--demo"]);
    let out = c.user_add(
        RIVERSIDE,
        "rk-doc",
        "doctor",
        "cardiology",
        "rotation-doctor-pw",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc = c.login_changing_password(RIVERSIDE, "rk-doc", "rotation-doctor-pw", "rotation-own");
    let p001 = c.login(0, "p001", "patient123");
    let grant = json!({"grantee_kind": "doctor", "grantee_id": "rk-doc"}).to_string();
    let (status, v) = c.post(0, "/api/consents", Some(&p001), &grant);
    assert_eq!(status, 200, "{v}");
    let d001 = c.login(0, "d001", "doctor123");
    let body = json!({"patient_id": "p001", "diagnosis": "Pelican-rash-0c3d",
                      "prescription": "", "notes": ""});
    let (status, v) = c.post(0, "/api/add_record", Some(&d001), &body.to_string());
    assert_eq!(status, 200, "{v}");
    let (status, v) = read_p001(&c, &doc);
    assert_eq!(status, 200, "{v}");
    assert!(v.to_string().contains("Pelican-rash-0c3d"));

    // Riverside proposes a new key and restarts holding both.
    let out = Command::new(BIN)
        .args(["user", "rotate-encryption-key", "--config"])
        .arg(c.config(RIVERSIDE))
        .output()
        .expect("rotate");
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let proposal = said
        .split("(proposal ")
        .nth(1)
        .and_then(|r| r.split(',').next())
        .expect("the proposal id")
        .to_string();
    let keys = c.dir.path().join(format!("org{RIVERSIDE}/keys"));
    let old = secret_in(&keys.join("encryption.key"));
    let new = secret_in(&keys.join("encryption.key.next"));
    let new_public = new.public().expect("public").0;
    c.kill9(RIVERSIDE);
    c.start_node(RIVERSIDE);
    c.wait_healthy(RIVERSIDE);

    // Two organisations of the three it needs: nothing changes.
    let said = approve(&c, 0, &proposal);
    assert!(said.contains("still waits"), "{said}");
    std::thread::sleep(Duration::from_secs(1));
    assert!(copies(&c)
        .iter()
        .all(|(_, to, _)| to.as_deref() != Some(&new_public[..])));
    let said = approve(&c, 2, &proposal);
    assert!(said.contains("executed in block"), "{said}");

    // St Mary's seals p001's keys to Riverside's new key.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let now = copies(&c);
        if !now.is_empty()
            && now
                .iter()
                .all(|(_, to, _)| to.as_deref() == Some(&new_public[..]))
        {
            for (epoch, _, sealed) in &now {
                let aad = key_aad("p001", *epoch);
                let sealed = SealedKey(sealed.clone());
                assert!(medchain_seal::sealed::open_key(&new, &aad, &sealed).is_ok());
                assert!(medchain_seal::sealed::open_key(&old, &aad, &sealed).is_err());
            }
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not sealed again in time: {now:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // The new key in place of the old one: Riverside still reads p001.
    std::fs::rename(
        keys.join("encryption.key.next"),
        keys.join("encryption.key"),
    )
    .expect("the operator moves the new key into place");
    c.kill9(RIVERSIDE);
    c.start_node(RIVERSIDE);
    c.wait_healthy(RIVERSIDE);
    let doc = c.login(RIVERSIDE, "rk-doc", "rotation-own");
    let (status, v) = read_p001(&c, &doc);
    assert_eq!(status, 200, "{v}");
    assert!(v.to_string().contains("Pelican-rash-0c3d"), "{v}");
    c.stop_all();
    for i in 0..4 {
        let (ok, text) = c.verify(i);
        assert!(ok, "verify replica {i}: {text}");
    }
}
