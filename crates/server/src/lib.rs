//! A MedChain replica as shipped: the app-neutral node runtime (`medchain-node`) running
//! the records ledger (`medchain-records`) with the records API (`medchain-api`) as its
//! HTTP surface. This crate is only that wiring, so that each of the three can be read
//! and tested without the others.

use std::sync::Arc;

use medchain_api::auth::{open_local_db, token_secret_path, AuthService};
use medchain_api::private_files::secure_data_dir;
use medchain_api::read_budget::READS_PER_MINUTE;
use medchain_api::security_log::SecurityLog;
use medchain_api::state::{
    AppConfig, AppState, Clock, ReplicaStatus, SubmitFuture, Submitter, SystemClock,
};
use medchain_node::batcher::Batcher;
use medchain_node::core_input::{Head, LiveStatus};
use medchain_node::{Application, BatchFormat, NodeError, NodeFiles, NodeHandles};
use medchain_records::limits::{BATCH_MAX_BYTES, BATCH_MAX_TXS};
use medchain_records::{Batch, Envelope, Ledger};
use medchain_store::{Reader, StateMachine, StoreError};
use medchain_types::ClientId;

/// The records service as the node's application.
#[derive(Debug, Default)]
pub struct RecordsApp;

impl Application for RecordsApp {
    fn state_machine(&self, files: &NodeFiles) -> Box<dyn StateMachine> {
        Box::new(Ledger::new(files.genesis.clone()))
    }

    fn transactions_in(&self, payload: &[u8]) -> usize {
        Batch::count_in(payload)
    }

    fn batch_format(&self) -> BatchFormat {
        BatchFormat {
            max_txs: BATCH_MAX_TXS,
            max_payload_bytes: BATCH_MAX_BYTES,
            join: Batch::join_encoded,
        }
    }

    fn last_request_id(
        &self,
        reader: &Reader,
        client: ClientId,
    ) -> Result<Option<u64>, StoreError> {
        Ok(medchain_records::query::last_request_id(
            reader.connection(),
            client.0,
        )?)
    }

    fn http(&self, handles: NodeHandles<'_>) -> Result<axum::Router, NodeError> {
        let state = api_state(handles)?;
        medchain_api::key_steward::spawn(state.clone());
        Ok(medchain_api::router(state))
    }
}

/// Run one replica of the records service until `shutdown` resolves.
pub async fn run(
    files: NodeFiles,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), NodeError> {
    medchain_node::run_node(files, Arc::new(RecordsApp), shutdown).await
}

/// The API's gateway: a records transaction, encoded, into this node's batcher.
#[derive(Debug)]
struct LedgerGateway(Batcher);

impl Submitter for LedgerGateway {
    fn submit(&self, env: Envelope, content: Vec<Vec<u8>>) -> SubmitFuture {
        Box::pin(self.0.submit(medchain_types::encode(&env), content))
    }
}

/// The replica's live figures, as the API reads them.
#[derive(Debug)]
struct Live(LiveStatus);

impl ReplicaStatus for Live {
    fn head(&self) -> Head {
        self.0.head()
    }
    fn in_view_change(&self) -> bool {
        self.0.in_view_change()
    }
}

/// The API state: the node's batcher as the gateway, sessions in the node-local
/// database, the token secret in its key file, the security log, the system clock, the
/// live status and metrics. The data directory is made owner-only first (0700 folders,
/// 0600 files: the ledger the store has just opened, its `-wal`/`-shm`, the gateway
/// database, the key file, the log), whatever mode `init` or an older version left.
fn api_state(h: NodeHandles<'_>) -> Result<AppState, NodeError> {
    let files = h.files;
    let api = |e: medchain_api::ApiError| NodeError::Api(e.message);
    secure_data_dir(&files.data_dir)?;
    files
        .adopt_legacy_sign_in_db()
        .map_err(|e| NodeError::Api(e.to_string()))?;
    let conn =
        open_local_db(&files.sign_in_db_path()).map_err(|e| NodeError::Api(e.to_string()))?;
    let audience = format!("{}/replica-{}", files.genesis.chain_id, files.id().0);
    let key_file = token_secret_path(&files.data_dir);
    let auth = AuthService::new(conn, audience, &key_file, SystemClock.now_ms()).map_err(api)?;
    // TOTP secrets are sealed under a key derived from the organisation's gateway key.
    let mfa_conn =
        open_local_db(&files.sign_in_db_path()).map_err(|e| NodeError::Api(e.to_string()))?;
    let organisation = files
        .genesis
        .replicas
        .get(files.id().index())
        .map_or("MedChain", |r| r.organisation.as_str());
    let mfa = medchain_api::mfa::MfaService::new(
        mfa_conn,
        &files.client_key.secret_bytes(),
        organisation,
        files.config.mfa_required_for_staff,
    )
    .map_err(api)?;
    let secrets = files
        .encryption_secrets()
        .map_err(|e| NodeError::Api(e.to_string()))?
        .into_iter()
        .map(|b| medchain_seal::OrgSecretKey::from_bytes(*b))
        .collect();
    // The key the ledger lists for this organisation now (a rotation may have replaced
    // the genesis's).
    let c = medchain_store::rusqlite::Connection::open_with_flags(
        files.db_path(),
        medchain_store::rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .map_err(|e| NodeError::Api(e.to_string()))?;
    let current = medchain_records::policy::organisation_key(
        &c,
        &files.genesis.encryption_keys,
        files.id().0,
    )
    .map_err(|e| NodeError::Api(e.to_string()))?;
    let first_keys = medchain_api::first_keys::FirstKeys::load(
        files
            .data_dir
            .join(medchain_node::config::FIRST_PATIENT_KEYS_FILE),
        &c,
    )
    .map_err(NodeError::Api)?;
    let keys = medchain_api::patient_keys::PatientKeys::new(
        &files.genesis,
        files.id().0,
        current,
        secrets,
    )
    .map_err(NodeError::Api)?
    .with_first_keys(first_keys);
    let security_log = SecurityLog::open(&files.data_dir)?;
    secure_data_dir(&files.data_dir)?;
    Ok(AppState::new(AppConfig {
        replica: files.id().0,
        genesis: files.genesis.clone(),
        db_path: files.db_path(),
        submitter: Box::new(LedgerGateway(h.batcher)),
        auth,
        mfa,
        security_log,
        reads_per_minute: READS_PER_MINUTE,
        clock: Box::new(SystemClock),
        status: Box::new(Live(h.status)),
        telemetry: Some(h.metrics),
        manual_validation: files.config.manual_validation,
        keys,
    }))
}
