//! The replica's measured figures: Prometheus text for scrapers (no patient data, so
//! public like `/healthz`), and JSON with a recent time series for signed-in users.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use crate::error::{ApiError, ApiJson, ApiResult, ErrorBody};
use crate::extract::Session;
use crate::state::{AppState, MetricsSnapshot};

/// Prometheus text (OpenMetrics): counters, gauges and the commit-latency histogram.
#[utoipa::path(get, path = "/metrics", responses(
    (status = 200, description = "OpenMetrics text", content_type = "application/openmetrics-text"),
    (status = 404, body = ErrorBody, description = "this node publishes no metrics"),
), tag = "metrics")]
pub async fn prometheus(State(s): State<AppState>) -> ApiResult<impl IntoResponse> {
    let t = s
        .inner
        .telemetry
        .as_ref()
        .ok_or_else(|| ApiError::not_found("this node publishes no metrics"))?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        t.prometheus_text(),
    ))
}

/// This replica's totals since start, its last five minutes second by second, and the
/// status of every replica as this one hears them.
#[utoipa::path(get, path = "/api/metrics", responses(
    (status = 200, body = MetricsSnapshot),
    (status = 401, body = ErrorBody),
    (status = 404, body = ErrorBody, description = "this node publishes no metrics"),
), security(("bearer" = [])), tag = "metrics")]
pub async fn json(State(s): State<AppState>, _who: Session) -> ApiResult<ApiJson<MetricsSnapshot>> {
    let t = s
        .inner
        .telemetry
        .as_ref()
        .ok_or_else(|| ApiError::not_found("this node publishes no metrics"))?;
    Ok(ApiJson(t.snapshot()))
}
