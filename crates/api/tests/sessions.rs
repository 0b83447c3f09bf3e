//! Sign-in security of a node (issue 16): users choose their own passwords and a change
//! ends their other sessions; an administrator's password opens only the change; a
//! refresh token used twice ends its session; throttling holds against concurrency and
//! restarts and grows per account; the read budget; the security log; the token secret
//! in an owner-only key file, lifetimes capped by the server, rotation by key id.

mod common;

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;

use axum::http::StatusCode;
use common::{TestApi, PASSWORD, START_MS};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use medchain_api::auth::{
    hash_password, open_local_db, rotate_token_secret, set_password_hash, store_password_hash,
    token_secret_path, AuthService, PasswordOrigin, ACCOUNT_FREE_FAILURES,
};
use serde_json::{json, Value};

const NEW_PASSWORD: &str = "a brand new passphrase";

async fn me(api: &TestApi, token: &str) -> StatusCode {
    api.call("GET", "/api/me", Some(token), None).await.0
}

async fn refresh(api: &TestApi, refresh_token: &str) -> (StatusCode, Value) {
    api.call(
        "POST",
        "/api/token/refresh",
        None,
        Some(json!({ "refresh_token": refresh_token })),
    )
    .await
}

async fn change_password(
    api: &TestApi,
    token: &str,
    current: &str,
    new: &str,
) -> (StatusCode, Value) {
    api.call(
        "POST",
        "/api/password",
        Some(token),
        Some(json!({"current_password": current, "new_password": new})),
    )
    .await
}

fn text(v: &Value, key: &str) -> String {
    v[key].as_str().unwrap_or_default().to_string()
}

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).expect("file").permissions().mode() & 0o777
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changing_the_password_ends_the_other_sessions_and_refresh_tokens() {
    let api = TestApi::new();
    let (_, a) = api.login_with("d001", PASSWORD).await;
    let (_, b) = api.login_with("d001", PASSWORD).await;
    assert_eq!(a["password_change_required"], false, "{a}");
    let (s, v) = change_password(&api, &text(&a, "token"), "not my password", NEW_PASSWORD).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    assert_eq!(v["error"]["field"], "current_password");
    let (s, v) = change_password(&api, &text(&a, "token"), PASSWORD, "short").await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["error"]["field"], "new_password");
    assert_eq!(
        me(&api, &text(&b, "token")).await,
        StatusCode::OK,
        "nothing changed yet"
    );

    let (s, changed) = change_password(&api, &text(&a, "token"), PASSWORD, NEW_PASSWORD).await;
    assert_eq!(s, StatusCode::OK, "{changed}");
    assert_eq!(changed["password_change_required"], false);
    // The other session is over: its access token and its refresh token.
    assert_eq!(me(&api, &text(&b, "token")).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        refresh(&api, &text(&b, "refresh_token")).await.0,
        StatusCode::UNAUTHORIZED
    );
    // This session continues, with its token and the new ones; its old refresh token
    // was replaced by the one returned.
    assert_eq!(me(&api, &text(&a, "token")).await, StatusCode::OK);
    assert_eq!(me(&api, &text(&changed, "token")).await, StatusCode::OK);
    assert_eq!(
        refresh(&api, &text(&a, "refresh_token")).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (s, v) = refresh(&api, &text(&changed, "refresh_token")).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // Only the new password signs in.
    assert_eq!(
        api.login_with("d001", PASSWORD).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(api.login_with("d001", NEW_PASSWORD).await.0, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_set_by_an_administrator_must_be_changed_first() {
    let api = TestApi::new();
    let before = api.login("d002").await;
    // What `medchain user set-password` does, from another process, while the node runs.
    let conn = open_local_db(&api.dir.path().join("sign-in.sqlite")).unwrap();
    let phc = hash_password("temporary pass 1").unwrap();
    store_password_hash(&conn, "d002", &phc, PasswordOrigin::SetByAdministrator).unwrap();
    assert_eq!(
        me(&api, &before).await,
        StatusCode::UNAUTHORIZED,
        "a reset ends sessions"
    );

    let (s, v) = api.login_with("d002", "temporary pass 1").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["password_change_required"], true);
    let limited = text(&v, "token");
    for (method, path, body) in [
        ("GET", "/api/me", None),
        ("GET", "/api/patients", None),
        (
            "POST",
            "/api/add_record",
            Some(json!({"patient_id": "p002", "diagnosis": "x", "prescription": "", "notes": ""})),
        ),
        ("POST", "/api/logout", None),
    ] {
        let (s, v) = api.call(method, path, Some(&limited), body).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{path}: {v}");
        assert_eq!(v["error"]["code"], "password_change_required", "{path}");
    }
    // Refreshing does not get around it.
    let (s, r) = refresh(&api, &text(&v, "refresh_token")).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(r["password_change_required"], true);
    assert_eq!(me(&api, &text(&r, "token")).await, StatusCode::FORBIDDEN);

    let (s, done) = change_password(&api, &limited, "temporary pass 1", NEW_PASSWORD).await;
    assert_eq!(s, StatusCode::OK, "{done}");
    assert_eq!(done["password_change_required"], false);
    assert_eq!(me(&api, &text(&done, "token")).await, StatusCode::OK);
    assert_eq!(
        me(&api, &limited).await,
        StatusCode::UNAUTHORIZED,
        "the limited token is spent"
    );
    let (s, v) = api.login_with("d002", NEW_PASSWORD).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["password_change_required"], false);

    // A department registering a user with a password is an administrator too.
    let dep = api.login("dep001").await;
    let (s, v) = api
        .call(
            "POST",
            "/api/users",
            Some(&dep),
            Some(json!({"user_id": "d777", "role": "doctor", "display_name": "Dr New", "password": "initial password"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = api.login_with("d777", "initial password").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["password_change_required"], true);
    // A password the user chose (or a demo account's, `set_password_hash`) is exempt.
    set_password_hash(&conn, "d003", &hash_password("chosen by d003").unwrap()).unwrap();
    let (_, v) = api.login_with("d003", "chosen by d003").await;
    assert_eq!(v["password_change_required"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_token_used_twice_ends_its_whole_session() {
    let api = TestApi::new();
    let (_, first) = api.login_with("p001", PASSWORD).await;
    let (_, other) = api.login_with("p001", PASSWORD).await;
    let (s, second) = refresh(&api, &text(&first, "refresh_token")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(me(&api, &text(&second, "token")).await, StatusCode::OK);
    // Someone replays the spent token (a thief, or the user after a thief refreshed).
    let (s, v) = refresh(&api, &text(&first, "refresh_token")).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    for token in [text(&first, "token"), text(&second, "token")] {
        assert_eq!(
            me(&api, &token).await,
            StatusCode::UNAUTHORIZED,
            "the family is over"
        );
    }
    assert_eq!(
        refresh(&api, &text(&second, "refresh_token")).await.0,
        StatusCode::UNAUTHORIZED
    );
    // Another session of the same user is not that family.
    assert_eq!(me(&api, &text(&other, "token")).await, StatusCode::OK);
    let dep = api.login("dep001").await;
    let (_, log) = api.call("GET", "/api/security_log", Some(&dep), None).await;
    assert!(
        log["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "refresh_reused" && e["user"] == "p001"),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forty_concurrent_wrong_guesses_cost_at_most_the_free_attempts() {
    let api = Arc::new(TestApi::new());
    let checks_before = api.state.inner.auth.password_checks();
    let mut guesses = tokio::task::JoinSet::new();
    for k in 0..40 {
        let api = api.clone();
        guesses.spawn(async move { api.login_with("d001", &format!("guess number {k}")).await.0 });
    }
    let (mut wrong, mut throttled) = (0u64, 0u64);
    while let Some(s) = guesses.join_next().await {
        match s.unwrap() {
            StatusCode::UNAUTHORIZED => wrong += 1,
            StatusCode::TOO_MANY_REQUESTS => throttled += 1,
            other => panic!("unexpected {other}"),
        }
    }
    let checks = api.state.inner.auth.password_checks() - checks_before;
    assert!(
        checks <= u64::from(ACCOUNT_FREE_FAILURES),
        "{checks} Argon2 verifications"
    );
    assert_eq!(wrong, checks, "every verification was a reserved attempt");
    assert_eq!(wrong + throttled, 40);
    // The right password now waits too: the guesses were counted before Argon2 ran.
    let (s, h, v) = api
        .call_full(
            None,
            "POST",
            "/api/login",
            None,
            Some(json!({"username": "d001", "password": PASSWORD})),
        )
        .await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{v}");
    assert!(h.get("retry-after").is_some());
    assert_eq!(
        api.state.inner.auth.password_checks() - checks_before,
        checks
    );
}

/// One sign-in; status and `Retry-After` (0 when absent).
async fn attempt(
    api: &TestApi,
    addr: Option<SocketAddr>,
    user: &str,
    password: &str,
) -> (StatusCode, u64) {
    let (s, h, _) = api
        .call_full(
            addr,
            "POST",
            "/api/login",
            None,
            Some(json!({"username": user, "password": password})),
        )
        .await;
    let wait = h
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    (s, wait)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_per_account_delay_grows_with_each_failure() {
    let api = TestApi::new();
    for _ in 0..ACCOUNT_FREE_FAILURES {
        assert_eq!(
            attempt(&api, None, "p002", "wrong").await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    let mut waits = Vec::new();
    for _ in 0..4 {
        let (s, wait) = attempt(&api, None, "p002", PASSWORD).await;
        assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
        waits.push(wait);
        api.advance_ms(wait * 1000 - 1);
        assert_eq!(
            attempt(&api, None, "p002", "wrong").await.0,
            StatusCode::TOO_MANY_REQUESTS
        );
        api.advance_ms(1);
        assert_eq!(
            attempt(&api, None, "p002", "wrong").await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(waits, vec![2, 4, 8, 16], "each failure doubles the wait");
    // After the wait, the right password signs in and clears the count.
    api.advance_ms(32_000);
    assert_eq!(
        attempt(&api, None, "p002", PASSWORD).await.0,
        StatusCode::OK
    );
    assert_eq!(
        attempt(&api, None, "p002", "wrong").await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        attempt(&api, None, "p002", PASSWORD).await.0,
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_guessing_does_not_lock_another_address_out_of_another_account() {
    let api = TestApi::new();
    let a: SocketAddr = "203.0.113.7:40000".parse().unwrap();
    let b: SocketAddr = "198.51.100.9:40000".parse().unwrap();
    for _ in 0..ACCOUNT_FREE_FAILURES + 3 {
        let (s, _) = attempt(&api, Some(a), "d001", "wrong").await;
        assert!(s == StatusCode::UNAUTHORIZED || s == StatusCode::TOO_MANY_REQUESTS);
    }
    assert_eq!(
        attempt(&api, Some(b), "d002", PASSWORD).await.0,
        StatusCode::OK
    );
    // The guessing address itself still has most of its budget for other accounts.
    assert_eq!(
        attempt(&api, Some(a), "d003", PASSWORD).await.0,
        StatusCode::OK
    );
    // The account guessed at is delayed whoever asks (the delay is its protection).
    assert_eq!(
        attempt(&api, Some(b), "d001", PASSWORD).await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[test]
fn throttle_state_survives_reopening_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sign-in.sqlite");
    let key = token_secret_path(dir.path());
    let open =
        || AuthService::new(open_local_db(&db).unwrap(), "aud".into(), &key, START_MS).unwrap();
    {
        let conn = open_local_db(&db).unwrap();
        set_password_hash(&conn, "u1", &hash_password(PASSWORD).unwrap()).unwrap();
    }
    let auth = open();
    for _ in 0..ACCOUNT_FREE_FAILURES {
        let e = auth
            .check_password("u1", "wrong", None, START_MS)
            .unwrap_err();
        assert_eq!(e.status, StatusCode::UNAUTHORIZED);
    }
    drop(auth);
    let auth = open();
    let e = auth
        .check_password("u1", PASSWORD, None, START_MS + 1)
        .unwrap_err();
    assert_eq!(
        e.status,
        StatusCode::TOO_MANY_REQUESTS,
        "the count outlived the restart"
    );
    assert_eq!(auth.password_checks(), 0, "refused before Argon2");
    assert!(auth
        .check_password("u1", PASSWORD, None, START_MS + 2_000)
        .is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_read_budget_answers_429() {
    let api = TestApi::with_reads_per_minute(3);
    let d = api.login("d001").await;
    let read = || {
        api.call_full(
            None,
            "POST",
            "/api/get_chain",
            Some(&d),
            Some(json!({"patient_id": "p001"})),
        )
    };
    for _ in 0..3 {
        let (s, _, v) = read().await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    let audited = api.audit_count("p001");
    let (s, h, v) = read().await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{v}");
    assert_eq!(v["error"]["code"], "throttled");
    assert_eq!(
        h.get("retry-after").and_then(|v| v.to_str().ok()),
        Some("20")
    );
    assert_eq!(
        api.audit_count("p001"),
        audited,
        "a refused read writes no audit entry"
    );
    // Other users have their own budget; the bucket refills with time.
    let d2 = api.login("d002").await;
    let (s, _) = api
        .call(
            "POST",
            "/api/get_chain",
            Some(&d2),
            Some(json!({"patient_id": "p002"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    api.advance_ms(20_000);
    assert_eq!(read().await.0, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_security_log_records_failed_logins_and_refusals_without_secrets() {
    let api = TestApi::new();
    let a: SocketAddr = "203.0.113.50:1234".parse().unwrap();
    let secret_pw = "Tr0ub4dor&3-wrong";
    assert_eq!(
        attempt(&api, Some(a), "d001", secret_pw).await.0,
        StatusCode::UNAUTHORIZED
    );
    // A password typed into the username field is not logged either.
    assert_eq!(
        attempt(&api, Some(a), "Tr0ub4dor-typed-as-name", "x")
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    let p = api.login("p001").await;
    let (s, _) = api
        .call(
            "POST",
            "/api/add_record",
            Some(&p),
            Some(json!({"patient_id": "p001", "diagnosis": "x", "prescription": "", "notes": ""})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    let dep = api.login("dep001").await;
    let (s, page) = api
        .call("GET", "/api/security_log?limit=50", Some(&dep), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{page}");
    let events = page["events"].as_array().unwrap();
    let failed = events
        .iter()
        .find(|e| e["kind"] == "login_failed" && e["user"] == "d001")
        .expect("failed login");
    assert_eq!(failed["addr"], "203.0.113.50");
    assert!(events.iter().any(|e| e["kind"] == "login_failed"
        && e["user"].is_null()
        && e["detail"] == "unknown account"));
    let refused = events
        .iter()
        .find(|e| e["kind"] == "forbidden")
        .expect("403");
    assert_eq!(refused["path"], "/api/add_record");
    assert_eq!(refused["user"], "p001");
    assert_eq!(refused["status"], 403);
    // Newest first, paged by cursor.
    let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] > w[1]), "{seqs:?}");
    let (_, first) = api
        .call("GET", "/api/security_log?limit=1", Some(&dep), None)
        .await;
    let cursor = first["next_cursor"].as_u64().unwrap();
    let (_, next) = api
        .call(
            "GET",
            &format!("/api/security_log?limit=1&cursor={cursor}"),
            Some(&dep),
            None,
        )
        .await;
    assert_eq!(next["events"][0]["seq"].as_u64(), Some(cursor - 1));
    // Only department administrators read it (and that refusal is logged too).
    let (s, _) = api.call("GET", "/api/security_log", Some(&p), None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    let raw = std::fs::read_to_string(api.dir.path().join("security.log")).unwrap();
    for secret in [
        secret_pw,
        "Tr0ub4dor-typed-as-name",
        PASSWORD,
        p.as_str(),
        dep.as_str(),
    ] {
        assert!(!raw.contains(secret), "the log holds {secret}");
    }
    assert_eq!(mode(&api.dir.path().join("security.log")), 0o600);
}

#[test]
fn the_token_secret_lives_in_an_owner_only_key_file() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("node0");
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    let db = data.join("sign-in.sqlite");
    // An older node kept its secret in the database: it moves to the key file.
    let legacy = [7u8; 32];
    let conn = open_local_db(&db).unwrap();
    conn.execute(
        "INSERT INTO gateway_meta (key, value) VALUES ('jwt_secret', ?1)",
        [&legacy[..]],
    )
    .unwrap();
    let key = token_secret_path(&data);
    let _auth = AuthService::new(conn, "aud".into(), &key, START_MS).unwrap();
    assert_eq!(mode(&key), 0o600);
    assert_eq!(mode(&data), 0o700);
    for f in ["sign-in.sqlite", "sign-in.sqlite-wal", "sign-in.sqlite-shm"] {
        if data.join(f).exists() {
            assert_eq!(mode(&data.join(f)), 0o600, "{f}");
        }
    }
    assert!(std::fs::read_to_string(&key)
        .unwrap()
        .contains(&hex::encode(legacy)));
    let rows: i64 = open_local_db(&db)
        .unwrap()
        .query_row(
            "SELECT COUNT(*) FROM gateway_meta WHERE key = 'jwt_secret'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(rows, 0, "no secret left in sign-in.sqlite");
}

/// The key file's (kid, secret) pairs, oldest first.
fn key_file_keys(api: &TestApi) -> Vec<(String, Vec<u8>)> {
    std::fs::read_to_string(token_secret_path(api.dir.path()))
        .expect("key file")
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f[1].to_string(), hex::decode(f[3]).expect("hex"))
        })
        .collect()
}

fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token)
        .expect("header")
        .kid
        .expect("kid")
}

/// Decode `token`'s claims with the node's key, change them with `edit`, sign again.
fn re_sign(api: &TestApi, token: &str, edit: impl FnOnce(&mut Value)) -> String {
    let kid = kid_of(token);
    let keys = key_file_keys(api);
    let secret = &keys.iter().find(|(k, _)| *k == kid).expect("key").1;
    let mut v = Validation::new(Algorithm::HS256);
    v.set_audience(&["api-test/replica-0"]);
    v.validate_exp = false;
    let mut claims = jsonwebtoken::decode::<Value>(token, &DecodingKey::from_secret(secret), &v)
        .expect("decodes")
        .claims;
    edit(&mut claims);
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(kid);
    jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(secret)).expect("signs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_longer_lived_than_the_server_allows_are_refused() {
    let api = TestApi::new();
    let token = api.login("d001").await;
    let same = re_sign(&api, &token, |_| {});
    assert_eq!(
        me(&api, &same).await,
        StatusCode::OK,
        "re-signing alone changes nothing"
    );
    let long = re_sign(&api, &token, |c| {
        c["exp"] = json!(c["iat"].as_u64().unwrap() + 365 * 86_400)
    });
    let (s, v) = api.call("GET", "/api/me", Some(&long), None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(v["error"]["message"], "token lifetime exceeds the limit");
    let future = re_sign(&api, &token, |c| {
        let iat = c["iat"].as_u64().unwrap() + 3_600;
        c["iat"] = json!(iat);
        c["exp"] = json!(iat + 900);
    });
    let (s, v) = api.call("GET", "/api/me", Some(&future), None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(v["error"]["message"], "token issued in the future");
    let no_kid = {
        let parts: Vec<&str> = same.split('.').collect();
        let header = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &json!({}),
            &EncodingKey::from_secret(b"k"),
        )
        .unwrap();
        format!(
            "{}.{}.{}",
            header.split('.').next().unwrap(),
            parts[1],
            parts[2]
        )
    };
    assert_eq!(
        me(&api, &no_kid).await,
        StatusCode::UNAUTHORIZED,
        "a token without kid"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_keeps_old_tokens_valid_and_signs_new_ones_with_the_new_key() {
    let api = TestApi::new();
    let t1 = api.login("d001").await;
    let k1 = kid_of(&t1);
    let k2 = api.state.inner.auth.rotate_secret(api.now_ms()).unwrap();
    assert_ne!(k1, k2);
    let t2 = api.login("d001").await;
    assert_eq!(kid_of(&t2), k2);
    assert_eq!(
        me(&api, &t1).await,
        StatusCode::OK,
        "signed with the previous secret"
    );
    assert_eq!(me(&api, &t2).await, StatusCode::OK);
    // The CLI rotates the file while the node runs: the node signs with it from then on.
    let k3 = rotate_token_secret(&token_secret_path(api.dir.path()), api.now_ms()).unwrap();
    let t3 = api.login("p001").await;
    assert_eq!(kid_of(&t3), k3);
    let kids: Vec<String> = key_file_keys(&api).into_iter().map(|(k, _)| k).collect();
    assert_eq!(kids, vec![k1, k2, k3.clone()]);
    for t in [&t1, &t2, &t3] {
        assert_eq!(me(&api, t).await, StatusCode::OK);
    }
    assert_eq!(mode(&token_secret_path(api.dir.path())), 0o600);
    // Once every token of the first secret has expired, a rotation drops it.
    api.advance_ms(16 * 60 * 1000);
    let k4 = api.state.inner.auth.rotate_secret(api.now_ms()).unwrap();
    let kids: Vec<String> = key_file_keys(&api).into_iter().map(|(k, _)| k).collect();
    assert_eq!(kids, vec![k3, k4]);
}
