//! The HTTP API of a MedChain node (axum). `routes::router(state)` is the whole API,
//! testable without a socket; the node supplies the ledger gateway, the clock and the
//! replica's live status through `state::AppConfig`.

pub mod access;
pub mod access_monitor;
pub mod audit;
pub mod auth;
pub mod error;
pub mod extract;
pub mod first_keys;
pub mod key_steward;
pub mod keyring;
pub mod mfa;
pub mod paging;
pub mod patient_keys;
pub mod private_files;
pub mod read_budget;
pub mod refusal_log;
pub mod routes;
pub mod sealed_text;
pub mod security_log;
pub mod state;
pub mod throttle;
pub mod user_search;
pub mod web;

pub use error::{ApiError, ApiResult};
pub use routes::router;
pub use state::{AppConfig, AppState, Clock, Committed, ReplicaStatus, Submitter, SystemClock};
