//! Complete reads (issue 16, item 7): every record of a chain is reachable page by page,
//! every list says when there is more, an unknown patient answers like a forbidden one,
//! API answers are never cached or sniffed, and names cannot hide invisible characters.

mod common;

use axum::http::StatusCode;
use common::TestApi;
use serde_json::{json, Value};

/// Follow `next_cursor` from the first page to the last, `limit` records at a time;
/// returns every page's record ids. Bounded: at most `max_pages` pages.
async fn chain_pages(api: &TestApi, token: &str, patient: &str, limit: u32) -> Vec<Vec<String>> {
    let max_pages = 50;
    let mut pages = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..max_pages {
        let mut body = json!({"patient_id": patient, "limit": limit});
        if let Some(c) = &cursor {
            body["cursor"] = json!(c);
        }
        let (s, v) = api
            .call("POST", "/api/get_chain", Some(token), Some(body))
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let ids: Vec<String> = v["records"]
            .as_array()
            .expect("records")
            .iter()
            .map(|r| r["record_id"].as_str().expect("record_id").to_string())
            .collect();
        pages.push(ids);
        assert!(
            v.get("next_cursor").is_some(),
            "next_cursor is always present: {v}"
        );
        match v["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return pages,
        }
    }
    panic!("more than {max_pages} pages");
}

#[tokio::test]
async fn get_chain_pages_by_cursor_and_reaches_every_record() {
    let api = TestApi::new();
    let d001 = api.login("d001").await;
    let mut written = Vec::new();
    for _ in 0..7 {
        written.push(api.add_record(&d001, "p001").await.0);
    }
    let pages = chain_pages(&api, &d001, "p001", 3).await;
    assert_eq!(
        pages.iter().map(Vec::len).collect::<Vec<_>>(),
        vec![3, 3, 1]
    );
    assert_eq!(pages.concat(), written, "every record once, oldest first");

    // A record added while a reader is between pages lands on a later page; nothing
    // already seen repeats and nothing is skipped.
    let (s, first) = api
        .call(
            "POST",
            "/api/get_chain",
            Some(&d001),
            Some(json!({"patient_id": "p001", "limit": 4})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let late = api.add_record(&d001, "p001").await.0;
    let (s, second) = api
        .call(
            "POST",
            "/api/get_chain",
            Some(&d001),
            Some(json!({"patient_id": "p001", "limit": 200, "cursor": first["next_cursor"]})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let ids = |v: &Value| -> Vec<String> {
        v["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["record_id"].as_str().unwrap().to_string())
            .collect()
    };
    let mut all = ids(&first);
    all.extend(ids(&second));
    written.push(late);
    assert_eq!(all, written);
    assert!(second["next_cursor"].is_null());

    // The default page is the largest: a short chain comes whole with a null cursor.
    let (s, v) = api
        .call(
            "POST",
            "/api/get_chain",
            Some(&d001),
            Some(json!({"patient_id": "p001"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["records"].as_array().unwrap().len(), 8);
    assert!(v["next_cursor"].is_null());
}

#[tokio::test]
async fn a_bad_cursor_or_limit_is_refused_naming_the_field() {
    let api = TestApi::new();
    let d001 = api.login("d001").await;
    let before = api.audit_count("p001");
    for (body, field) in [
        (
            json!({"patient_id": "p001", "cursor": "not a cursor"}),
            "cursor",
        ),
        (
            json!({"patient_id": "p001", "cursor": "12.rec'; DROP TABLE records"}),
            "cursor",
        ),
        (
            json!({"patient_id": "p001", "cursor": "99999999999999999999.rec-1"}),
            "cursor",
        ),
        (json!({"patient_id": "p001", "limit": 0}), "limit"),
        (json!({"patient_id": "p001", "limit": 201}), "limit"),
    ] {
        let (s, v) = api
            .call("POST", "/api/get_chain", Some(&d001), Some(body.clone()))
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {v}");
        assert_eq!(v["error"]["field"], field, "{body}: {v}");
    }
    assert_eq!(
        api.audit_count("p001"),
        before,
        "a refused request reads nothing"
    );
    let (s, v) = api
        .call(
            "GET",
            "/fhir/Patient/p001/$everything?_cursor=zzz",
            Some(&d001),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["error"]["field"], "_cursor");
}

#[tokio::test]
async fn everything_pages_with_bundle_next_links_until_all_records_and_reads_are_out() {
    let api = TestApi::new();
    let d001 = api.login("d001").await;
    let p001 = api.login("p001").await;
    let records = 203; // more than one page of 200
    for _ in 0..records {
        api.add_record(&d001, "p001").await;
    }
    let mut url = "/fhir/Patient/p001/$everything".to_string();
    let (mut conditions, mut audit_events, mut consents, mut pages) = (0, 0, 0, 0);
    loop {
        pages += 1;
        assert!(pages <= 10, "too many pages");
        let (s, bundle) = api.call("GET", &url, Some(&p001), None).await;
        assert_eq!(s, StatusCode::OK, "{bundle}");
        let count = |t: &str| {
            bundle["entry"].as_array().map_or(0, |e| {
                e.iter()
                    .filter(|x| x["resource"]["resourceType"] == t)
                    .count()
            })
        };
        conditions += count("Condition");
        audit_events += count("AuditEvent");
        consents += count("Consent");
        assert_eq!(count("Patient"), 1, "each page names its patient");
        let links = bundle["link"].as_array().unwrap();
        assert_eq!(links[0]["relation"], "self");
        match links.iter().find(|l| l["relation"] == "next") {
            Some(next) => {
                let next = next["url"].as_str().unwrap();
                let at = next.find("/fhir/").expect("an absolute URL under /fhir");
                url = next[at..].to_string();
            }
            None => break,
        }
    }
    assert!(pages >= 2, "203 records do not fit one page");
    assert_eq!(conditions, records, "every record exported once");
    assert_eq!(consents, 1, "p001's one consent, on the first page only");
    // Every read of p001 so far was audited before it was served, this export's pages
    // included; each page shows the entries committed before it.
    assert!(audit_events >= 1 && audit_events as i64 <= api.audit_count("p001"));
}

#[tokio::test]
async fn an_unknown_patient_answers_exactly_like_one_the_caller_may_not_see() {
    let api = TestApi::new();
    let d003 = api.login("d003").await; // no consent from p001
    let ph001 = api.login("ph001").await; // no consent from p001 either
    let swap = |v: &Value, id: &str| v.to_string().replace(id, "ID");
    for (method, path, body) in [
        ("POST", "/api/get_chain", Some(json!({"patient_id": "PID"}))),
        ("GET", "/fhir/Patient/PID/$everything", None),
        ("GET", "/api/patients/PID/access", None),
        (
            "POST",
            "/api/add_record",
            Some(json!({"patient_id": "PID", "diagnosis": "x", "prescription": "", "notes": ""})),
        ),
    ] {
        let mut answers = Vec::new();
        for id in ["p001", "nobody-at-all"] {
            let path = path.replace("PID", id);
            let body = body
                .as_ref()
                .map(|b| serde_json::from_str(&b.to_string().replace("PID", id)).unwrap());
            let (s, v) = api.call(method, &path, Some(&d003), body).await;
            answers.push((s, swap(&v, id)));
        }
        assert_eq!(answers[0], answers[1], "{method} {path}");
        assert_ne!(answers[0].0, StatusCode::NOT_FOUND);
    }
    let mut answers = Vec::new();
    for id in ["p001", "nobody-at-all"] {
        let (s, v) = api
            .call(
                "POST",
                "/api/prescriptions/search",
                Some(&ph001),
                Some(json!({"patient_id": id})),
            )
            .await;
        answers.push((s, swap(&v, id)));
    }
    assert_eq!(answers[0].0, StatusCode::FORBIDDEN);
    assert_eq!(answers[0], answers[1]);
}

#[tokio::test]
async fn offset_lists_announce_the_next_page_in_a_link_header() {
    let api = TestApi::new();
    let d001 = api.login("d001").await;
    let p001 = api.login("p001").await;
    for _ in 0..5 {
        let (s, _) = api
            .call(
                "POST",
                "/api/get_chain",
                Some(&d001),
                Some(json!({"patient_id": "p001"})),
            )
            .await;
        assert_eq!(s, StatusCode::OK);
    }
    let total = api.audit_count("p001") as usize;
    let mut url = "/api/audit?limit=2".to_string();
    let mut seen = Vec::new();
    for _ in 0..20 {
        let (s, headers, v) = api.call_full(None, "GET", &url, Some(&p001), None).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let page = v.as_array().unwrap();
        assert!(page.len() <= 2);
        seen.extend(page.iter().map(|e| e["id"].as_i64().unwrap()));
        match headers.get("link") {
            Some(link) => {
                let link = link.to_str().unwrap();
                assert!(link.ends_with("; rel=\"next\""), "{link}");
                url = link[1..link.find('>').unwrap()].to_string();
                assert!(
                    url.starts_with("/api/audit?") && url.contains("limit=2"),
                    "{url}"
                );
            }
            None => break,
        }
    }
    assert_eq!(seen.len(), total, "every audit entry on some page");
    let mut distinct = seen.clone();
    distinct.dedup();
    assert_eq!(
        distinct, seen,
        "no entry twice (nothing was added meanwhile)"
    );

    // A list that fits its page has no Link.
    let (_, headers, _) = api
        .call_full(None, "GET", "/api/audit?limit=200", Some(&p001), None)
        .await;
    assert!(headers.get("link").is_none());
}

#[tokio::test]
async fn api_answers_are_neither_stored_nor_sniffed_and_ui_assets_still_cache() {
    let api = TestApi::new();
    let d001 = api.login("d001").await;
    for (method, path, token, body) in [
        (
            "POST",
            "/api/get_chain",
            Some(d001.as_str()),
            Some(json!({"patient_id": "p001"})),
        ),
        (
            "GET",
            "/fhir/Patient/p001/$everything",
            Some(d001.as_str()),
            None,
        ),
        (
            "POST",
            "/api/get_chain",
            None,
            Some(json!({"patient_id": "p001"})),
        ), // 401
        (
            "POST",
            "/api/login",
            None,
            Some(json!({"username": "d001", "password": "wrong password"})),
        ),
        ("GET", "/api/chain/head", None, None),
        ("GET", "/api/patients?search=p", Some(d001.as_str()), None),
    ] {
        let (s, headers, _) = api.call_full(None, method, path, token, body).await;
        assert_eq!(
            headers.get("cache-control").map(|v| v.to_str().unwrap()),
            Some("no-store"),
            "{method} {path} {s}"
        );
        assert_eq!(
            headers
                .get("x-content-type-options")
                .map(|v| v.to_str().unwrap()),
            Some("nosniff"),
            "{method} {path}"
        );
    }
    let (s, headers, _) = api.call_full(None, "GET", "/", None, None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        headers
            .get("x-content-type-options")
            .map(|v| v.to_str().unwrap()),
        Some("nosniff")
    );
    assert_ne!(
        headers.get("cache-control").map(|v| v.to_str().unwrap()),
        Some("no-store")
    );
}

#[tokio::test]
async fn names_with_invisible_or_reordering_characters_are_refused() {
    let api = TestApi::new();
    let dep = api.login("dep001").await;
    for name in [
        "Dr. Amara Okafor\u{200b}",
        "Amara \u{202e}rotcoD",
        "\u{feff}Amara",
    ] {
        let (s, v) = api
            .call("POST", "/api/users", Some(&dep),
                  Some(json!({"user_id": "d-lookalike", "role": "doctor", "display_name": name, "password": "initial password"})))
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{name:?}: {v}");
        assert_eq!(v["error"]["field"], "display_name");
    }
    let (s, v) = api
        .call("POST", "/api/users", Some(&dep),
              Some(json!({"user_id": "d-zoe", "role": "doctor", "display_name": "Dr. Zoë Ångström", "password": "initial password"})))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
}
