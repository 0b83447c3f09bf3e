//! Tokens and logins: missing, expired, foreign-key, `alg: none`, revoked, refreshed,
//! throttled.

mod common;

use std::net::SocketAddr;

use axum::http::StatusCode;
use common::{TestApi, PASSWORD};
use medchain_api::auth::{ADDRESS_MAX_FAILURES, ADDRESS_WINDOW_MS};
use serde_json::json;

fn b64(bytes: &[u8]) -> String {
    // URL-safe base64 without padding, enough for hand-made JWTs.
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(char::from(A[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

async fn me(api: &TestApi, token: &str) -> (StatusCode, serde_json::Value) {
    api.call("GET", "/api/me", Some(token), None).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_malformed_expired_foreign_and_unsigned_tokens_are_refused() {
    let api = TestApi::new();
    let (s, v) = api.call("GET", "/api/me", None, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(v["error"]["code"], "unauthorized");
    let (s, _) = api.call_raw("GET", "/api/me", None, None, Vec::new()).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _) = me(&api, "not.a.jwt").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    let token = api.login("d001").await;
    let (s, v) = me(&api, &token).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["role"], "doctor");

    // alg: none with the same claims.
    let parts: Vec<&str> = token.split('.').collect();
    let none = format!("{}.{}.", b64(br#"{"alg":"none","typ":"JWT"}"#), parts[1]);
    let (s, _) = me(&api, &none).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "alg none must be refused");
    // Same header and claims, signature of another key (another node's token).
    let other = TestApi::new();
    let foreign = other.login("d001").await;
    let (s, _) = me(&api, &foreign).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "token signed with another key");
    // Tampered claims (role escalation) break the signature.
    let claims = String::from_utf8(parts[1].as_bytes().to_vec()).unwrap();
    let tampered = format!("{}.{}x.{}", parts[0], claims, parts[2]);
    let (s, _) = me(&api, &tampered).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    // Expiry against the injected clock: valid for 15 minutes, not one second more.
    api.advance_ms(15 * 60 * 1000 - 1000);
    assert_eq!(me(&api, &token).await.0, StatusCode::OK);
    api.advance_ms(1000);
    let (s, v) = me(&api, &token).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(v["error"]["message"], "token expired");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_revokes_and_refresh_tokens_rotate() {
    let api = TestApi::new();
    let (s, v) = api
        .call(
            "POST",
            "/api/login",
            None,
            Some(json!({"username": "p001", "password": PASSWORD})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["expires_in"], 900);
    assert_eq!(v["user_id"], "p001");
    assert_eq!(v["role"], "patient");
    let token = v["token"].as_str().unwrap().to_string();
    let refresh = v["refresh_token"].as_str().unwrap().to_string();

    let (s, v2) = api
        .call(
            "POST",
            "/api/token/refresh",
            None,
            Some(json!({"refresh_token": refresh})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v2}");
    let token2 = v2["token"].as_str().unwrap().to_string();
    assert_ne!(token, token2);

    let refresh2 = v2["refresh_token"].as_str().unwrap().to_string();
    let (s, _) = api
        .call(
            "POST",
            "/api/logout",
            Some(&token2),
            Some(json!({"refresh_token": refresh2})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        me(&api, &token2).await.0,
        StatusCode::UNAUTHORIZED,
        "revoked"
    );
    assert_eq!(
        me(&api, &token).await.0,
        StatusCode::OK,
        "other tokens stay"
    );
    let (s, _) = api
        .call(
            "POST",
            "/api/token/refresh",
            None,
            Some(json!({"refresh_token": refresh2})),
        )
        .await;
    assert_eq!(
        s,
        StatusCode::UNAUTHORIZED,
        "logout revokes the refresh token too"
    );
    // A refresh token is single use: a second use is refused and, being the sign of a
    // stolen copy, ends the whole session (tests/sessions.rs has the details).
    let (s, _) = api
        .call(
            "POST",
            "/api/token/refresh",
            None,
            Some(json!({"refresh_token": refresh})),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(me(&api, &token).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_failures_are_throttled_per_account() {
    let api = TestApi::new();
    let (s, v) = api
        .call(
            "POST",
            "/api/login",
            None,
            Some(json!({"username": "d001", "password": "wrong"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(v["error"]["message"], "wrong username or password");
    let (s, v2) = api
        .call(
            "POST",
            "/api/login",
            None,
            Some(json!({"username": "nobody", "password": "wrong"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(v, v2, "unknown and known accounts fail alike");
    for _ in 0..4 {
        api.call(
            "POST",
            "/api/login",
            None,
            Some(json!({"username": "d001", "password": "wrong"})),
        )
        .await;
    }
    let (s, v) = api
        .call(
            "POST",
            "/api/login",
            None,
            Some(json!({"username": "d001", "password": PASSWORD})),
        )
        .await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{v}");
    assert_eq!(v["error"]["code"], "throttled");
    // Other accounts are unaffected; after the window the account works again.
    api.login("d002").await;
    api.advance_ms(15 * 60 * 1000);
    api.login("d001").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_failures_from_one_address_are_throttled_across_accounts() {
    let api = TestApi::new();
    let a: SocketAddr = "203.0.113.7:40000".parse().unwrap();
    let b: SocketAddr = "198.51.100.9:40000".parse().unwrap();
    let login_from = |addr: SocketAddr, user: &str, password: &'static str| {
        let user = user.to_string();
        let api = &api;
        async move {
            api.call_from(
                addr,
                "POST",
                "/api/login",
                None,
                Some(json!({"username": user, "password": password})),
            )
            .await
        }
    };
    // One failure for each of many accounts (known and unknown): no account reaches its
    // limit, but address A exhausts its budget.
    let ghosts: Vec<String> = (0..ADDRESS_MAX_FAILURES - 3)
        .map(|k| format!("ghost-{k}"))
        .collect();
    let users = ["d001", "d002", "p001"]
        .into_iter()
        .chain(ghosts.iter().map(String::as_str));
    for user in users {
        let (s, v) = login_from(a, user, "wrong password").await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{user}: {v}");
    }
    // A is now refused even with the right password of an account with no failures.
    let (s, v) = login_from(a, "d003", PASSWORD).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{v}");
    assert_eq!(v["error"]["code"], "throttled");
    // Another address signs in to that same account (and to one that failed from A).
    let (s, v) = login_from(b, "d003", PASSWORD).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["user_id"], "d003");
    let (s, v) = login_from(b, "d001", PASSWORD).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // Still refused at A until the window has passed; then A works again.
    api.advance_ms(ADDRESS_WINDOW_MS - 1);
    let (s, _) = login_from(a, "d003", PASSWORD).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    api.advance_ms(1);
    let (s, v) = login_from(a, "d003", PASSWORD).await;
    assert_eq!(s, StatusCode::OK, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deactivated_users_lose_their_sessions() {
    let api = TestApi::new();
    let d002 = api.login("d002").await;
    let dep = api.login("dep001").await;
    let (s, v) = api
        .call("POST", "/api/users/d002/deactivate", Some(&dep), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(me(&api, &d002).await.0, StatusCode::UNAUTHORIZED);
    let (s, _) = api
        .call(
            "POST",
            "/api/login",
            None,
            Some(json!({"username": "d002", "password": PASSWORD})),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // A department cannot deactivate another department's staff.
    let (s, _) = api
        .call("POST", "/api/users/d003/deactivate", Some(&dep), None)
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_json_needs_a_session_and_a_node_without_metrics_says_so() {
    let api = TestApi::new();
    let (s, _) = api.call("GET", "/api/metrics", None, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let token = api.login("dep001").await;
    let (s, v) = api.call("GET", "/api/metrics", Some(&token), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    assert_eq!(v["error"]["message"], "this node publishes no metrics");
    let (s, _) = api.call("GET", "/metrics", None, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}
