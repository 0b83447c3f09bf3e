//! What every handler shares: the ledger gateway (submit a transaction, wait for its
//! commit), read connections on the committed state, sessions, the security log, the
//! per-user read budget, the clock, and the live figures of the replica.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use medchain_records::{Actor, Envelope, Outcome, Rejection, Transaction};
use medchain_store::rusqlite::{Connection, OpenFlags};
use medchain_types::Genesis;

use crate::auth::AuthService;
use crate::error::{ApiError, ApiResult};
use crate::read_budget::ReadBudget;
use crate::security_log::SecurityLog;

/// How long a handler waits for its transaction to commit.
pub const COMMIT_TIMEOUT: Duration = Duration::from_secs(10);
/// Read connections, all kept open: reads beyond this many wait for one (opening a
/// SQLite connection per read would cost more than the read).
const READ_POOL_CONNECTIONS: usize = 16;
/// How long a read in the blocking pool waits for a lock.
const READ_BUSY_WAIT: Duration = Duration::from_secs(5);
/// How long a lookup on an async thread waits for one (see [`AppState::lookup`]).
const LOOKUP_BUSY_WAIT: Duration = Duration::from_millis(20);

/// A record waiting for `validate_block`: its transaction, content and id.
pub type PendingRecord = (Envelope, Vec<Vec<u8>>, String);

pub type SubmitFuture = Pin<Box<dyn Future<Output = Result<Committed, SubmitError>> + Send>>;

/// The node's side of the gateway: put `env` (with `content` beside it) into a request
/// signed as this node's client, possibly batched with other users' transactions, hand
/// it to the replica, and resolve once it is committed and durable.
pub trait Submitter: Send + Sync + 'static {
    fn submit(&self, env: Envelope, content: Vec<Vec<u8>>) -> SubmitFuture;
}

/// Wall-clock milliseconds, injectable for tests of expiry.
pub trait Clock: Send + Sync + 'static {
    fn now_ms(&self) -> u64;
}

#[derive(Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
    }
}

/// The replica's live figures (view, head, peers), provided by the node.
pub trait ReplicaStatus: Send + Sync + 'static {
    fn head(&self) -> Head;
    fn in_view_change(&self) -> bool;
}

pub use medchain_node::batcher::{Committed, SubmitError};
pub use medchain_node::core_input::Head;
pub use medchain_node::metrics::{MetricsPoint, MetricsSnapshot, PeerStatus};

/// The replica's metrics, provided by the node.
pub trait Telemetry: Send + Sync + 'static {
    /// Prometheus (OpenMetrics) text.
    fn prometheus_text(&self) -> String;
    fn snapshot(&self) -> MetricsSnapshot;
}

impl Telemetry for medchain_node::metrics::Metrics {
    fn prometheus_text(&self) -> String {
        medchain_node::metrics::Metrics::prometheus_text(self)
    }
    fn snapshot(&self) -> MetricsSnapshot {
        medchain_node::metrics::Metrics::snapshot(self)
    }
}

/// Everything handlers need. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub inner: Arc<Inner>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AppState { .. }")
    }
}

#[allow(missing_debug_implementations)] // holds trait objects and connections
pub struct Inner {
    pub replica: u16,
    pub genesis: Genesis,
    pub db_path: PathBuf,
    pub submitter: Box<dyn Submitter>,
    pub auth: AuthService,
    /// Two-step sign-in factors and the step-up check.
    pub mfa: crate::mfa::MfaService,
    pub security: SecurityLog,
    /// Audited reads per user (each one is a ledger write).
    pub read_budget: ReadBudget,
    pub clock: Box<dyn Clock>,
    pub status: Box<dyn ReplicaStatus>,
    /// Absent in tests that do not run a replica.
    pub telemetry: Option<Arc<dyn Telemetry>>,
    /// Records wait here for `validate_block` when the node validates manually.
    pub manual_validation: bool,
    pub pending: tokio::sync::Mutex<Vec<PendingRecord>>,
    /// The access monitor, fed from the committed blocks as alerts are asked for.
    pub access_monitor: crate::access_monitor::AccessMonitor,
    /// The organisation's patient keys: encrypts what this node writes, decrypts what
    /// it reads.
    pub keys: Arc<crate::patient_keys::PatientKeys>,
    readers: Mutex<Vec<Connection>>,
    /// One permit per read connection.
    read_slots: tokio::sync::Semaphore,
}

/// How to build an `AppState`.
#[allow(missing_debug_implementations)] // holds trait objects
pub struct AppConfig {
    pub replica: u16,
    pub genesis: Genesis,
    pub db_path: PathBuf,
    pub submitter: Box<dyn Submitter>,
    pub auth: AuthService,
    pub mfa: crate::mfa::MfaService,
    pub security_log: SecurityLog,
    /// Audited reads per user per minute (`crate::read_budget::READS_PER_MINUTE`).
    pub reads_per_minute: u32,
    pub clock: Box<dyn Clock>,
    pub status: Box<dyn ReplicaStatus>,
    pub telemetry: Option<Arc<dyn Telemetry>>,
    pub manual_validation: bool,
    pub keys: crate::patient_keys::PatientKeys,
}

impl AppState {
    pub fn new(c: AppConfig) -> Self {
        AppState {
            inner: Arc::new(Inner {
                replica: c.replica,
                genesis: c.genesis,
                db_path: c.db_path,
                submitter: c.submitter,
                auth: c.auth,
                mfa: c.mfa,
                security: c.security_log,
                read_budget: ReadBudget::new(c.reads_per_minute),
                clock: c.clock,
                status: c.status,
                telemetry: c.telemetry,
                manual_validation: c.manual_validation,
                pending: tokio::sync::Mutex::new(Vec::new()),
                access_monitor: crate::access_monitor::AccessMonitor::default(),
                keys: Arc::new(c.keys),
                readers: Mutex::new(Vec::new()),
                read_slots: tokio::sync::Semaphore::new(READ_POOL_CONNECTIONS),
            }),
        }
    }

    /// `u` with its display name as this node may show it (a patient's sealed name
    /// opened with the patient's key).
    pub fn with_shown_name(&self, mut u: medchain_records::UserRow) -> medchain_records::UserRow {
        if u.display_name
            .starts_with(medchain_records::sealed::SEALED_NAME_PREFIX)
        {
            let keys = Arc::clone(&self.inner.keys);
            if let Ok(n) = self.lookup(|c| Ok(keys.display_name(c, &u.user_id, &u.display_name))) {
                u.display_name = n;
            }
        }
        u
    }

    /// Whether `patient` is a patient of this node's organisation.
    pub fn is_home_of(&self, patient: &str) -> ApiResult<bool> {
        let u = self.lookup(|c| Ok(medchain_records::user(c, patient)?))?;
        Ok(u.is_some_and(|u| u.organisation == self.inner.replica))
    }

    /// The name of `patient`'s home organisation, for messages.
    pub fn home_name_of(&self, patient: &str) -> ApiResult<String> {
        let u = self.lookup(|c| Ok(medchain_records::user(c, patient)?))?;
        Ok(
            u.and_then(|u| self.inner.genesis.replicas.get(usize::from(u.organisation)))
                .map_or_else(
                    || "the home organisation".into(),
                    |r| r.organisation.clone(),
                ),
        )
    }

    pub fn now_ms(&self) -> u64 {
        self.inner.clock.now_ms()
    }

    /// Run `f` on a read connection of the committed state, off the async threads.
    pub async fn read<T, F>(&self, f: F) -> ApiResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> ApiResult<T> + Send + 'static,
    {
        let _slot = self
            .inner
            .read_slots
            .acquire()
            .await
            .map_err(ApiError::internal)?;
        let s = self.clone();
        tokio::task::spawn_blocking(move || {
            let conn = s.take_reader()?;
            let out = f(&conn);
            s.give_back(conn);
            out
        })
        .await
        .map_err(ApiError::internal)?
    }

    /// Run `f`, a lookup of a few rows by key, on the calling async thread. For the
    /// reads every request makes (its user, a consent, its outcome), each of which takes
    /// microseconds: handing them to the blocking pool cost two thread wake-ups each, and
    /// doing them here made the HTTP closed loop about 15 % faster (BENCHMARKS.md). A
    /// reader waits at most `LOOKUP_BUSY_WAIT` for a lock (WAL readers rarely meet one),
    /// so a lookup cannot hold an async thread for long. Anything that scans belongs in
    /// [`AppState::read`].
    pub fn lookup<T>(&self, f: impl FnOnce(&Connection) -> ApiResult<T>) -> ApiResult<T> {
        let conn = self.take_reader()?;
        conn.busy_timeout(LOOKUP_BUSY_WAIT)?;
        let out = f(&conn);
        conn.busy_timeout(READ_BUSY_WAIT)?;
        self.give_back(conn);
        out
    }

    fn take_reader(&self) -> ApiResult<Connection> {
        if let Some(c) = self
            .inner
            .readers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop()
        {
            return Ok(c);
        }
        let c = Connection::open_with_flags(
            &self.inner.db_path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        c.busy_timeout(READ_BUSY_WAIT)?;
        Ok(c)
    }

    fn give_back(&self, c: Connection) {
        let mut pool = self
            .inner
            .readers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if pool.len() < READ_POOL_CONNECTIONS {
            pool.push(c);
        }
    }

    /// Submit a transaction and wait for it to commit; then turn the ledger's verdict into
    /// an answer (403, 404, 409, 422 for rejections). The audit entry of a read is first
    /// charged to its reader's read budget (429 beyond it): every route that reads a
    /// patient's data commits one here, so no route can forget the budget.
    pub async fn commit(&self, env: &Envelope, content: Vec<Vec<u8>>) -> ApiResult<Committed> {
        if let (Actor::User(reader), Transaction::AuditRead { .. }) = (&env.actor, &env.tx) {
            self.inner.read_budget.take(reader, self.now_ms())?;
        }
        let c = self.commit_only(env.clone(), content).await?;
        let outcome = self.lookup(|conn| {
            Ok(medchain_records::query::outcome(
                conn,
                c.client,
                c.request_id,
                c.index,
            )?)
        })?;
        match outcome {
            Some((Outcome::Ok, _)) => Ok(c),
            Some((outcome, message)) => Err(Rejection::new(outcome, message).into()),
            None => Err(ApiError::internal("committed request has no outcome")),
        }
    }

    /// Submit a transaction and wait for the commit, bounded by `COMMIT_TIMEOUT`, without
    /// reading its outcome.
    async fn commit_only(&self, env: Envelope, content: Vec<Vec<u8>>) -> ApiResult<Committed> {
        let fut = self.inner.submitter.submit(env, content);
        match tokio::time::timeout(COMMIT_TIMEOUT, fut).await {
            Ok(Ok(c)) => Ok(c),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "submit failed");
                Err(ApiError::unavailable(
                    "the ledger did not accept the transaction; try again",
                ))
            }
            Err(_) => Err(ApiError::unavailable(
                "the ledger did not commit in time; try again",
            )),
        }
    }
}
