//! The measured figures a benchmark run produces, shared by the recorder that measures
//! them, the report that writes them and the chart that draws them.

use serde::{Deserialize, Serialize};

/// Latency percentiles of committed records, in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencyMs {
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
    pub mean: f64,
}

/// One measured second: records that started in it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SeriesPoint {
    pub t_s: u64,
    /// Committed so far (cumulative).
    pub committed: u64,
    /// Committed of those started in this second.
    pub records_per_s: u64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub failures: u64,
}
