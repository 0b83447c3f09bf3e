//! An API on a one-process ledger: the real records executor, SQLite store and router,
//! with consensus replaced by a local certifier that signs each block with the genesis
//! replica keys (PBFT itself is tested in medchain-pbft, medchain-sim and the
//! real-process cluster tests). The clock is injected so expiry can be tested.
#![allow(dead_code, clippy::unwrap_used)] // test support: a failed set-up should panic loudly

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{HeaderMap, Request as HttpRequest, StatusCode};
use http_body_util::BodyExt;
use medchain_api::auth::{open_local_db, token_secret_path, AuthService};
use medchain_api::read_budget::READS_PER_MINUTE;
use medchain_api::security_log::SecurityLog;
use medchain_api::state::{
    AppConfig, AppState, Clock, Committed, Head, ReplicaStatus, SubmitError, SubmitFuture,
    Submitter,
};
use medchain_records::{Batch, Envelope, Ledger};
use medchain_store::{Store, WriteOp};
use medchain_testkit::{GenesisBuilder, TestKeys};
use medchain_types::{ClientId, Genesis, Hash32, KeyPair, Proposal, ReplicaId, Request, UserRole};
use serde_json::{json, Value};
use tower::ServiceExt;

pub const START_MS: u64 = 1_800_000_000_000;

#[derive(Debug)]
pub struct ManualClock(pub AtomicU64);

impl ManualClock {
    pub fn now_ms(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

struct ClockHandle(Arc<ManualClock>);

impl Clock for ClockHandle {
    fn now_ms(&self) -> u64 {
        self.0.now_ms()
    }
}

/// The test chain's replica keys (the local certifier signs with them).
fn keys() -> TestKeys {
    TestKeys::new("api-")
}

/// Nine users of organisation 0 in two departments, with three standing consents; one
/// client, the organisation's gateway.
pub fn genesis() -> Genesis {
    let users = [
        ("d001", UserRole::Doctor, "cardiology"),
        ("d002", UserRole::Doctor, "cardiology"),
        ("d003", UserRole::Doctor, "oncology"),
        ("p001", UserRole::Patient, "cardiology"),
        ("p002", UserRole::Patient, "cardiology"),
        ("ph001", UserRole::Pharmacy, "pharmacy"),
        ("ph002", UserRole::Pharmacy, "pharmacy"),
        ("dep001", UserRole::Department, "cardiology"),
        ("dep002", UserRole::Department, "oncology"),
    ];
    let mut b = GenesisBuilder::new("api-test", keys())
        .encrypted()
        .clients(0)
        .client("gateway", KeyPair::for_test("api-gateway").public())
        .organisations(|i| format!("Org {i}"))
        .addresses(|i| {
            (
                format!("127.0.0.1:{}", 7000 + i),
                format!("127.0.0.1:{}", 5000 + i),
            )
        });
    for (id, role, department) in users {
        b = b.user_in(id, role, department, &format!("User {id}"));
    }
    b.consent("p001", "d001")
        .consent("p002", "d001")
        .consent("p002", "d002")
        .build()
}

/// The local ledger's last block and the next request id of its one client.
#[derive(Debug, Clone, Copy)]
struct LocalHead {
    height: u64,
    hash: Hash32,
    next_request_id: u64,
}

/// Commits every submitted request in its own certified block, in order.
struct LocalLedger {
    store: Store,
    key: KeyPair,
    state: Mutex<LocalHead>,
    clock: Arc<ManualClock>,
}

impl LocalLedger {
    fn commit(&self, payload: Vec<u8>, content: Vec<Vec<u8>>) -> Result<Committed, String> {
        let mut st = self.state.lock().map_err(|e| e.to_string())?;
        let (height, prev, id) = (st.height + 1, st.hash, st.next_request_id);
        let request = Request {
            client: ClientId(0),
            request_id: id,
            payload,
            content_hashes: content.iter().map(|c| Hash32::sha256(c)).collect(),
        }
        .sign_with_content(&self.key, content);
        let proposal = Proposal {
            height,
            view: 0,
            proposer: ReplicaId(0),
            timestamp_ms: self.clock.now_ms(),
            requests: vec![request],
        };
        let block = keys().commit_block(&proposal, prev, 0, &[0, 1, 2]);
        let hash = block.hash();
        self.store
            .write(vec![WriteOp::Block(block)])
            .map_err(|e| e.to_string())?;
        *st = LocalHead {
            height,
            hash,
            next_request_id: id + 1,
        };
        Ok(Committed {
            client: 0,
            request_id: id,
            index: 0,
            height,
            block_hash: hash,
        })
    }
}

struct Shared(Arc<LocalLedger>);

impl Submitter for Shared {
    fn submit(&self, env: Envelope, content: Vec<Vec<u8>>) -> SubmitFuture {
        // A failed local write stands for a replica that did not take the request.
        let r = self
            .0
            .commit(Batch::one(&env), content)
            .map_err(SubmitError::Refused);
        Box::pin(async move { r })
    }
}

impl ReplicaStatus for Shared {
    fn head(&self) -> Head {
        let st = self.0.state.lock().map(|s| *s).ok();
        Head {
            height: st.map_or(0, |s| s.height),
            hash: st.map(|s| s.hash).unwrap_or_default(),
            view: 0,
        }
    }
    fn in_view_change(&self) -> bool {
        false
    }
}

pub struct TestApi {
    pub state: AppState,
    pub clock: Arc<ManualClock>,
    pub dir: tempfile::TempDir,
    pub router: axum::Router,
    ledger: Arc<LocalLedger>,
}

pub const PASSWORD: &str = "correct horse battery";

impl TestApi {
    pub fn new() -> TestApi {
        Self::with_manual_validation(false)
    }

    pub fn with_manual_validation(manual: bool) -> TestApi {
        Self::build(manual, READS_PER_MINUTE, false)
    }

    /// An API whose users may make only `n` audited reads a minute.
    pub fn with_reads_per_minute(n: u32) -> TestApi {
        Self::build(false, n, false)
    }

    /// An API of a node that requires two-step sign-in for staff.
    pub fn with_mfa_required() -> TestApi {
        Self::build(false, READS_PER_MINUTE, true)
    }

    fn build(manual: bool, reads_per_minute: u32, mfa_required: bool) -> TestApi {
        let dir = tempfile::tempdir().unwrap();
        let g = genesis();
        let db = dir.path().join("medchain.sqlite");
        let store = Store::open_with(&db, Box::new(Ledger::new(g.clone()))).unwrap();
        let clock = Arc::new(ManualClock(AtomicU64::new(START_MS)));
        let ledger = Arc::new(LocalLedger {
            store,
            key: KeyPair::for_test("api-gateway"),
            state: Mutex::new(LocalHead {
                height: 0,
                hash: g.hash(),
                next_request_id: 1,
            }),
            clock: clock.clone(),
        });
        let conn = open_local_db(&dir.path().join("sign-in.sqlite")).unwrap();
        let phc = medchain_api::auth::hash_password(PASSWORD).unwrap();
        for u in &g.users {
            medchain_api::auth::set_password_hash(&conn, &u.user_id, &phc).unwrap();
        }
        let auth = AuthService::new(
            conn,
            "api-test/replica-0".into(),
            &token_secret_path(dir.path()),
            START_MS,
        )
        .unwrap();
        let security_log = SecurityLog::open(dir.path()).unwrap();
        let mfa = medchain_api::mfa::MfaService::new(
            open_local_db(&dir.path().join("sign-in.sqlite")).unwrap(),
            &KeyPair::for_test("api-gateway").secret_bytes(),
            "St Mary's",
            mfa_required,
        )
        .unwrap();
        let g_for_keys = g.clone();
        let state = AppState::new(AppConfig {
            replica: 0,
            genesis: g,
            db_path: db,
            submitter: Box::new(Shared(ledger.clone())),
            auth,
            mfa,
            security_log,
            reads_per_minute,
            clock: Box::new(ClockHandle(clock.clone())),
            status: Box::new(Shared(ledger.clone())),
            telemetry: None,
            manual_validation: manual,
            keys: medchain_api::patient_keys::PatientKeys::new(
                &g_for_keys,
                0,
                g_for_keys.encryption_key(0).map(|k| k.0),
                vec![keys().encryption(0)],
            )
            .unwrap(),
        });
        let router = medchain_api::router(state.clone());
        TestApi {
            state,
            clock,
            dir,
            router,
            ledger,
        }
    }

    /// Commit `txs` as one request (one batch, as a gateway sends them) in its own block.
    pub fn commit_batch(&self, txs: Vec<Envelope>) -> Committed {
        self.ledger
            .commit(Batch(txs).encode(), Vec::new())
            .expect("the batch commits")
    }

    pub fn advance_ms(&self, ms: u64) {
        self.clock.0.fetch_add(ms, Ordering::SeqCst);
    }

    pub fn now_ms(&self) -> u64 {
        self.clock.0.load(Ordering::SeqCst)
    }

    /// Send a request; returns status and JSON body (Null when empty or not JSON).
    pub async fn call_raw(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> (StatusCode, Value) {
        let (status, _, v) = self
            .send(None, method, path, token, content_type, body)
            .await;
        (status, v)
    }

    /// Like `call`, with the answer's headers too, as if from `addr` when given.
    pub async fn call_full(
        &self,
        addr: Option<std::net::SocketAddr>,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, HeaderMap, Value) {
        let (content_type, bytes) = match body {
            Some(v) => (Some("application/json"), serde_json::to_vec(&v).unwrap()),
            None => (None, Vec::new()),
        };
        self.send(addr, method, path, token, content_type, bytes)
            .await
    }

    /// `POST /api/login` with `password`; status and body.
    pub async fn login_with(&self, user: &str, password: &str) -> (StatusCode, Value) {
        self.call(
            "POST",
            "/api/login",
            None,
            Some(json!({"username": user, "password": password})),
        )
        .await
    }

    /// One request through the router, from `addr` when given (as the server's
    /// `ConnectInfo` would report it).
    async fn send(
        &self,
        addr: Option<std::net::SocketAddr>,
        method: &str,
        path: &str,
        token: Option<&str>,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> (StatusCode, HeaderMap, Value) {
        let mut b = HttpRequest::builder().method(method).uri(path);
        if let Some(a) = addr {
            b = b.extension(axum::extract::ConnectInfo(a));
        }
        if let Some(t) = token {
            b = b.header("authorization", format!("Bearer {t}"));
        }
        if let Some(ct) = content_type {
            b = b.header("content-type", ct);
        }
        let resp = self
            .router
            .clone()
            .oneshot(b.body(Body::from(body)).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            headers,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        match body {
            Some(v) => {
                self.call_raw(
                    method,
                    path,
                    token,
                    Some("application/json"),
                    serde_json::to_vec(&v).unwrap(),
                )
                .await
            }
            None => self.call_raw(method, path, token, None, Vec::new()).await,
        }
    }

    pub async fn login(&self, user: &str) -> String {
        let (s, v) = self
            .call(
                "POST",
                "/api/login",
                None,
                Some(json!({"username": user, "password": PASSWORD})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "login {user}: {v}");
        v["token"].as_str().unwrap().to_string()
    }

    /// d001 adds a record for `patient`; returns (record_id, prescription_code).
    pub async fn add_record(&self, doctor_token: &str, patient: &str) -> (String, String) {
        let (s, v) = self
            .call(
                "POST",
                "/api/add_record",
                Some(doctor_token),
                Some(json!({"patient_id": patient, "diagnosis": "Hypertension", "prescription": "Amlodipine 5 mg",
                            "notes": "follow up in 4 weeks",
                            "medications": [{"name": "Amlodipine", "dose": "5 mg", "route": "oral", "frequency": "daily"}]})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "add_record: {v}");
        (
            v["record_id"].as_str().unwrap().to_string(),
            v["prescription_code"].as_str().unwrap().to_string(),
        )
    }

    /// Number of audit rows for `patient`.
    pub fn audit_count(&self, patient: &str) -> i64 {
        let conn =
            medchain_store::rusqlite::Connection::open(self.dir.path().join("medchain.sqlite"))
                .unwrap();
        conn.query_row(
            "SELECT COUNT(*) FROM audit WHERE patient = ?1",
            [patient],
            |r| r.get(0),
        )
        .unwrap()
    }

    /// Like `call`, but as if from the peer `addr`: the request carries the
    /// `ConnectInfo<SocketAddr>` a server started with connect info would give it.
    pub async fn call_from(
        &self,
        addr: std::net::SocketAddr,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let (content_type, bytes) = match body {
            Some(v) => (Some("application/json"), serde_json::to_vec(&v).unwrap()),
            None => (None, Vec::new()),
        };
        let (status, _, v) = self
            .send(Some(addr), method, path, token, content_type, bytes)
            .await;
        (status, v)
    }
}
