//! What the node writes is ciphertext: a record's content and a registered patient's name
//! reach the ledger sealed under the patient's data key, read back in clear only through
//! the API of an organisation holding the key, and a name search still finds the patient
//! (matched in memory, never against clear text on disk).

mod common;

use axum::http::StatusCode;
use common::TestApi;
use medchain_store::rusqlite::{params, Connection, OpenFlags};
use serde_json::json;

fn db(api: &TestApi) -> Connection {
    Connection::open_with_flags(&api.state.inner.db_path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .expect("open the node's database")
}

/// Whether `needle` occurs anywhere in the node's ledger database (file and WAL).
fn on_disk(api: &TestApi, needle: &str) -> bool {
    let path = &api.state.inner.db_path;
    let mut wal = path.clone().into_os_string();
    wal.push("-wal");
    [path.clone(), wal.into()].iter().any(|p| {
        let bytes = std::fs::read(p).unwrap_or_default();
        bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_and_names_are_sealed_and_still_read_and_searched() {
    let api = TestApi::new();
    let dep = api.login("dep001").await;
    let (s, v) = api
        .call(
            "POST",
            "/api/users",
            Some(&dep),
            Some(json!({"user_id": "p-zora", "role": "patient",
                        "display_name": "Zora Quillfeather", "password": "longenough1"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let stored: String = db(&api)
        .query_row(
            "SELECT display_name FROM users WHERE user_id = 'p-zora'",
            [],
            |r| r.get(0),
        )
        .expect("the patient's row");
    assert!(stored.starts_with("sealed:"), "{stored}");
    assert!(!on_disk(&api, "Quillfeather"), "the name in clear on disk");

    // The department's list and a doctor's search find the patient by name.
    let (s, v) = api
        .call("GET", "/api/users?search=quillf", Some(&dep), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let found = v.as_array().expect("users");
    assert_eq!(found.len(), 1, "{v}");
    assert_eq!(found[0]["display_name"], "Zora Quillfeather");
    let d = api.login("d001").await;
    let (s, v) = api
        .call("GET", "/api/patients?search=Zora", Some(&d), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v[0]["user_id"], "p-zora", "{v}");
    assert_eq!(v[0]["display_name"], "Zora Quillfeather");

    // A record: ciphertext in the content table, clear text through get_chain.
    let (s, v) = api
        .call(
            "POST",
            "/api/add_record",
            Some(&d),
            Some(
                json!({"patient_id": "p001", "diagnosis": "Marmoset-fever-9d2c",
                        "prescription": "", "notes": "Notes-tapir-41ee"}),
            ),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let record_id = v["record_id"].as_str().expect("record_id").to_string();
    let bytes: Vec<u8> = db(&api)
        .query_row(
            "SELECT c.bytes FROM records r JOIN content c
               ON c.height = r.height AND c.hash = r.content_hash WHERE r.record_id = ?1",
            params![record_id],
            |r| r.get(0),
        )
        .expect("the record's content");
    assert!(bytes.starts_with(b"MCR1"));
    assert!(!on_disk(&api, "Marmoset-fever") && !on_disk(&api, "Notes-tapir"));
    let (s, v) = api
        .call(
            "POST",
            "/api/get_chain",
            Some(&d),
            Some(json!({"patient_id": "p001"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let text = v.to_string();
    assert!(
        text.contains("Marmoset-fever-9d2c") && text.contains("Notes-tapir-41ee"),
        "{text}"
    );
}

/// Sign in a user the department just registered, changing the initial password.
async fn first_login(api: &TestApi, user: &str, initial: &str) -> String {
    let (s, v) = api.login_with(user, initial).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let token = v["token"].as_str().expect("token").to_string();
    let (s, v) = api
        .call(
            "POST",
            "/api/password",
            Some(&token),
            Some(json!({"current_password": initial, "new_password": format!("{initial}-own")})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["token"].as_str().expect("token").to_string()
}

/// The access monitor compares names, not their ciphertext: a doctor reading a patient
/// of the same surname is flagged although the patient's name is sealed on the ledger.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_surname_rule_sees_through_sealed_names() {
    let api = TestApi::new();
    let dep = api.login("dep001").await;
    for (id, role, name) in [
        ("p-orla", "patient", "Orla Wintergreen"),
        ("d-wintergreen", "doctor", "Dr. Cass Wintergreen"),
    ] {
        let (s, v) = api
            .call(
                "POST",
                "/api/users",
                Some(&dep),
                Some(json!({"user_id": id, "role": role, "display_name": name,
                            "password": "longenough1"})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    assert!(
        !on_disk(&api, "Orla Wintergreen"),
        "the name in clear on disk"
    );
    let patient = first_login(&api, "p-orla", "longenough1").await;
    let doctor = first_login(&api, "d-wintergreen", "longenough1").await;
    let (s, v) = api
        .call(
            "POST",
            "/api/consents",
            Some(&patient),
            // A consent to the whole department: it allows the read but, unlike a consent
            // to the doctor in person, does not explain a personal tie.
            Some(json!({"grantee_kind": "department", "grantee_id": "cardiology"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    api.advance_ms(60_000);
    let (s, v) = api
        .call(
            "POST",
            "/api/get_chain",
            Some(&doctor),
            Some(json!({"patient_id": "p-orla"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = api.call("GET", "/api/alerts", Some(&dep), None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let flagged = v["alerts"]
        .as_array()
        .expect("alerts")
        .iter()
        .any(|a| a["user_id"] == "d-wintergreen" && a["rule"] == "same_surname");
    assert!(flagged, "{v}");
}
