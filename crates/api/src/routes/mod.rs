//! The router: every endpoint, its limits (body size, time), the JSON 404, and the
//! OpenAPI document generated from the handlers' annotations.

pub mod alerts;
pub mod break_glass_review;
pub mod chain;
pub mod department;
pub mod erasure;
pub mod fhir;
pub mod metrics;
pub mod mfa;
pub mod openapi_limits;
pub mod patient;
pub mod pharmacy;
pub mod proposals;
pub mod records;
pub mod security;
pub mod session;

use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use rand::RngCore;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use utoipa::OpenApi;

use crate::error::ApiError;
use crate::state::AppState;
use openapi_limits::PublishLimits;

/// Largest request body (413 above it).
pub const MAX_BODY_BYTES: usize = 1 << 20;
/// Longest a request may take, commit included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// The answer of a write that has nothing else to say: committed, at this height.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Done {
    pub ok: bool,
    pub block_height: u64,
}

pub use crate::paging::PageParams;

/// A new id with a prefix: 12 hex digits of the time in milliseconds, then 16 random
/// ones (`rec-019ab3c4d5e6f7a8…`). Time first makes ids sort by creation, so a new
/// record's key lands at the end of the ledger's id index. A fully random id put each
/// record on a random index page, and every commit wrote each page it touched whole to
/// the log (at 2,000 records/s through HTTP the replicas wrote 80 to 83 MB/s each with
/// random ids, 70 to 76 MB/s with these; BENCHMARKS.md). The random half keeps ids from
/// two gateways in the same millisecond apart; the ledger refuses a duplicate id anyway.
pub fn new_id(prefix: &str) -> String {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
        & 0xffff_ffff_ffff;
    let mut b = [0u8; 8];
    rand::rngs::OsRng.fill_bytes(&mut b);
    format!("{prefix}-{ms:012x}{}", hex::encode(b))
}

/// A code people read aloud and type: no 0/O, 1/I; grouped by 5 with a dash.
pub fn random_code(len: usize) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut b = vec![0u8; len];
    rand::rngs::OsRng.fill_bytes(&mut b);
    let chars: Vec<char> = b
        .iter()
        .map(|x| char::from(ALPHABET[usize::from(*x) % 32]))
        .collect();
    chars
        .chunks(5)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("-")
}

/// RFC 3339 in UTC with milliseconds.
pub fn rfc3339(ms: u64) -> String {
    medchain_fhir::format_instant(ms)
}

#[derive(Debug, OpenApi)]
#[openapi(
    info(title = "MedChain API", description = "Medical records on a PBFT ledger. Errors are {\"error\":{\"code\",\"message\",\"field\"}} (field: the request field at fault, on validation errors)."),
    paths(
        session::login, session::refresh, session::change_password, session::logout, session::me,
        mfa::enroll, mfa::confirm, mfa::status, mfa::disable,
        proposals::list, proposals::propose, proposals::approve,
        erasure::request, erasure::approve,
        alerts::list, alerts::review,
        security::security_log,
        records::add_record, records::validate_block, records::get_chain, records::patients,
        records::access_status, records::break_glass, records::request_break_glass,
        break_glass_review::alerts, break_glass_review::review, break_glass_review::approve,
        patient::list_consents, patient::grant_consent, patient::revoke_consent,
        patient::create_consent_code, patient::audit, patient::break_glass_events,
        pharmacy::search, pharmacy::dispense,
        department::list_users, department::register, department::deactivate, department::activity,
        chain::head, chain::health, chain::blocks, chain::block, chain::verify,
        fhir::everything,
        metrics::prometheus, metrics::json,
    ),
    modifiers(&BearerAuth, &PublishLimits)
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

async fn openapi() -> impl IntoResponse {
    Json(ApiDoc::openapi())
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such endpoint")
}

/// Every API route and the embedded web UI, with the layers every answer goes through:
/// refusals logged, body size and time bounded, no content-type sniffing. API answers
/// (patient data among them) are never stored by a browser or a proxy; the UI's own
/// assets keep their caching (ETags, web.rs).
pub fn router(state: AppState) -> Router {
    let api = session_routes()
        .merge(record_routes())
        .merge(people_routes())
        .merge(chain_routes())
        .layer(SetResponseHeaderLayer::overriding(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ));
    api.merge(crate::web::router())
        .fallback(not_found)
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::refusal_log::record_refusals,
        ))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            REQUEST_TIMEOUT,
        ))
        .with_state(state)
}

/// Sign-in, sessions, passwords, the security log, the OpenAPI document.
fn session_routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(chain::health))
        .route("/api/openapi.json", get(openapi))
        .route("/api/login", post(session::login))
        .route("/api/token/refresh", post(session::refresh))
        .route("/api/logout", post(session::logout))
        .route("/api/me", get(session::me))
        .route("/api/password", post(session::change_password))
        .route(
            "/api/proposals",
            get(proposals::list).post(proposals::propose),
        )
        .route("/api/proposals/{id}/approve", post(proposals::approve))
        .route("/api/erasure", post(erasure::request))
        .route("/api/erasure/{request_id}/approve", post(erasure::approve))
        .route("/api/alerts", get(alerts::list))
        .route("/api/alerts/{alert_id}/review", post(alerts::review))
        .route("/api/mfa", get(mfa::status))
        .route("/api/mfa/totp/enroll", post(mfa::enroll))
        .route("/api/mfa/totp/confirm", post(mfa::confirm))
        .route("/api/mfa/totp/disable", post(mfa::disable))
        .route("/api/security_log", get(security::security_log))
}

/// Records, consent and break-glass.
fn record_routes() -> Router<AppState> {
    Router::new()
        .route("/api/add_record", post(records::add_record))
        .route("/api/validate_block", post(records::validate_block))
        .route("/api/get_chain", post(records::get_chain))
        .route("/api/patients", get(records::patients))
        .route(
            "/api/patients/{patient_id}/access",
            get(records::access_status),
        )
        .route(
            "/api/break_glass",
            post(records::break_glass).get(patient::break_glass_events),
        )
        .route(
            "/api/consents",
            get(patient::list_consents).post(patient::grant_consent),
        )
        .route("/api/consents/revoke", post(patient::revoke_consent))
        .route("/api/consent_codes", post(patient::create_consent_code))
        .route("/api/audit", get(patient::audit))
        .route("/api/break_glass/alerts", get(break_glass_review::alerts))
        .route(
            "/api/break_glass/request",
            post(records::request_break_glass),
        )
        .route(
            "/api/break_glass/approve",
            post(break_glass_review::approve),
        )
        .route(
            "/api/break_glass/{id}/review",
            post(break_glass_review::review),
        )
}

/// Pharmacies and departments.
fn people_routes() -> Router<AppState> {
    Router::new()
        .route("/api/prescriptions/search", post(pharmacy::search))
        .route(
            "/api/prescriptions/{record_id}/dispense",
            post(pharmacy::dispense),
        )
        .route(
            "/api/users",
            get(department::list_users).post(department::register),
        )
        .route(
            "/api/users/{user_id}/deactivate",
            post(department::deactivate),
        )
        .route("/api/department/activity", get(department::activity))
}

/// The chain explorer, metrics and the FHIR export.
fn chain_routes() -> Router<AppState> {
    Router::new()
        .route("/metrics", get(metrics::prometheus))
        .route("/api/metrics", get(metrics::json))
        .route("/api/chain/head", get(chain::head))
        .route("/api/chain/verify", get(chain::verify))
        .route("/api/blocks", get(chain::blocks))
        .route("/api/blocks/{height}", get(chain::block))
        .route(
            "/fhir/Patient/{patient_id}/$everything",
            get(fhir::everything),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_sort_by_creation_and_never_repeat() {
        let mut ids = Vec::new();
        for _ in 0..3 {
            ids.extend((0..100).map(|_| new_id("rec")));
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        let distinct: std::collections::HashSet<_> = ids.iter().collect();
        assert_eq!(distinct.len(), ids.len());
        for id in &ids {
            assert!(id.starts_with("rec-") && id.len() == 4 + 28, "{id}");
        }
        // Ids made milliseconds apart sort in that order.
        assert!(ids[0] < ids[100] && ids[100] < ids[200], "{ids:?}");
    }
}
