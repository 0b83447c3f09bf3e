//! The HTTP surface of a node, for now: health and the chain head. The records API and
//! the web UI come with the records service.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::{extract::State, routing::get, Json, Router};
use medchain_types::ReplicaId;
use serde::Serialize;

use crate::runtime::Shared;

#[derive(Debug, Clone)]
pub struct HttpState {
    pub replica: ReplicaId,
    pub shared: Arc<Shared>,
}

#[derive(Debug, Serialize)]
struct Head {
    height: u64,
    hash: String,
    view: u64,
}

#[derive(Debug, Serialize)]
struct Health {
    status: &'static str,
    replica: u16,
    in_view_change: bool,
}

/// The router, testable without a socket.
pub fn app(state: HttpState) -> Router {
    Router::new()
        .route("/healthz", get(health))
        .route("/api/chain/head", get(head))
        .with_state(state)
}

async fn health(State(s): State<HttpState>) -> Json<Health> {
    Json(Health {
        status: "ok",
        replica: s.replica.0,
        in_view_change: s.shared.in_view_change.load(Ordering::Relaxed),
    })
}

async fn head(State(s): State<HttpState>) -> Json<Head> {
    let hash = s
        .shared
        .head_hash
        .lock()
        .map(|h| h.to_hex())
        .unwrap_or_default();
    Json(Head {
        height: s.shared.height.load(Ordering::Relaxed),
        hash,
        view: s.shared.view.load(Ordering::Relaxed),
    })
}
