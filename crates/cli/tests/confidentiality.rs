//! Least knowledge, tested as the insurer would try it: four real replica processes; St
//! Mary's registers a patient with a unique name and a doctor writes records with unique
//! clinical text; then every file of every organisation's folder (databases, WAL, logs,
//! keys) is searched byte for byte, and Northwind Health Insurance (organisation 3) tries
//! its own API, its own database and its own encryption key, before consent, with
//! consent, and after revocation.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{read_only, Cluster, SERIAL};
use medchain_records::sealed::{key_aad, open_record, StoredContent};
use medchain_seal::{OrgSecretKey, SealedKey};
use medchain_store::rusqlite::{params, OptionalExtension};
use serde_json::json;

const INSURER: usize = 3;

/// Which of `secrets` occur in any file of the cluster's folder, as "secret in file".
fn found_in_files(c: &Cluster, secrets: &[&str]) -> (usize, Vec<String>) {
    let needles: Vec<(String, Vec<u8>)> = secrets
        .iter()
        .map(|s| (s.to_string(), s.as_bytes().to_vec()))
        .collect();
    common::files_holding(c.dir.path(), &needles)
}

/// The stored content bytes of `record_id` in a replica's database.
fn stored_content(db: &Path, record_id: &str) -> Option<Vec<u8>> {
    read_only(db)
        .query_row(
            "SELECT c.bytes FROM records r JOIN content c
               ON c.height = r.height AND c.hash = r.content_hash
             WHERE r.record_id = ?1",
            params![record_id],
            |r| r.get(0),
        )
        .optional()
        .expect("query")
}

/// Organisation `org`'s own encryption secret, from its key folder.
fn secret_of(c: &Cluster, org: usize) -> OrgSecretKey {
    let hex_key =
        std::fs::read_to_string(c.dir.path().join(format!("org{org}/keys/encryption.key")))
            .expect("the organisation's own key");
    let mut secret = [0u8; 32];
    hex::decode_to_slice(hex_key.trim(), &mut secret).expect("hex key");
    OrgSecretKey::from_bytes(secret)
}

/// The sealed reason pieces about `patient` in replica `i`'s database.
fn reason_pieces(c: &Cluster, i: usize, patient: &str) -> Vec<Vec<u8>> {
    read_only(&c.db(i))
        .prepare(
            "SELECT c.bytes FROM reason_pieces p JOIN content c
               ON c.height = p.height AND c.hash = p.hash
             WHERE p.patient = ?1",
        )
        .expect("prepare")
        .query_map(params![patient], |r| r.get(0))
        .expect("query")
        .flatten()
        .collect()
}

/// What the insurer can decrypt of `record_id` with its own key and database alone.
fn insurer_decrypts(c: &Cluster, patient: &str, record_id: &str) -> Option<String> {
    let db = c.db(INSURER);
    let bytes = stored_content(&db, record_id)?;
    let StoredContent::Sealed {
        epoch, envelope, ..
    } = StoredContent::parse(&bytes)
    else {
        panic!("record {record_id} is not stored sealed at the insurer");
    };
    let sk = secret_of(c, INSURER);
    let conn = read_only(&db);
    let sealed: Option<Vec<u8>> = conn
        .query_row(
            "SELECT c.bytes FROM patient_keys k JOIN content c
               ON c.height = k.height AND c.hash = k.hash
             WHERE k.patient = ?1 AND k.epoch = ?2 AND k.organisation = ?3",
            params![patient, epoch, INSURER as i64],
            |r| r.get(0),
        )
        .optional()
        .expect("query");
    // Without a copy sealed to it, the insurer tries every sealed key in its database.
    let candidates: Vec<Vec<u8>> = match sealed {
        Some(s) => vec![s],
        None => conn
            .prepare(
                "SELECT c.bytes FROM patient_keys k JOIN content c
                   ON c.height = k.height AND c.hash = k.hash",
            )
            .expect("prepare")
            .query_map([], |r| r.get(0))
            .expect("query")
            .flatten()
            .collect(),
    };
    candidates.into_iter().find_map(|s| {
        let key =
            medchain_seal::sealed::open_key(&sk, &key_aad(patient, epoch), &SealedKey(s)).ok()?;
        open_record(&key, patient, record_id, envelope).map(|c| c.diagnosis)
    })
}

fn get_chain(c: &Cluster, i: usize, token: &str, patient: &str) -> (u16, serde_json::Value) {
    c.post(
        i,
        "/api/get_chain",
        Some(token),
        &json!({ "patient_id": patient }).to_string(),
    )
}

/// Write a prescribing record for p001 at St Mary's: its id and prescription code.
fn add_record(
    c: &Cluster,
    token: &str,
    diagnosis: &str,
    notes: &str,
    drug: &str,
) -> (String, String) {
    let body = json!({
        "patient_id": "p001",
        "diagnosis": diagnosis,
        "prescription": format!("{drug} 10 mg daily"),
        "notes": notes,
        "medications": [{"name": drug, "dose": "10 mg", "frequency": "daily"}],
    });
    let (status, v) = c.post(0, "/api/add_record", Some(token), &body.to_string());
    assert_eq!(status, 200, "{v}");
    let id = v["record_id"].as_str().expect("record_id").to_string();
    let code = v["prescription_code"].as_str().expect("a code").to_string();
    (id, code)
}

fn converge(c: &Cluster) {
    for i in 1..4 {
        c.wait_same_head(0, i, Duration::from_secs(30));
    }
}

#[test]
fn no_replica_keeps_clinical_text_and_the_insurer_reads_only_what_consent_gives_it() {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut c = Cluster::start_with(&["--demo"]);
    let out = c.user_add(INSURER, "ins-doc", "doctor", "claims", "insurer-doctor-pw");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let insurer = c.login_changing_password(
        INSURER,
        "ins-doc",
        "insurer-doctor-pw",
        "insurer-doctor-own",
    );
    let d001 = c.login(0, "d001", "doctor123");
    // The demo patients' names are in the genesis sealed; St Mary's node publishes the
    // first keys `init` left in its data folder, then deletes the file.
    let first_keys = c.db(0).with_file_name("first-patient-keys.toml");
    let until = Instant::now() + Duration::from_secs(20);
    while first_keys.exists() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        !first_keys.exists(),
        "{} is still there",
        first_keys.display()
    );
    let p001 = c.login(0, "p001", "patient123");
    let (status, v) = c.get_with(0, "/api/me", &p001);
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["display_name"], "Maria Santos", "{v}");
    // A patient St Mary's registers: their name is sealed before it reaches the ledger.
    let dep001 = c.login(0, "dep001", "department123");
    let name = "Ysolde Brackenridge";
    let body = json!({"user_id": "p-ysolde", "role": "patient", "display_name": name,
                      "password": "a-long-initial-pw"});
    let (status, v) = c.post(0, "/api/users", Some(&dep001), &body.to_string());
    assert_eq!(status, 200, "{v}");
    let (status, v) = c.get_with(0, "/api/users?search=brackenr", &dep001);
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        v[0]["display_name"], name,
        "found by name at St Mary's: {v}"
    );
    // And one its operator registers from the command line: sealed the same way.
    let cli_name = "Wilhelmina Orchardgate";
    let mut add = std::process::Command::new(common::BIN)
        .args(["user", "add", "--config"])
        .arg(c.config(0))
        .args(["--user-id", "p-wilhelmina", "--role", "patient"])
        .args(["--department", "cardiology", "--display-name", cli_name])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("medchain user add");
    {
        use std::io::Write;
        let mut stdin = add.stdin.take().expect("stdin");
        stdin.write_all(b"a-long-initial-pw\n").expect("password");
    }
    let out = add.wait_with_output().expect("user add");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (status, v) = c.get_with(0, "/api/users?search=orchardg", &dep001);
    assert_eq!(status, 200, "{v}");
    assert_eq!(v[0]["display_name"], cli_name, "{v}");
    let first = [
        "Zebrafinch-syndrome-7f3a",
        "Notes-pangolin-91c2",
        "Quokkazine-44",
    ];
    let second = ["Okapi-fever-5521", "Notes-narwhal-08d9", "Axolotlamide-17"];
    let (r1, code1) = add_record(&c, &d001, first[0], first[1], first[2]);

    // The insurer, without consent: refused by its API, ciphertext in its database.
    let (status, v) = get_chain(&c, INSURER, &insurer, "p001");
    assert_eq!(status, 403, "{v}");
    converge(&c);
    let at_insurer = stored_content(&c.db(INSURER), &r1).expect("the insurer stores the record");
    assert!(
        matches!(
            StoredContent::parse(&at_insurer),
            StoredContent::Sealed {
                prescription: Some(_),
                ..
            }
        ),
        "stored sealed, with the prescription's envelope"
    );
    assert_eq!(insurer_decrypts(&c, "p001", &r1), None);
    // Everything written in clear that no file may hold: clinical text, names, the
    // prescription code, the break-glass reason (written later on).
    let code_unformatted = code1.replace('-', "");
    let secrets: Vec<&str> = [
        &first[..],
        &second[..],
        &[
            name,
            cli_name,
            "Ocelot-ague-2b7e",
            &code1,
            &code_unformatted,
        ],
        &[
            "Maria Santos",
            "James Chen",
            "unconscious at the claims office",
        ],
    ]
    .concat();
    let (files, hits) = found_in_files(&c, &secrets);
    assert!(files > 20, "only {files} files searched");
    assert!(hits.is_empty(), "clinical text on disk: {hits:?}");
    // A guessed diagnosis, hashed as the old format did, matches no content hash.
    let guess = medchain_records::RecordContent {
        department: "cardiology".into(),
        diagnosis: first[0].into(),
        prescription: format!("{} 10 mg daily", first[2]),
        notes: first[1].into(),
        medications: Vec::new(),
    };
    let guessed = medchain_types::Hash32::sha256(&guess.to_bytes());
    let n: i64 = read_only(&c.db(INSURER))
        .query_row(
            "SELECT COUNT(*) FROM content WHERE hash = ?1",
            params![&guessed.0[..]],
            |r| r.get(0),
        )
        .expect("query");
    assert_eq!(n, 0);

    // A pharmacy of Riverside (organisation 1, no key of p001's at all) given the code:
    // the code opens the medication lines, and nothing else, at its own node.
    let out = c.user_add(1, "ph-river", "pharmacy", "pharmacy", "river-pharmacy-pw");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ph = c.login_changing_password(1, "ph-river", "river-pharmacy-pw", "river-pharmacy-own");
    let search = |code: &str| {
        let body = json!({ "code": code }).to_string();
        c.post(1, "/api/prescriptions/search", Some(&ph), &body)
    };
    let (status, v) = search(&code1.to_lowercase());
    assert_eq!(status, 200, "{v}");
    let rx = &v["prescriptions"][0];
    assert_eq!(rx["record_id"], r1.as_str(), "{v}");
    assert_eq!(rx["medications"][0]["name"], first[2], "{v}");
    assert_eq!(rx["prescription"], format!("{} 10 mg daily", first[2]));
    assert!(!v.to_string().contains(first[0]) && !v.to_string().contains(first[1]));
    // A wrong code (of the right shape) learns nothing: the same answer as a code that
    // names nothing, for the search and for a dispense of the real prescription.
    let mut wrong = code1.clone().into_bytes();
    wrong[0] = if wrong[0] == b'A' { b'B' } else { b'A' };
    let wrong = String::from_utf8(wrong).expect("ascii");
    let (status, miss) = search(&wrong);
    assert_eq!(status, 404, "{miss}");
    let dispense = |record: &str, code: &str| {
        let body = json!({ "code": code }).to_string();
        let path = format!("/api/prescriptions/{record}/dispense");
        c.post(1, &path, Some(&ph), &body)
    };
    let (s_real, real) = dispense(&r1, &wrong);
    let (s_none, none) = dispense("rec-does-not-exist", &wrong);
    assert_eq!(
        (s_real, &real["error"]),
        (s_none, &none["error"]),
        "{real} / {none}"
    );
    assert_eq!(s_real, 404);
    assert_eq!(
        real["error"], miss["error"],
        "search and dispense answer alike"
    );
    let (status, v) = dispense(&r1, &code1);
    assert_eq!(status, 200, "{v}");
    let (status, v) = dispense(&r1, &code1);
    assert_eq!(status, 409, "dispensed once: {v}");
    // The code itself reaches no replica's file (the byte searches here and after the
    // stop include it): the ledger holds only its proof.

    // p001 consents to the insurer's doctor: St Mary's node seals the key to
    // Northwind, and the record reads there, through the API and with its own key.
    let grant = json!({"grantee_kind": "doctor", "grantee_id": "ins-doc"}).to_string();
    let (status, v) = c.post(0, "/api/consents", Some(&p001), &grant);
    assert_eq!(status, 200, "{v}");
    // (The consent commits at St Mary's node; Northwind's executes the block a moment
    // later.)
    converge(&c);
    let (status, v) = get_chain(&c, INSURER, &insurer, "p001");
    assert_eq!(status, 200, "{v}");
    let records = v["records"].as_array().expect("records");
    let mine = records
        .iter()
        .find(|r| r["record_id"] == r1.as_str())
        .expect("the record");
    assert_eq!(mine["diagnosis"], first[0], "{mine}");
    assert_eq!(mine["notes"], first[1]);
    assert_eq!(insurer_decrypts(&c, "p001", &r1).as_deref(), Some(first[0]));

    // Revoked: the next record is under a new key epoch that Northwind never gets.
    let revoke = json!({"grantee_kind": "doctor", "grantee_id": "ins-doc"}).to_string();
    let (status, v) = c.post(0, "/api/consents/revoke", Some(&p001), &revoke);
    assert_eq!(status, 200, "{v}");
    let (r2, _) = add_record(&c, &d001, second[0], second[1], second[2]);
    let (status, v) = get_chain(&c, INSURER, &insurer, "p001");
    assert_eq!(status, 403, "{v}");
    converge(&c);
    // Give the home organisation's steward time to do anything it would do wrongly.
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until {
        std::thread::sleep(Duration::from_millis(200));
    }
    converge(&c);
    let sealed = stored_content(&c.db(INSURER), &r2).expect("the insurer stores it");
    let StoredContent::Sealed { epoch, .. } = StoredContent::parse(&sealed) else {
        panic!("not sealed");
    };
    assert!(epoch >= 1, "a new epoch after revocation, got {epoch}");
    assert_eq!(insurer_decrypts(&c, "p001", &r2), None);
    // St Mary's still reads both.
    let (status, v) = get_chain(&c, 0, &d001, "p001");
    assert_eq!(status, 200, "{v}");
    let text = v.to_string();
    assert!(
        text.contains(first[0]) && text.contains(second[0]),
        "{text}"
    );

    // Break-glass by the insurer's doctor on p002 (no consent): St Mary's node seals
    // p002's key to Northwind when it executes the opening, and the read waits for it.
    let body = json!({"patient_id": "p002", "diagnosis": "Ocelot-ague-2b7e",
                      "prescription": "", "notes": ""});
    let (status, v) = c.post(0, "/api/add_record", Some(&d001), &body.to_string());
    assert_eq!(status, 200, "{v}");
    let (status, v) = get_chain(&c, INSURER, &insurer, "p002");
    assert_eq!(status, 403, "{v}");
    let bg =
        json!({"patient_id": "p002", "reason": "unconscious at the claims office", "minutes": 5});
    let (status, v) = c.post(INSURER, "/api/break_glass", Some(&insurer), &bg.to_string());
    assert_eq!(status, 200, "{v}");
    let (status, v) = get_chain(&c, INSURER, &insurer, "p002");
    assert_eq!(status, 200, "{v}");
    assert!(v.to_string().contains("Ocelot-ague-2b7e"), "{v}");
    // The reason is in no block: sealed to St Mary's and Northwind, beside the
    // transaction. The patient and her department read it at St Mary's; Northwind opens
    // it with its own key; Riverside, with its own, does not.
    let p002 = c.login(0, "p002", "patient456");
    let (status, v) = c.get_with(0, "/api/break_glass", &p002);
    assert_eq!(status, 200, "{v}");
    assert_eq!(v[0]["reason"], bg["reason"], "{v}");
    let (status, v) = c.get_with(0, "/api/break_glass/alerts", &dep001);
    assert_eq!(status, 200, "{v}");
    assert!(
        v.to_string().contains("unconscious at the claims office"),
        "{v}"
    );
    converge(&c);
    let pieces = reason_pieces(&c, 1, "p002");
    assert_eq!(pieces.len(), 1, "one sealed reason");
    let open = |org: usize| {
        medchain_records::sealed::open_reason(
            &pieces[0],
            org as u16,
            &[&secret_of(&c, org)],
            "p002",
        )
    };
    assert_eq!(
        open(INSURER).as_deref(),
        Some("unconscious at the claims office")
    );
    assert_eq!(open(0).as_deref(), Some("unconscious at the claims office"));
    assert_eq!(open(1), None);
    // The department's review note is sealed the same way, and reads at St Mary's.
    let id = v[0]["id"].as_i64().expect("event id");
    let note = json!({"note": "Reviewed-note-kestrel-5c1: justified"}).to_string();
    let (status, v) = c.post(
        0,
        &format!("/api/break_glass/{id}/review"),
        Some(&dep001),
        &note,
    );
    assert_eq!(status, 200, "{v}");
    let (status, v) = c.get_with(0, "/api/break_glass", &p002);
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        v[0]["review_note"], "Reviewed-note-kestrel-5c1: justified",
        "{v}"
    );

    // Stopped cleanly (WAL checkpointed into the database files): nothing in clear in
    // any file, and every chain verifies.
    c.stop_all();
    let (_, hits) = found_in_files(&c, &secrets);
    assert!(hits.is_empty(), "clinical text on disk: {hits:?}");
    for i in 0..4 {
        let (ok, text) = c.verify(i);
        assert!(ok, "verify replica {i}: {text}");
    }
}
