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
        with_monitor(t.prometheus_text(), &monitor_text(&s)),
    ))
}

/// OpenMetrics ends with `# EOF`: the monitor's families go before it.
fn with_monitor(text: String, monitor: &str) -> String {
    match text.strip_suffix("# EOF\n") {
        Some(head) => format!("{head}{monitor}# EOF\n"),
        None => text + monitor,
    }
}

/// The access monitor's totals per rule and per explanation (as far as it has read the
/// chain; zero until alerts are first asked for).
fn monitor_text(s: &AppState) -> String {
    use medchain_monitor::{Explanation, Rule};
    use std::fmt::Write;
    let c = s.inner.access_monitor.counters().unwrap_or_default();
    let mut out = String::new();
    out.push_str(
        "# HELP medchain_monitor_alerts_total Reads the access monitor flagged, by rule.\n",
    );
    out.push_str("# TYPE medchain_monitor_alerts_total counter\n");
    for (i, r) in Rule::ALL.iter().enumerate() {
        let _ = writeln!(
            out,
            "medchain_monitor_alerts_total{{rule=\"{}\"}} {}",
            r.name(),
            c.alerts[i]
        );
    }
    out.push_str("# HELP medchain_monitor_reads_total Audited reads the monitor read, by the ledger fact that explains them.\n");
    out.push_str("# TYPE medchain_monitor_reads_total counter\n");
    for (i, e) in Explanation::ALL.iter().enumerate() {
        let _ = writeln!(
            out,
            "medchain_monitor_reads_total{{explanation=\"{}\"}} {}",
            e.name(),
            c.explained[i]
        );
    }
    let _ = writeln!(
        out,
        "medchain_monitor_reads_total{{explanation=\"none\"}} {}",
        c.unexplained
    );
    out
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
