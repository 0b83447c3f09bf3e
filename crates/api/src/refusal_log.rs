//! The middleware that writes every 403 and 429 answer of the API to the node's
//! security log. Apart from the log itself so that the log does not depend on the state
//! that holds it.

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;

use crate::error::ErrorCode;
use crate::security_log::{client_addr, SecurityEvent, SecurityEventKind, Subject};
use crate::state::AppState;

/// Middleware: every 403 and 429 answer goes to the security log, with its path, the
/// user if an extractor identified one, the client address and the error code.
pub async fn record_refusals(State(s): State<AppState>, mut req: Request, next: Next) -> Response {
    let subject = Subject::default();
    req.extensions_mut().insert(subject.clone());
    let path = req.uri().path().to_string();
    let addr = client_addr(req.extensions());
    let resp = next.run(req).await;
    let kind = match resp.status() {
        StatusCode::FORBIDDEN => SecurityEventKind::Forbidden,
        StatusCode::TOO_MANY_REQUESTS => SecurityEventKind::Throttled,
        _ => return resp,
    };
    let mut event = SecurityEvent::new(kind, s.now_ms())
        .user(subject.get().as_deref())
        .addr(addr)
        .path(&path)
        .status(resp.status());
    if let Some(ErrorCode(code)) = resp.extensions().get::<ErrorCode>() {
        event = event.detail(code);
    }
    s.inner.security.record(event);
    resp
}
