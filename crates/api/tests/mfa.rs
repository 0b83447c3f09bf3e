//! Two-step sign-in through the API, with codes computed by an independent
//! implementation (Python's `pyotp`, installed into `.venv-fhir` by
//! `tests-fhir/setup.sh`): enrolment, confirmation, sign-in that then needs a code,
//! replayed, wrong, expired and recovery codes, a node that requires MFA for staff, and
//! break-glass that needs a fresh code.

mod common;

use axum::http::StatusCode;
use common::{TestApi, PASSWORD};
use serde_json::{json, Value};

/// The code `pyotp` computes for `secret` at `at_ms` (Unix milliseconds).
fn pyotp(secret: &str, at_ms: u64) -> String {
    let python = concat!(env!("CARGO_MANIFEST_DIR"), "/../../.venv-fhir/bin/python");
    let out = std::process::Command::new(python)
        .args([
            "-c",
            "import sys, pyotp; print(pyotp.TOTP(sys.argv[1]).at(int(sys.argv[2])))",
            secret,
            &(at_ms / 1000).to_string(),
        ])
        .output()
        .expect("the test venv (bash tests-fhir/setup.sh) with pyotp");
    assert!(
        out.status.success(),
        "pyotp: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn text(v: &Value, k: &str) -> String {
    v[k].as_str().unwrap_or_default().to_string()
}

async fn login(api: &TestApi, user: &str, totp: Option<&str>) -> (StatusCode, Value) {
    let mut body = json!({"username": user, "password": PASSWORD});
    if let Some(c) = totp {
        body["totp"] = json!(c);
    }
    api.call("POST", "/api/login", None, Some(body)).await
}

/// Enrol and confirm `user`; returns (secret, recovery codes).
async fn enrol(api: &TestApi, token: &str) -> (String, Vec<String>) {
    let (s, e) = api
        .call("POST", "/api/mfa/totp/enroll", Some(token), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{e}");
    let secret = text(&e, "secret");
    assert!(
        text(&e, "otpauth_uri").starts_with("otpauth://totp/"),
        "{e}"
    );
    assert!(
        text(&e, "otpauth_uri").contains(&format!("secret={secret}")),
        "{e}"
    );
    assert!(text(&e, "qr_svg").contains("<svg"), "{e}");
    let code = pyotp(&secret, api.now_ms());
    let (s, c) = api
        .call(
            "POST",
            "/api/mfa/totp/confirm",
            Some(token),
            Some(json!({"code": code})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{c}");
    let codes: Vec<String> = c["recovery_codes"]
        .as_array()
        .expect("recovery codes")
        .iter()
        .map(|v| v.as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(codes.len(), 10);
    (secret, codes)
}

#[tokio::test]
async fn once_set_up_sign_in_needs_a_fresh_code_from_the_app() {
    let api = TestApi::new();
    let (s, first) = login(&api, "d001", None).await;
    assert_eq!(s, StatusCode::OK, "{first}");
    assert_eq!(first["mfa_setup_required"], false);
    let (secret, recovery) = enrol(&api, &text(&first, "token")).await;
    let (_, st) = api
        .call("GET", "/api/mfa", Some(&text(&first, "token")), None)
        .await;
    assert_eq!(st["enrolled"], true, "{st}");

    // A password alone no longer opens the account.
    let (s, v) = login(&api, "d001", None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    assert_eq!(v["error"]["code"], "mfa_required");
    // The confirmation's code again is a replay.
    let (s, v) = login(&api, "d001", Some(&pyotp(&secret, api.now_ms()))).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    assert_eq!(v["error"]["code"], "code_used");
    // The next 30-second step's code (one step of skew is allowed): accepted, once.
    api.advance_ms(30_000);
    let code = pyotp(&secret, api.now_ms());
    let (s, v) = login(&api, "d001", Some(&code)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = login(&api, "d001", Some(&code)).await;
    assert_eq!(
        (s, v["error"]["code"].clone()),
        (StatusCode::UNAUTHORIZED, json!("code_used"))
    );
    // A wrong code, and a code from two minutes ago.
    let (s, v) = login(&api, "d001", Some("123456")).await;
    assert_eq!(
        (s, v["error"]["code"].clone()),
        (StatusCode::UNAUTHORIZED, json!("mfa_invalid"))
    );
    let old = pyotp(&secret, api.now_ms() - 120_000);
    let (s, v) = login(&api, "d001", Some(&old)).await;
    assert_eq!(
        (s, v["error"]["code"].clone()),
        (StatusCode::UNAUTHORIZED, json!("mfa_invalid"))
    );
    // A recovery code opens one sign-in.
    let (s, v) = login(&api, "d001", Some(&recovery[3])).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, _) = login(&api, "d001", Some(&recovery[3])).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // Turning it off takes a current code; afterwards the password suffices again.
    api.advance_ms(30_000);
    let token = text(&v, "token");
    let (s, w) = api
        .call(
            "POST",
            "/api/mfa/totp/disable",
            Some(&token),
            Some(json!({"code": "000000"})),
        )
        .await;
    assert_ne!(s, StatusCode::OK, "{w}");
    let (s, w) = api
        .call(
            "POST",
            "/api/mfa/totp/disable",
            Some(&token),
            Some(json!({"code": pyotp(&secret, api.now_ms())})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{w}");
    let (s, _) = login(&api, "d001", None).await;
    assert_eq!(s, StatusCode::OK);
    // The security log has the failures, and never a code.
    let log = std::fs::read_to_string(api.dir.path().join("security.log")).unwrap_or_default();
    assert!(log.contains("mfa_failed"), "{log}");
    assert!(!log.contains(&code) && !log.contains(&secret));
}

#[tokio::test]
async fn break_glass_needs_a_fresh_code_once_set_up() {
    let api = TestApi::new();
    let (_, v) = login(&api, "d002", None).await;
    let (secret, recovery) = enrol(&api, &text(&v, "token")).await;
    api.advance_ms(30_000);
    let (_, v) = login(&api, "d002", Some(&pyotp(&secret, api.now_ms()))).await;
    let token = text(&v, "token");
    let request = |totp: Option<&str>| {
        let mut b = json!({"patient_id": "p001", "reason": "unconscious in the emergency room"});
        if let Some(c) = totp {
            b["totp"] = json!(c);
        }
        b
    };
    for (code, expected) in [
        (None, "step_up_required"),
        (Some("654321"), "step_up_failed"),
        (Some(""), "step_up_failed"),
        (Some(recovery[0].as_str()), "step_up_failed"),
    ] {
        let (s, e) = api
            .call(
                "POST",
                "/api/break_glass",
                Some(&token),
                Some(request(code)),
            )
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{code:?}: {e}");
        assert_eq!(e["error"]["code"], expected, "{code:?}: {e}");
    }
    // The sign-in's own code again: a replay.
    let replay = pyotp(&secret, api.now_ms());
    let (s, e) = api
        .call(
            "POST",
            "/api/break_glass",
            Some(&token),
            Some(request(Some(&replay))),
        )
        .await;
    assert_eq!(
        (s, e["error"]["code"].clone()),
        (StatusCode::FORBIDDEN, json!("step_up_failed"))
    );
    // The next step's code opens it.
    let fresh = pyotp(&secret, api.now_ms() + 30_000);
    let (s, e) = api
        .call(
            "POST",
            "/api/break_glass",
            Some(&token),
            Some(request(Some(&fresh))),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{e}");
}

#[tokio::test]
async fn a_node_that_requires_mfa_gives_staff_only_the_enrolment_until_set_up() {
    let api = TestApi::with_mfa_required();
    let (s, v) = login(&api, "d001", None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["mfa_setup_required"], true, "{v}");
    let limited = text(&v, "token");
    let (s, e) = api
        .call(
            "POST",
            "/api/get_chain",
            Some(&limited),
            Some(json!({"patient_id": "p001"})),
        )
        .await;
    assert_eq!(
        (s, e["error"]["code"].clone()),
        (StatusCode::FORBIDDEN, json!("mfa_setup_required"))
    );
    // A refresh does not turn the limited session into a full one.
    let (s, r) = api
        .call(
            "POST",
            "/api/token/refresh",
            None,
            Some(json!({"refresh_token": text(&v, "refresh_token")})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(r["mfa_setup_required"], true, "{r}");
    // Break-glass needs MFA set up at all.
    let (_, st) = api.call("GET", "/api/mfa", Some(&limited), None).await;
    assert_eq!(
        (st["enrolled"].clone(), st["required"].clone()),
        (json!(false), json!(true))
    );
    let (secret, _) = enrol(&api, &limited).await;
    // Turning it off is refused where it is required.
    api.advance_ms(30_000);
    let (s, v) = login(&api, "d001", Some(&pyotp(&secret, api.now_ms()))).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["mfa_setup_required"], false);
    let full = text(&v, "token");
    let (s, e) = api
        .call(
            "POST",
            "/api/get_chain",
            Some(&full),
            Some(json!({"patient_id": "p001"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{e}");
    let (s, _) = api
        .call(
            "POST",
            "/api/mfa/totp/disable",
            Some(&full),
            Some(json!({"code": pyotp(&secret, api.now_ms() + 30_000)})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // Patients are not staff: a password is enough for them here.
    let (s, v) = login(&api, "p001", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["mfa_setup_required"], false);
}
