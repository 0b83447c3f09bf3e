//! Bad input, verbatim text, consent codes, amendments, prescriptions and dispensing,
//! manual validation, and the FHIR export checked by an independent validator.

mod common;

use axum::http::StatusCode;
use common::TestApi;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_clear_4xx_naming_the_field() {
    let api = TestApi::new();
    let d = api.login("d001").await;
    let ct = Some("application/json");
    let (s, v) = api
        .call_raw(
            "POST",
            "/api/add_record",
            Some(&d),
            ct,
            b"{\"patient_id\": ".to_vec(),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("malformed JSON"));
    let (s, v) = api
        .call(
            "POST",
            "/api/add_record",
            Some(&d),
            Some(json!({"patient_id": 7, "diagnosis": "x"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("patient_id"),
        "{v}"
    );
    let (s, v) = api
        .call(
            "POST",
            "/api/add_record",
            Some(&d),
            Some(json!({"patient_id": "p001"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("diagnosis"),
        "{v}"
    );
    assert_eq!(v["error"]["field"], "diagnosis", "missing field named: {v}");
    let (s, v) = api
        .call(
            "POST",
            "/api/add_record",
            Some(&d),
            Some(json!({"patient_id": "p001", "diagnosis": "  "})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["error"]["message"], "diagnosis: required");
    assert_eq!(v["error"]["field"], "diagnosis");
    let (s, v) = api
        .call(
            "POST",
            "/api/add_record",
            Some(&d),
            Some(json!({"patient_id": "p001", "diagnosis": "x", "dosage": "unknown field"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        v["error"]["message"].as_str().unwrap().contains("dosage"),
        "{v}"
    );
    assert_eq!(v["error"]["field"], "dosage", "unknown field named: {v}");
    let (s, v) = api
        .call(
            "POST",
            "/api/add_record",
            Some(&d),
            Some(json!({"patient_id": "p001", "diagnosis": "x".repeat(2001)})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["error"]["message"], "diagnosis: at most 2000 characters");
    assert_eq!(v["error"]["field"], "diagnosis");
    let (s, v) = api
        .call(
            "POST",
            "/api/add_record",
            Some(&d),
            Some(json!({"patient_id": "p001", "diagnosis": "x", "medications": [{"name": ""}]})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["error"]["message"], "medications[0].name: required");
    let big = format!(
        "{{\"patient_id\":\"p001\",\"diagnosis\":\"{}\"}}",
        "a".repeat(1 << 20)
    );
    let (s, v) = api
        .call_raw("POST", "/api/add_record", Some(&d), ct, big.into_bytes())
        .await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
    assert_eq!(v["error"]["code"], "too_large");
    let (s, _) = api
        .call_raw(
            "POST",
            "/api/add_record",
            Some(&d),
            Some("text/plain"),
            b"{}".to_vec(),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = api
        .call(
            "POST",
            "/api/get_chain",
            Some(&d),
            Some(json!({"patient_id": "nobody"})),
        )
        .await;
    // An unknown patient answers as one without consent (complete_reads.rs).
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, v) = api.call("GET", "/api/no/such/thing", None, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(v["error"]["code"], "not_found");
    // Nothing above reached the ledger.
    let (_, head) = api.call("GET", "/api/chain/head", None, None).await;
    assert_eq!(head["height"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unicode_and_sql_looking_text_round_trip_verbatim() {
    let api = TestApi::new();
    let d = api.login("d001").await;
    let diagnosis = "Zoë's 💊 reaction; Robert'); DROP TABLE records;-- 日本語 \"quoted\"";
    let notes = "line 1\nline 2\t% _ \\ ' -- /* */";
    let (s, v) = api
        .call(
            "POST",
            "/api/add_record",
            Some(&d),
            Some(json!({"patient_id": "p001", "diagnosis": diagnosis, "notes": notes})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(v["prescription_code"].is_null(), "no prescription, no code");
    let (_, chain) = api
        .call(
            "POST",
            "/api/get_chain",
            Some(&d),
            Some(json!({"patient_id": "p001"})),
        )
        .await;
    assert_eq!(chain["records"][0]["diagnosis"], diagnosis);
    assert_eq!(chain["records"][0]["notes"], notes);
    // The search with LIKE metacharacters finds nothing rather than everything.
    let (_, found) = api
        .call("GET", "/api/patients?search=%25", Some(&d), None)
        .await;
    assert_eq!(found.as_array().unwrap().len(), 0, "{found}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_time_consent_code_lets_one_doctor_add_one_record_within_five_minutes() {
    let api = TestApi::new();
    let p = api.login("p001").await;
    let d3 = api.login("d003").await;
    let (s, code) = api.call("POST", "/api/consent_codes", Some(&p), None).await;
    assert_eq!(s, StatusCode::OK);
    let c = code["code"].as_str().unwrap().to_string();
    assert_eq!(
        code["expires_at_ms"].as_u64().unwrap(),
        api.now_ms() + 300_000
    );
    let body =
        |code: &str| json!({"patient_id": "p001", "diagnosis": "Angina", "consent_code": code});
    let (s, v) = api
        .call(
            "POST",
            "/api/add_record",
            Some(&d3),
            Some(body("WRONG-CODE1")),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    // Typed in lower case with spaces: still the same code.
    let typed = c.to_lowercase().replace('-', " ");
    let (s, v) = api
        .call("POST", "/api/add_record", Some(&d3), Some(body(&typed)))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, _) = api
        .call("POST", "/api/add_record", Some(&d3), Some(body(&c)))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "single use");
    // The code did not grant reading.
    let (s, _) = api
        .call(
            "POST",
            "/api/get_chain",
            Some(&d3),
            Some(json!({"patient_id": "p001"})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (_, code2) = api.call("POST", "/api/consent_codes", Some(&p), None).await;
    api.advance_ms(300_001);
    let d3 = api.login("d003").await;
    let (s, _) = api
        .call(
            "POST",
            "/api/add_record",
            Some(&d3),
            Some(body(code2["code"].as_str().unwrap())),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "expired after 5 minutes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consent_expiry_follows_the_clock() {
    let api = TestApi::new();
    let p = api.login("p001").await;
    let exp = api.now_ms() + 10 * 60 * 1000;
    let (s, _) = api
        .call("POST", "/api/consents", Some(&p),
              Some(json!({"grantee_kind": "department", "grantee_id": "oncology", "expires_at_ms": exp})))
        .await;
    assert_eq!(s, StatusCode::OK);
    let d3 = api.login("d003").await; // oncology
    let (s, _) = api
        .call(
            "POST",
            "/api/get_chain",
            Some(&d3),
            Some(json!({"patient_id": "p001"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "department consent covers its doctors");
    api.advance_ms(10 * 60 * 1000 - 1);
    let (s, _) = api
        .call(
            "POST",
            "/api/get_chain",
            Some(&d3),
            Some(json!({"patient_id": "p001"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "one millisecond before expiry");
    api.advance_ms(1);
    let (s, _) = api
        .call(
            "POST",
            "/api/get_chain",
            Some(&d3),
            Some(json!({"patient_id": "p001"})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "at expiry");
    let (_, list) = api.call("GET", "/api/consents", Some(&p), None).await;
    let onc = list
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["grantee_id"] == "oncology")
        .unwrap();
    assert_eq!(onc["active"], false);
    let (s, _) = api
        .call("POST", "/api/consents", Some(&p),
              Some(json!({"grantee_kind": "doctor", "grantee_id": "d003", "expires_at_ms": api.now_ms()})))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "expiry in the past");
    let (s, _) = api
        .call(
            "POST",
            "/api/consents",
            Some(&p),
            Some(json!({"grantee_kind": "doctor", "grantee_id": "p002"})),
        )
        .await;
    assert_eq!(
        s,
        StatusCode::UNPROCESSABLE_ENTITY,
        "a patient is not a doctor"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pharmacy_sees_medication_lines_only_and_dispenses_once() {
    let api = TestApi::new();
    let d = api.login("d001").await;
    let (rid, code) = api.add_record(&d, "p001").await;
    let ph = api.login("ph001").await;
    let (s, v) = api
        .call(
            "POST",
            "/api/prescriptions/search",
            Some(&ph),
            Some(json!({"code": code})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let text = v.to_string();
    assert!(text.contains("Amlodipine"));
    assert!(
        !text.contains("Hypertension") && !text.contains("follow up"),
        "no diagnosis or notes: {text}"
    );
    assert!(v["prescriptions"][0]["dispensed"].is_null());
    let path = format!("/api/prescriptions/{rid}/dispense");
    let (s, _) = api.call("POST", &path, Some(&ph), Some(json!({}))).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "no consent and no code");
    let (s, v) = api
        .call("POST", &path, Some(&ph), Some(json!({"code": code})))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let ph2 = api.login("ph002").await;
    let (s, v) = api
        .call("POST", &path, Some(&ph2), Some(json!({"code": code})))
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("already dispensed"));
    let (_, v) = api
        .call(
            "POST",
            "/api/prescriptions/search",
            Some(&ph),
            Some(json!({"code": code})),
        )
        .await;
    assert_eq!(v["prescriptions"][0]["dispensed"]["pharmacy_id"], "ph001");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amendments_point_at_the_record_they_correct() {
    let api = TestApi::new();
    let d = api.login("d001").await;
    let (rid, _) = api.add_record(&d, "p001").await;
    let (s, v) = api
        .call(
            "POST",
            "/api/add_record",
            Some(&d),
            Some(json!({"patient_id": "p001", "diagnosis": "Hypertension stage 2", "amends": rid})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, _) = api
        .call(
            "POST",
            "/api/add_record",
            Some(&d),
            Some(json!({"patient_id": "p002", "diagnosis": "x", "amends": rid})),
        )
        .await;
    assert_eq!(
        s,
        StatusCode::NOT_FOUND,
        "cannot amend another patient's record"
    );
    let (_, chain) = api
        .call(
            "POST",
            "/api/get_chain",
            Some(&d),
            Some(json!({"patient_id": "p001"})),
        )
        .await;
    let recs = chain["records"].as_array().unwrap();
    assert_eq!(recs.len(), 2);
    assert_eq!(
        recs[0]["diagnosis"], "Hypertension",
        "the original stays as it was"
    );
    assert_eq!(recs[1]["amends"], rid.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_validation_holds_records_until_validate_block() {
    let api = TestApi::with_manual_validation(true);
    let d = api.login("d001").await;
    for _ in 0..3 {
        let (s, v) = api
            .call(
                "POST",
                "/api/add_record",
                Some(&d),
                Some(json!({"patient_id": "p001", "diagnosis": "x"})),
            )
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{v}");
        assert_eq!(v["status"], "pending");
    }
    // Only p001's first data key has committed (key handling is not held back: it is
    // not a record, and the records' content is encrypted under it).
    let (_, head) = api.call("GET", "/api/chain/head", None, None).await;
    assert_eq!(head["height"], 1);
    let (s, v) = api
        .call("POST", "/api/validate_block", Some(&d), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["committed_pending"], 3);
    assert_eq!(v["block_height"], 4);
    assert_eq!(v["signers"], json!([0, 1, 2]));
    assert!(v["latency_ms"].as_f64().unwrap() >= 0.0);
    let dep = api.login("dep001").await;
    let (_, verify) = api
        .call("GET", "/api/chain/verify?from=1", Some(&dep), None)
        .await;
    assert_eq!(verify["ok"], true, "{verify}");
    assert_eq!(verify["verified_to"], 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fhir_export_passes_the_independent_r4_validator() {
    let api = TestApi::new();
    let d = api.login("d001").await;
    let (rid, code) = api.add_record(&d, "p001").await;
    let ph = api.login("ph001").await;
    api.call(
        "POST",
        &format!("/api/prescriptions/{rid}/dispense"),
        Some(&ph),
        Some(json!({"code": code})),
    )
    .await;
    let p = api.login("p001").await;
    api.call(
        "POST",
        "/api/consents",
        Some(&p),
        Some(json!({"grantee_kind": "pharmacy", "grantee_id": "ph001"})),
    )
    .await;
    let (s, bundle) = api
        .call("GET", "/fhir/Patient/p001/$everything", Some(&p), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(bundle["resourceType"], "Bundle");
    let types: Vec<&str> = bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["resource"]["resourceType"].as_str().unwrap())
        .collect();
    for t in [
        "Patient",
        "Practitioner",
        "Organization",
        "Condition",
        "MedicationRequest",
        "MedicationDispense",
        "Consent",
        "AuditEvent",
        "Provenance",
    ] {
        assert!(types.contains(&t), "{t} missing from {types:?}");
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let python = root.join(".venv-fhir/bin/python");
    assert!(
        python.exists(),
        "FHIR validator missing: run `bash tests-fhir/setup.sh`"
    );
    let file = api.dir.path().join("bundle.json");
    std::fs::write(&file, serde_json::to_vec(&bundle).unwrap()).unwrap();
    let out = std::process::Command::new(python)
        .arg(root.join("tests-fhir/validate.py"))
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "validator: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A rejected record leaves nothing but its outcome. A plain `add_record` runs without a
/// savepoint (its only write comes after every check), so a record id taken twice must
/// be refused before anything is written: the table keeps one row, the block commits.
#[tokio::test]
async fn a_record_id_taken_twice_is_refused_and_leaves_only_its_outcome() {
    use medchain_records::{Actor, Envelope, Transaction};
    use medchain_types::Hash32;

    let api = TestApi::new();
    let d = api.login("d001").await;
    let (rid, _) = api.add_record(&d, "p001").await;
    let content = b"a second note under the same id".to_vec();
    let again = Envelope {
        actor: Actor::User("d001".into()),
        tx: Transaction::AddRecord {
            record_id: rid.clone(),
            patient: "p001".into(),
            content_hash: Hash32::sha256(&content),
            consent_code: None,
            amends: None,
            prescription_code_hash: None,
        },
    };
    let committed = api
        .state
        .inner
        .submitter
        .submit(again, vec![content])
        .await
        .expect("the block with the refused transaction commits");

    let conn = medchain_store::rusqlite::Connection::open(api.dir.path().join("medchain.sqlite"))
        .expect("the database opens");
    let outcome: String = conn
        .query_row(
            "SELECT outcome FROM outcomes WHERE client = ?1 AND request_id = ?2 AND idx = ?3",
            medchain_store::rusqlite::params![
                committed.client,
                committed.request_id as i64,
                committed.index
            ],
            |r| r.get(0),
        )
        .expect("the outcome is recorded");
    assert_eq!(outcome, "conflict");
    let rows: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM records WHERE record_id = ?1",
            [&rid],
            |r| r.get(0),
        )
        .expect("the records table reads");
    assert_eq!(rows, 1, "the refused record left a row");
}

/// A request whose transactions all succeed keeps one outcome row for all of them: every
/// index in it answers "ok" and an index past its end answers nothing. A request with a
/// refused transaction keeps a row per transaction.
#[tokio::test]
async fn a_fully_accepted_request_keeps_one_outcome_row() {
    use medchain_records::query::outcome;
    use medchain_records::{Actor, Envelope, Outcome, Transaction};

    let api = TestApi::new();
    let read = |by: &str, i: u32| Envelope {
        actor: Actor::User(by.into()),
        tx: Transaction::AuditRead {
            patient: "p001".into(),
            action: "view".into(),
            reason: format!("check {i}"),
        },
    };
    let conn = medchain_store::rusqlite::Connection::open(api.dir.path().join("medchain.sqlite"))
        .expect("the database opens");
    let rows = |id: u64| -> i64 {
        conn.query_row(
            "SELECT COUNT(*) FROM outcomes WHERE request_id = ?1",
            [id as i64],
            |r| r.get(0),
        )
        .expect("the outcomes read")
    };
    let judged = |id: u64, index: u32| {
        outcome(&conn, 0, id, index)
            .expect("the outcome reads")
            .map(|(o, _)| o)
    };

    let all_ok = api.commit_batch((0..3).map(|i| read("d001", i)).collect());
    assert_eq!(rows(all_ok.request_id), 1);
    for index in 0..3 {
        assert_eq!(judged(all_ok.request_id, index), Some(Outcome::Ok));
    }
    assert_eq!(judged(all_ok.request_id, 3), None, "past the batch's end");

    let mixed = api.commit_batch(vec![read("d001", 0), read("nobody", 1)]);
    assert_eq!(rows(mixed.request_id), 2);
    assert_eq!(judged(mixed.request_id, 0), Some(Outcome::Ok));
    assert!(
        judged(mixed.request_id, 1).is_some_and(|o| o != Outcome::Ok),
        "an unknown user's read is refused"
    );
    assert_eq!(judged(mixed.request_id, 2), None);
}
