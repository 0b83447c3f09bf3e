//! The node's HTTP surface: the records API (crate `medchain-api`) wired to this
//! replica's gateway, clock, committed state and live status.

use std::sync::atomic::Ordering;
use std::sync::mpsc::SyncSender;
use std::sync::Arc;

use axum::Router;
use medchain_api::auth::{open_local_db, AuthService};
use medchain_api::state::{AppConfig, AppState, ReplicaStatus, SystemClock};
use medchain_store::Reader;
use medchain_types::{ClientId, Hash32, Verifier};

use crate::config::NodeFiles;
use crate::gateway::Gateway;
use crate::metrics::Metrics;
use crate::runtime::{CoreInput, NodeError, Shared};

/// The replica's live figures, as the API reads them.
#[derive(Debug)]
struct LiveStatus(Arc<Shared>);

impl ReplicaStatus for LiveStatus {
    fn head(&self) -> (u64, Hash32, u64) {
        let hash = self.0.head_hash.lock().map(|h| *h).unwrap_or_default();
        (
            self.0.height.load(Ordering::Relaxed),
            hash,
            self.0.view.load(Ordering::Relaxed),
        )
    }
    fn in_view_change(&self) -> bool {
        self.0.in_view_change.load(Ordering::Relaxed)
    }
}

/// Build the API state: gateway (continuing after the last request id this client had
/// executed), sessions in the node-local database, the system clock.
pub fn api_state(
    files: &NodeFiles,
    reader: &Reader,
    core: SyncSender<CoreInput>,
    shared: Arc<Shared>,
    metrics: Arc<Metrics>,
) -> Result<AppState, NodeError> {
    let client = files.config.client_id;
    let last_id: Option<i64> = reader
        .connection()
        .query_row(
            "SELECT MAX(request_id) FROM outcomes WHERE client = ?1",
            [client],
            |r| r.get(0),
        )
        .map_err(medchain_store::StoreError::from)?;
    let gateway = Gateway::start(
        ClientId(client),
        files.client_key.clone(),
        Verifier::new(&files.genesis, files.limits()),
        core,
        last_id.map_or(1, |i| i as u64 + 1),
        metrics.clone(),
    );
    let conn = open_local_db(&files.gateway_db_path()).map_err(medchain_store::StoreError::from)?;
    let audience = format!("{}/replica-{}", files.genesis.chain_id, files.id().0);
    let auth = AuthService::new(conn, audience).map_err(|e| NodeError::Api(e.message))?;
    Ok(AppState::new(AppConfig {
        replica: files.id().0,
        genesis: files.genesis.clone(),
        db_path: files.db_path(),
        submitter: Box::new(gateway),
        auth,
        clock: Box::new(SystemClock),
        status: Box::new(LiveStatus(shared)),
        telemetry: Some(metrics),
        manual_validation: files.config.manual_validation,
    }))
}

/// The router, testable without a socket.
pub fn app(state: AppState) -> Router {
    medchain_api::router(state)
}
