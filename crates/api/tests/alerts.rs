//! The access monitor through the API, on a real ledger store: a read the ledger allowed
//! (a consent to the doctor's department) but that no treatment fact explains is flagged
//! with its rule and sentence; the patient's department sees it and reviews it on the
//! ledger, once; another department and other patients see nothing of it; an explained
//! read is not flagged.

mod common;

use axum::http::StatusCode;
use common::TestApi;
use serde_json::{json, Value};

async fn alerts(api: &TestApi, token: &str) -> Value {
    let (s, v) = api.call("GET", "/api/alerts", Some(token), None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["caught_up"], true, "{v}");
    v
}

#[tokio::test]
async fn an_unexplained_read_is_flagged_and_reviewed_by_the_patients_department() {
    let api = TestApi::new();
    let d001 = api.login("d001").await;
    let d002 = api.login("d002").await;
    let p001 = api.login("p001").await;
    // d001 treats p001 (wrote a record); p001 consents to the whole cardiology department.
    api.add_record(&d001, "p001").await;
    let (s, v) = api
        .call(
            "POST",
            "/api/consents",
            Some(&p001),
            Some(json!({"grantee_kind": "department", "grantee_id": "cardiology"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    api.advance_ms(60_000);
    // d001 reads the chart of a patient they treat: explained.
    let (s, v) = api
        .call(
            "POST",
            "/api/get_chain",
            Some(&d001),
            Some(json!({"patient_id": "p001"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // d002 may read it (department consent) but has never treated p001.
    let (s, v) = api
        .call(
            "POST",
            "/api/get_chain",
            Some(&d002),
            Some(json!({"patient_id": "p001"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "the ledger allows the read: {v}");

    let dep001 = api.login("dep001").await;
    let v = alerts(&api, &dep001).await;
    let list = v["alerts"].as_array().expect("alerts");
    let d002_alerts: Vec<&Value> = list.iter().filter(|a| a["user_id"] == "d002").collect();
    assert_eq!(d002_alerts.len(), 1, "{v}");
    let a = d002_alerts[0];
    assert_eq!(a["patient_id"], "p001");
    assert_eq!(a["rule"], "no_treatment_relationship", "{a}");
    let sentence = a["explanation"].as_str().unwrap_or_default();
    assert!(
        sentence.contains("d002") && sentence.contains("p001"),
        "{sentence}"
    );
    assert!(
        !list.iter().any(|a| a["user_id"] == "d001"),
        "an explained read is not flagged: {v}"
    );
    let alert_id = a["alert_id"].as_str().expect("id").to_string();
    // The learned score: advisory, each listed day with the features that drove it.
    for d in v["reader_scores"].as_array().expect("reader_scores") {
        let score = d["score"].as_f64().expect("score");
        assert!((0.6..=1.0).contains(&score), "{d}");
        assert!(!d["drivers"].as_array().expect("drivers").is_empty(), "{d}");
    }

    // Another department, another patient, and a doctor see none of it.
    let dep002 = api.login("dep002").await;
    assert_eq!(alerts(&api, &dep002).await["alerts"], json!([]));
    let p002 = api.login("p002").await;
    assert_eq!(alerts(&api, &p002).await["alerts"], json!([]));
    let (s, _) = api.call("GET", "/api/alerts", Some(&d001), None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // The patient sees the flag on a read of their own data.
    let mine = alerts(&api, &p001).await;
    assert!(
        mine["alerts"]
            .as_array()
            .expect("alerts")
            .iter()
            .any(|a| a["alert_id"] == alert_id.as_str()),
        "{mine}"
    );

    // Review: a note is required; another department cannot; the right one can, once.
    let path = format!("/api/alerts/{alert_id}/review");
    let (s, _) = api
        .call(
            "POST",
            &path,
            Some(&dep001),
            Some(json!({"outcome": "justified", "note": " "})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, _) = api
        .call(
            "POST",
            &path,
            Some(&dep002),
            Some(json!({"outcome": "justified", "note": "not mine"})),
        )
        .await;
    assert_eq!(
        s,
        StatusCode::NOT_FOUND,
        "another department's alert is not listed for it"
    );
    let (s, v) = api
        .call(
            "POST",
            &path,
            Some(&dep001),
            Some(json!({"outcome": "violation", "note": "d002 had no reason to open this chart"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, _) = api
        .call(
            "POST",
            &path,
            Some(&dep001),
            Some(json!({"outcome": "justified", "note": "again"})),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    let after = alerts(&api, &dep001).await;
    let reviewed = after["alerts"]
        .as_array()
        .expect("alerts")
        .iter()
        .find(|a| a["alert_id"] == alert_id.as_str())
        .cloned()
        .expect("still listed, with its review");
    assert_eq!(reviewed["review"]["outcome"], "violation", "{reviewed}");
    assert_eq!(reviewed["review"]["reviewer"], "dep001");
}
