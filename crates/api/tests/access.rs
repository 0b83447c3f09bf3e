//! Deny by default, checked as a table: every endpoint x role x (own or other patient;
//! consent present, absent, expired, revoked) against its expected status.

mod common;

use axum::http::StatusCode;
use common::TestApi;
use serde_json::{json, Value};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ConsentState {
    Present,
    Absent,
    Expired,
    Revoked,
}

/// Who calls: d002 and ph001 are the grantees whose consent from p001 varies; d001 holds
/// a standing consent; p001 is the patient concerned, p002 another patient.
const ACTORS: [&str; 7] = ["d002", "d001", "p001", "p002", "ph001", "dep001", "anon"];

struct Row {
    name: &'static str,
    method: &'static str,
    path: String,
    body: Option<Value>,
    expect: fn(&str, ConsentState) -> u16,
}

fn by_role(actor: &str, allowed: &[&str]) -> u16 {
    if actor == "anon" {
        401
    } else if allowed.contains(&actor) {
        200
    } else {
        403
    }
}

fn consented(c: ConsentState) -> u16 {
    if c == ConsentState::Present {
        200
    } else {
        403
    }
}

fn rows(record_id: &str, state: ConsentState) -> Vec<Row> {
    let tag = format!("{state:?}").to_lowercase();
    vec![
        Row {
            name: "get_chain",
            method: "POST",
            path: "/api/get_chain".into(),
            body: Some(json!({"patient_id": "p001"})),
            expect: |a, c| match a {
                "d002" => consented(c),
                "d001" | "p001" => 200,
                _ => by_role(a, &[]),
            },
        },
        Row {
            name: "fhir",
            method: "GET",
            path: "/fhir/Patient/p001/$everything".into(),
            body: None,
            expect: |a, c| match a {
                "d002" => consented(c),
                "d001" | "p001" => 200,
                _ => by_role(a, &[]),
            },
        },
        Row {
            name: "add_record",
            method: "POST",
            path: "/api/add_record".into(),
            body: Some(
                json!({"patient_id": "p001", "diagnosis": "Flu", "prescription": "", "notes": ""}),
            ),
            expect: |a, c| match a {
                "d002" => consented(c),
                "d001" => 200,
                _ => by_role(a, &[]),
            },
        },
        Row {
            name: "prescriptions/search",
            method: "POST",
            path: "/api/prescriptions/search".into(),
            body: Some(json!({"patient_id": "p001"})),
            expect: |a, c| match a {
                "ph001" => consented(c),
                _ => by_role(a, &[]),
            },
        },
        Row {
            name: "dispense",
            method: "POST",
            path: format!("/api/prescriptions/{record_id}/dispense"),
            body: Some(json!({})),
            expect: |a, c| match a {
                "ph001" => consented(c),
                _ => by_role(a, &[]),
            },
        },
        Row {
            name: "access status",
            method: "GET",
            path: "/api/patients/p001/access".into(),
            body: None,
            expect: |a, _| by_role(a, &["d001", "d002"]),
        },
        Row {
            name: "patients",
            method: "GET",
            path: "/api/patients?search=p".into(),
            body: None,
            expect: |a, _| by_role(a, &["d001", "d002"]),
        },
        Row {
            name: "audit",
            method: "GET",
            path: "/api/audit".into(),
            body: None,
            expect: |a, _| by_role(a, &["p001", "p002", "dep001"]),
        },
        Row {
            name: "break_glass list",
            method: "GET",
            path: "/api/break_glass".into(),
            body: None,
            expect: |a, _| by_role(a, &["p001", "p002", "dep001"]),
        },
        Row {
            name: "break_glass alerts",
            method: "GET",
            path: "/api/break_glass/alerts".into(),
            body: None,
            expect: |a, _| by_role(a, &["dep001"]),
        },
        // A review of an event that does not exist: the department gets the ledger's
        // 404, everyone else is refused by role first.
        Row {
            name: "break_glass review",
            method: "POST",
            path: "/api/break_glass/999999/review".into(),
            body: Some(json!({"note": "checked"})),
            expect: |a, _| if a == "dep001" { 404 } else { by_role(a, &[]) },
        },
        Row {
            name: "consents",
            method: "GET",
            path: "/api/consents".into(),
            body: None,
            expect: |a, _| by_role(a, &["p001", "p002"]),
        },
        Row {
            name: "grant consent",
            method: "POST",
            path: "/api/consents".into(),
            body: Some(json!({"grantee_kind": "doctor", "grantee_id": "d003"})),
            expect: |a, _| by_role(a, &["p001", "p002"]),
        },
        Row {
            name: "consent code",
            method: "POST",
            path: "/api/consent_codes".into(),
            body: None,
            expect: |a, _| by_role(a, &["p001", "p002"]),
        },
        Row {
            name: "users",
            method: "GET",
            path: "/api/users".into(),
            body: None,
            expect: |a, _| by_role(a, &["dep001"]),
        },
        Row {
            name: "register",
            method: "POST",
            path: "/api/users".into(),
            body: Some(
                json!({"user_id": format!("new-{tag}"), "role": "patient", "display_name": "New", "password": "longenough1"}),
            ),
            expect: |a, _| by_role(a, &["dep001"]),
        },
        Row {
            name: "activity",
            method: "GET",
            path: "/api/department/activity".into(),
            body: None,
            expect: |a, _| by_role(a, &["dep001"]),
        },
        Row {
            name: "blocks",
            method: "GET",
            path: "/api/blocks".into(),
            body: None,
            expect: |a, _| by_role(a, &["dep001"]),
        },
        Row {
            name: "verify",
            method: "GET",
            path: "/api/chain/verify?from=1".into(),
            body: None,
            expect: |a, _| by_role(a, &["dep001"]),
        },
        Row {
            name: "validate_block",
            method: "POST",
            path: "/api/validate_block".into(),
            body: None,
            expect: |a, _| by_role(a, &["d001", "d002", "dep001"]),
        },
        Row {
            name: "me",
            method: "GET",
            path: "/api/me".into(),
            body: None,
            expect: |a, _| by_role(a, &["d001", "d002", "p001", "p002", "ph001", "dep001"]),
        },
        Row {
            name: "deactivate",
            method: "POST",
            path: "/api/users/nobody/deactivate".into(),
            body: None,
            expect: |a, _| if a == "dep001" { 404 } else { by_role(a, &[]) },
        },
        // Last: break-glass changes d002's access for the rows above.
        Row {
            name: "break_glass",
            method: "POST",
            path: "/api/break_glass".into(),
            body: Some(
                json!({"patient_id": "p001", "reason": "unconscious in the emergency room"}),
            ),
            expect: |a, _| by_role(a, &["d001", "d002"]),
        },
    ]
}

async fn set_up(state: ConsentState) -> (TestApi, String) {
    let api = TestApi::new();
    let d001 = api.login("d001").await;
    let (record_id, _) = api.add_record(&d001, "p001").await;
    let p001 = api.login("p001").await;
    let grant = |who: &str, kind: &str, exp: Option<u64>| json!({"grantee_kind": kind, "grantee_id": who, "expires_at_ms": exp});
    match state {
        ConsentState::Absent => {}
        ConsentState::Present | ConsentState::Revoked => {
            for (who, kind) in [("d002", "doctor"), ("ph001", "pharmacy")] {
                let (s, v) = api
                    .call(
                        "POST",
                        "/api/consents",
                        Some(&p001),
                        Some(grant(who, kind, None)),
                    )
                    .await;
                assert_eq!(s, StatusCode::OK, "{v}");
                if state == ConsentState::Revoked {
                    let (s, v) = api
                        .call(
                            "POST",
                            "/api/consents/revoke",
                            Some(&p001),
                            Some(json!({"grantee_kind": kind, "grantee_id": who})),
                        )
                        .await;
                    assert_eq!(s, StatusCode::OK, "{v}");
                }
            }
        }
        ConsentState::Expired => {
            let exp = api.now_ms() + 60_000;
            for (who, kind) in [("d002", "doctor"), ("ph001", "pharmacy")] {
                let (s, v) = api
                    .call(
                        "POST",
                        "/api/consents",
                        Some(&p001),
                        Some(grant(who, kind, Some(exp))),
                    )
                    .await;
                assert_eq!(s, StatusCode::OK, "{v}");
            }
            // Tokens last 15 minutes; one minute and a bit is enough to expire the consent.
            api.advance_ms(61_000);
        }
    }
    (api, record_id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_role_and_consent_state() {
    let mut failures = Vec::new();
    let mut checked = 0;
    for state in [
        ConsentState::Present,
        ConsentState::Absent,
        ConsentState::Expired,
        ConsentState::Revoked,
    ] {
        let (api, record_id) = set_up(state).await;
        let mut tokens = std::collections::HashMap::new();
        for a in ACTORS.iter().filter(|a| **a != "anon") {
            tokens.insert(*a, api.login(a).await);
        }
        for row in rows(&record_id, state) {
            for actor in ACTORS {
                let token = tokens.get(actor).map(String::as_str);
                let (status, body) = api
                    .call(row.method, &row.path, token, row.body.clone())
                    .await;
                let want = (row.expect)(actor, state);
                checked += 1;
                if status.as_u16() != want {
                    failures.push(format!(
                        "{state:?} {} as {actor}: got {status}, want {want}: {body}",
                        row.name
                    ));
                }
                if status.as_u16() >= 400 {
                    assert!(
                        body["error"]["code"].is_string() && body["error"]["message"].is_string(),
                        "error body shape for {} as {actor}: {body}",
                        row.name
                    );
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {checked} access checks failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(checked, 4 * 23 * ACTORS.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn break_glass_opens_read_only_access_for_an_hour_and_is_shown_to_patient_and_department() {
    let api = TestApi::new();
    let d003 = api.login("d003").await; // oncology, no consent from p001
    let (s, _) = api
        .call(
            "POST",
            "/api/get_chain",
            Some(&d003),
            Some(json!({"patient_id": "p001"})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, v) = api
        .call(
            "POST",
            "/api/break_glass",
            Some(&d003),
            Some(json!({"patient_id": "p001", "reason": "  "})),
        )
        .await;
    assert_eq!(
        s,
        StatusCode::UNPROCESSABLE_ENTITY,
        "a reason is required: {v}"
    );
    let (s, v) = api
        .call(
            "POST",
            "/api/break_glass",
            Some(&d003),
            Some(json!({"patient_id": "p001", "reason": "cardiac arrest, ER"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["until_ms"].as_u64().unwrap(), api.now_ms() + 3_600_000);
    let (s, v) = api
        .call(
            "POST",
            "/api/get_chain",
            Some(&d003),
            Some(json!({"patient_id": "p001"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["access"], "break-glass");
    // Read-only: break-glass does not allow adding records.
    let (s, _) = api
        .call(
            "POST",
            "/api/add_record",
            Some(&d003),
            Some(json!({"patient_id": "p001", "diagnosis": "x"})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let p001 = api.login("p001").await;
    let (_, events) = api.call("GET", "/api/break_glass", Some(&p001), None).await;
    assert_eq!(events[0]["doctor_id"], "d003");
    assert_eq!(events[0]["reason"], "cardiac arrest, ER");
    let dep002 = api.login("dep002").await; // the doctor's department
    let (_, events) = api
        .call("GET", "/api/break_glass", Some(&dep002), None)
        .await;
    assert_eq!(events.as_array().unwrap().len(), 1);
    let dep001 = api.login("dep001").await; // the patient's department
    let (_, events) = api
        .call("GET", "/api/break_glass", Some(&dep001), None)
        .await;
    assert_eq!(events.as_array().unwrap().len(), 1);
    // An hour later it is over (tokens last 15 minutes, so sign in again).
    api.advance_ms(3_600_001);
    let d003 = api.login("d003").await;
    let (s, _) = api
        .call(
            "POST",
            "/api/get_chain",
            Some(&d003),
            Some(json!({"patient_id": "p001"})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_audit_entry_per_read() {
    let api = TestApi::new();
    let d001 = api.login("d001").await;
    api.add_record(&d001, "p001").await;
    assert_eq!(api.audit_count("p001"), 0, "writing is not reading");
    for i in 1..=3 {
        let (s, _) = api
            .call(
                "POST",
                "/api/get_chain",
                Some(&d001),
                Some(json!({"patient_id": "p001"})),
            )
            .await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(api.audit_count("p001"), i);
    }
    let (s, _) = api
        .call("GET", "/fhir/Patient/p001/$everything", Some(&d001), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(api.audit_count("p001"), 4);
    // A refused read is not a read.
    let d002 = api.login("d002").await;
    let (s, _) = api
        .call(
            "POST",
            "/api/get_chain",
            Some(&d002),
            Some(json!({"patient_id": "p001"})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(api.audit_count("p001"), 4);
    let p001 = api.login("p001").await;
    let (_, trail) = api.call("GET", "/api/audit", Some(&p001), None).await;
    let trail = trail.as_array().unwrap();
    assert_eq!(trail.len(), 4);
    assert_eq!(trail[0]["action"], "fhir_export");
    assert!(trail
        .iter()
        .all(|e| e["reader_id"] == "d001" && e["reason"] == "consent"));
    // Reading one's own data is audited too (5th entry).
    let (s, _) = api
        .call(
            "POST",
            "/api/get_chain",
            Some(&p001),
            Some(json!({"patient_id": "p001"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(api.audit_count("p001"), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn department_reads_are_audited_once_per_patient_on_the_page() {
    let api = TestApi::new();
    let d001 = api.login("d001").await;
    api.add_record(&d001, "p001").await;
    api.add_record(&d001, "p001").await;
    api.add_record(&d001, "p002").await; // the newest
    let dep001 = api.login("dep001").await;
    let (s, v) = api
        .call("GET", "/api/department/activity", Some(&dep001), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["records"].as_array().unwrap().len(), 3);
    // Three records, two patients: one entry each.
    assert_eq!(api.audit_count("p001"), 1);
    assert_eq!(api.audit_count("p002"), 1);
    let p001 = api.login("p001").await;
    let (s, trail) = api.call("GET", "/api/audit", Some(&p001), None).await;
    assert_eq!(s, StatusCode::OK, "{trail}");
    let trail = trail.as_array().unwrap();
    assert_eq!(trail.len(), 1);
    assert_eq!(trail[0]["patient_id"], "p001");
    assert_eq!(trail[0]["reader_id"], "dep001");
    assert_eq!(trail[0]["reader_role"], "department");
    assert_eq!(trail[0]["action"], "department_activity");
    assert_eq!(trail[0]["reason"], "department");
    // Only the patients on the page served are audited.
    let (s, v) = api
        .call(
            "GET",
            "/api/department/activity?limit=1",
            Some(&dep001),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["records"][0]["patient_id"], "p002");
    assert_eq!(api.audit_count("p001"), 1);
    assert_eq!(api.audit_count("p002"), 2);
    // A department's list of break-glass events is audited the same way.
    let d003 = api.login("d003").await;
    let (s, v) = api
        .call(
            "POST",
            "/api/break_glass",
            Some(&d003),
            Some(json!({"patient_id": "p001", "reason": "cardiac arrest, ER"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(api.audit_count("p001"), 2, "break-glass is on the trail");
    let (s, events) = api
        .call("GET", "/api/break_glass", Some(&dep001), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{events}");
    assert_eq!(events.as_array().unwrap().len(), 1);
    assert_eq!(api.audit_count("p001"), 3);
    let (_, trail) = api.call("GET", "/api/audit", Some(&p001), None).await;
    assert_eq!(trail[0]["action"], "break_glass_events");
    assert_eq!(trail[0]["reader_id"], "dep001");
    // The patient's own view of the events is not a department read.
    api.call("GET", "/api/break_glass", Some(&p001), None).await;
    assert_eq!(api.audit_count("p001"), 3);
}
