//! Accountable emergency access through the API: a reason that says something, the
//! per-doctor daily limit (the ledger's, default 3), a second approver beyond it, and the
//! patient's department reviewing each opening as an alert, which the patient then sees.

mod common;

use axum::http::StatusCode;
use common::TestApi;
use serde_json::json;

async fn open(
    api: &TestApi,
    token: &str,
    patient: &str,
    reason: &str,
) -> (StatusCode, serde_json::Value) {
    api.call(
        "POST",
        "/api/break_glass",
        Some(token),
        Some(json!({"patient_id": patient, "reason": reason, "minutes": 5})),
    )
    .await
}

#[tokio::test]
async fn break_glass_is_limited_approved_alerted_and_reviewed() {
    let api = TestApi::new();
    let d003 = api.login("d003").await; // oncology: no consent from p001 or p002
    let (s, v) = open(&api, &d003, "p001", "too short").await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["error"]["field"], "reason");
    for patient in ["p001", "p002", "p001"] {
        let (s, v) = open(&api, &d003, patient, "cardiac arrest in the ER").await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    // The fourth in 24 hours is refused with a code of its own before consensus (the
    // ledger refuses it alike: `break_glass_limit_rows` in crates/records/tests/rules.rs).
    let (_, head_before) = api.call("GET", "/api/chain/head", None, None).await;
    let (s, v) = open(&api, &d003, "p002", "cardiac arrest in the ER").await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    assert_eq!(v["error"]["code"], "break_glass_limit", "{v}");
    let (_, head_after) = api.call("GET", "/api/chain/head", None, None).await;
    assert_eq!(
        head_before["height"], head_after["height"],
        "nothing reached the ledger"
    );
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("limit 3"),
        "{v}"
    );
    // The patient's department approves one more, for that patient.
    let dep = api.login("dep001").await;
    let (s, v) = api
        .call(
            "POST",
            "/api/break_glass/approve",
            Some(&dep),
            Some(json!({"doctor_id": "d003", "patient_id": "p002"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = open(&api, &d003, "p002", "cardiac arrest in the ER").await;
    assert_eq!(s, StatusCode::OK, "approved: {v}");

    // Every opening is an open alert for p001's and p002's department.
    let (s, alerts) = api
        .call("GET", "/api/break_glass/alerts", Some(&dep), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{alerts}");
    let alerts = alerts.as_array().expect("a list").clone();
    assert_eq!(alerts.len(), 4, "{alerts:?}");
    let id = alerts[0]["id"].as_i64().expect("id");
    let path = format!("/api/break_glass/{id}/review");
    let note = json!({"note": "checked with the ER: justified"});
    let (s, v) = api
        .call("POST", &path, Some(&dep), Some(note.clone()))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = api
        .call("POST", &path, Some(&dep), Some(note.clone()))
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "reviewed once: {v}");
    // Another department may not review it.
    let other = api.login("dep002").await;
    let (s, v) = api.call("POST", &path, Some(&other), Some(note)).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    let (_, alerts) = api
        .call("GET", "/api/break_glass/alerts", Some(&dep), None)
        .await;
    assert_eq!(alerts.as_array().map(Vec::len), Some(3), "{alerts}");

    // The patient sees the review.
    let patient = alerts_patient(&api, id).await;
    let p = api.login(&patient).await;
    let (s, events) = api.call("GET", "/api/break_glass", Some(&p), None).await;
    assert_eq!(s, StatusCode::OK, "{events}");
    let reviewed = events
        .as_array()
        .expect("a list")
        .iter()
        .find(|e| e["id"].as_i64() == Some(id))
        .expect("the reviewed event")
        .clone();
    assert_eq!(reviewed["reviewed_by"], "dep001");
    assert_eq!(reviewed["review_note"], "checked with the ER: justified");
}

/// Whose break-glass event `id` is, from the department's full list.
async fn alerts_patient(api: &TestApi, id: i64) -> String {
    let dep = api.login("dep001").await;
    let (_, events) = api.call("GET", "/api/break_glass", Some(&dep), None).await;
    events
        .as_array()
        .expect("a list")
        .iter()
        .find(|e| e["id"].as_i64() == Some(id))
        .and_then(|e| e["patient_id"].as_str())
        .expect("the event")
        .to_string()
}

/// Beyond the limit, the doctor can ask instead of waiting for an approval: the request is
/// a co-signed proposal listed to their colleagues; one colleague's signature opens the
/// access, and the records read.
#[tokio::test]
async fn beyond_the_limit_a_request_opens_with_a_colleagues_signature() {
    let api = TestApi::new();
    let d003 = api.login("d003").await;
    for patient in ["p001", "p001", "p001"] {
        let (s, v) = open(&api, &d003, patient, "cardiac arrest in the ER").await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    let (s, v) = open(&api, &d003, "p002", "cardiac arrest in the ER").await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    let (s, v) = api
        .call(
            "POST",
            "/api/break_glass/request",
            Some(&d003),
            Some(json!({"patient_id": "p002", "reason": "second arrest, no pulse", "minutes": 5})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let id = v["request_id"].as_str().expect("request_id").to_string();
    let (s, v) = api
        .call(
            "POST",
            "/api/get_chain",
            Some(&d003),
            Some(json!({"patient_id": "p002"})),
        )
        .await;
    assert_eq!(
        s,
        StatusCode::FORBIDDEN,
        "not open before the second signature: {v}"
    );

    // Listed to a colleague, who may sign; listed to the asker as signed.
    let d001 = api.login("d001").await;
    let (_, list) = api.call("GET", "/api/proposals", Some(&d001), None).await;
    let mine = list["proposals"]
        .as_array()
        .expect("proposals")
        .iter()
        .find(|p| p["proposal_id"] == id.as_str())
        .cloned()
        .expect("listed to d001");
    assert_eq!(mine["may_approve"], true, "{mine}");
    assert_eq!(mine["action"]["kind"], "open_break_glass");
    let (_, list) = api.call("GET", "/api/proposals", Some(&d003), None).await;
    assert!(list.to_string().contains(&id) && list.to_string().contains("\"may_approve\":false"));
    let (s, v) = api
        .call(
            "POST",
            &format!("/api/proposals/{id}/approve"),
            Some(&d003),
            Some(json!({})),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "the asker's second signature: {v}");
    let ph = api.login("ph001").await;
    let (s, _) = api
        .call(
            "POST",
            &format!("/api/proposals/{id}/approve"),
            Some(&ph),
            Some(json!({})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, v) = api
        .call(
            "POST",
            &format!("/api/proposals/{id}/approve"),
            Some(&d001),
            Some(json!({})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["executed"], true, "{v}");
    let (s, v) = api
        .call(
            "POST",
            "/api/get_chain",
            Some(&d003),
            Some(json!({"patient_id": "p002"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["access"], "break-glass", "{v}");
}
