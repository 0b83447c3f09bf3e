//! The results of a run in the two forms people and tools read: a summary table on stdout
//! and a JSON document whose field names are part of the external contract (DESIGN.md:
//! `throughput_rps`, `latency_ms.{p50,p95,p99}`, `success_rate`, `energy_joules`,
//! `records_per_joule`), so saved runs can be compared and charted later.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::chart::ChartInput;
use super::metrics::Usage;
use super::recorder::Recorder;
use super::series::{LatencyMs, SeriesPoint};
use super::{Mode, Settings};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    pub cpus: usize,
    pub kernel: String,
}

impl Machine {
    pub fn here() -> Machine {
        Machine {
            cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map(|s| s.trim().to_string())
                .unwrap_or_default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub mode: &'static str,
    /// "own 4-replica cluster" or the target URLs.
    pub target: String,
    pub replicas: usize,
    pub duration_s: u64,
    pub warmup_s: u64,
    pub clients: Option<usize>,
    pub offered_rate: Option<f64>,
    pub max_in_flight: Option<usize>,
    pub record_bytes: usize,
    /// Records per signed request (consensus mode's `--batch`; 1 over HTTP, where the
    /// node's gateway batches on its own).
    pub records_per_request: usize,
    pub committed: u64,
    pub failed: u64,
    pub failures_by_status: BTreeMap<String, u64>,
    pub throughput_rps: f64,
    pub latency_ms: LatencyMs,
    pub success_rate: f64,
    pub cpu_seconds: Option<f64>,
    pub cpu_source: Option<String>,
    pub energy_joules: Option<f64>,
    pub energy_source: Option<String>,
    pub records_per_joule: f64,
    pub rss_peak_mb: Vec<f64>,
    /// Consensus mode: how execution judged this run's transactions.
    pub ledger_outcomes: Option<BTreeMap<String, u64>>,
    pub series: Vec<SeriesPoint>,
    pub machine: Machine,
    pub started_at: String,
    pub started_at_unix_ms: u64,
    pub medchain_version: &'static str,
    /// Where the cluster's directory was kept (`--keep`).
    pub cluster_dir: Option<String>,
}

fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

impl Report {
    pub(super) fn build(
        s: &Settings,
        rec: &Recorder,
        usage: Usage,
        started_at: SystemTime,
        replicas: usize,
        ledger_outcomes: Option<BTreeMap<String, u64>>,
    ) -> Report {
        let sum = rec.summary();
        let attempts = sum.committed + sum.failed;
        let unix_ms = started_at
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let records_per_joule = match usage.energy_joules {
            Some(j) if j > 0.0 => round(sum.committed as f64 / j, 3),
            _ => 0.0,
        };
        Report {
            mode: s.mode.as_str(),
            target: String::new(),
            replicas,
            duration_s: s.duration_s,
            warmup_s: s.warmup_s,
            clients: s.rate.is_none().then_some(s.clients),
            offered_rate: s.rate,
            max_in_flight: s.rate.map(|_| s.max_in_flight),
            record_bytes: s.record_bytes,
            records_per_request: s.batch,
            committed: sum.committed,
            failed: sum.failed,
            failures_by_status: sum.failures_by_status,
            throughput_rps: round(sum.committed as f64 / s.duration_s.max(1) as f64, 2),
            latency_ms: sum.latency_ms,
            success_rate: if attempts == 0 {
                0.0
            } else {
                round(sum.committed as f64 / attempts as f64, 4)
            },
            cpu_seconds: usage.cpu_seconds.map(|c| round(c, 3)),
            cpu_source: usage.cpu_source,
            energy_joules: usage.energy_joules.map(|j| round(j, 3)),
            energy_source: usage.energy_source,
            records_per_joule,
            rss_peak_mb: Vec::new(),
            ledger_outcomes,
            series: sum.series,
            machine: Machine::here(),
            started_at: rfc3339(unix_ms / 1000),
            started_at_unix_ms: unix_ms,
            medchain_version: env!("CARGO_PKG_VERSION"),
            cluster_dir: None,
        }
    }

    pub fn chart_input(&self) -> ChartInput {
        ChartInput {
            mode: self.mode.to_string(),
            offered_rate: self.offered_rate,
            clients: self.clients,
            series: self.series.clone(),
        }
    }
}

/// `2024-05-01T12:34:56Z` from unix seconds (UTC), without a date library.
pub fn rfc3339(unix_s: u64) -> String {
    let days = (unix_s / 86_400) as i64;
    let secs = unix_s % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

fn opt(v: Option<f64>, unit: &str) -> String {
    v.map_or_else(|| "n/a".to_string(), |v| format!("{v:.2} {unit}"))
}

/// The summary table printed after a run.
pub fn table(r: &Report, json: &Path) -> String {
    let mut t = String::new();
    let _ = writeln!(t, "MedChain bench");
    for (k, v) in rows(r, json) {
        let _ = writeln!(t, "  {k:<18} {v}");
    }
    if let Some(o) = &r.ledger_outcomes {
        let parts: Vec<String> = o.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        let _ = writeln!(
            t,
            "  {:<18} {} (whole run, warm-up included)",
            "ledger outcomes",
            parts.join(", ")
        );
    }
    t
}

/// The table's rows, label and value, in the order printed.
fn rows(r: &Report, json: &Path) -> Vec<(&'static str, String)> {
    let l = &r.latency_ms;
    vec![
        ("mode", mode_cell(r).into()),
        ("target", r.target.clone()),
        (
            "duration",
            format!("{} s measured (+{} s warm-up)", r.duration_s, r.warmup_s),
        ),
        ("load", load_cell(r)),
        ("record size", format!("{} bytes", r.record_bytes)),
        ("committed", r.committed.to_string()),
        ("failed", format!("{}{}", r.failed, failures_cell(r))),
        ("throughput", format!("{:.2} records/s", r.throughput_rps)),
        (
            "latency",
            format!(
                "p50 {:.2} ms  p95 {:.2} ms  p99 {:.2} ms  max {:.2} ms  mean {:.2} ms",
                l.p50, l.p95, l.p99, l.max, l.mean
            ),
        ),
        ("success rate", format!("{:.2} %", r.success_rate * 100.0)),
        ("CPU time", cpu_cell(r)),
        ("energy", energy_cell(r)),
        (
            "records per joule",
            if r.energy_joules.is_some() {
                format!("{:.3}", r.records_per_joule)
            } else {
                "n/a".into()
            },
        ),
        ("peak RSS", rss_cell(r)),
        ("JSON", json.display().to_string()),
    ]
}

fn mode_cell(r: &Report) -> &'static str {
    if r.mode == Mode::Consensus.as_str() {
        "consensus (client ports, no HTTP)"
    } else {
        "http (POST /api/add_record)"
    }
}

fn load_cell(r: &Report) -> String {
    match (r.offered_rate, r.clients) {
        (Some(rate), _) => format!(
            "open loop, {rate} records/s offered (at most {} in flight)",
            r.max_in_flight.unwrap_or(0)
        ),
        (None, Some(c)) => format!("closed loop, {c} clients"),
        (None, None) => "closed loop".into(),
    }
}

/// The failures by status, after the count of failed records; empty when there were none.
fn failures_cell(r: &Report) -> String {
    if r.failures_by_status.is_empty() {
        String::new()
    } else {
        let parts: Vec<String> = r
            .failures_by_status
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        format!("  ({})", parts.join(", "))
    }
}

fn energy_cell(r: &Report) -> String {
    match (&r.energy_joules, &r.energy_source) {
        (Some(j), Some(src)) => format!("{j:.2} J ({src})"),
        (Some(j), None) => format!("{j:.2} J"),
        (None, _) => "n/a (no energy counter in /metrics)".into(),
    }
}

fn cpu_cell(r: &Report) -> String {
    match (&r.cpu_seconds, &r.cpu_source) {
        (Some(c), Some(src)) => format!("{c:.2} s ({src})"),
        (c, _) => opt(*c, "s"),
    }
}

fn rss_cell(r: &Report) -> String {
    if r.rss_peak_mb.is_empty() {
        "n/a (cluster not started by bench)".into()
    } else {
        let v: Vec<String> = r.rss_peak_mb.iter().map(|m| format!("{m:.1}")).collect();
        format!("{} MB", v.join(" / "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn dates_are_rfc3339_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_714_566_896), "2024-05-01T12:34:56Z");
    }

    fn sample_report() -> Report {
        let t0 = Instant::now();
        let mut rec = Recorder::new(t0, 2, 1).unwrap();
        rec.begin(t0);
        rec.end(t0, t0 + std::time::Duration::from_millis(12), Ok(()));
        let s = Settings {
            mode: Mode::Http,
            duration_s: 2,
            warmup_s: 0,
            clients: 8,
            rate: None,
            max_in_flight: 4096,
            record_bytes: 1024,
            batch: 1,
        };
        let usage = Usage {
            energy_joules: Some(4.0),
            energy_source: Some("cpu_time_x_watts".into()),
            cpu_seconds: Some(0.5),
            cpu_source: Some("metrics".into()),
            warnings: Vec::new(),
        };
        Report::build(&s, &rec, usage, SystemTime::now(), 4, None)
    }

    #[test]
    fn json_has_the_contract_fields() {
        let r = sample_report();
        let v = serde_json::to_value(&r).unwrap();
        for key in [
            "mode",
            "duration_s",
            "clients",
            "offered_rate",
            "record_bytes",
            "committed",
            "failed",
            "failures_by_status",
            "throughput_rps",
            "latency_ms",
            "success_rate",
            "cpu_seconds",
            "energy_joules",
            "energy_source",
            "records_per_joule",
            "rss_peak_mb",
            "series",
            "machine",
            "started_at",
            "medchain_version",
        ] {
            assert!(v.get(key).is_some(), "missing {key} in {v}");
        }
        for key in ["p50", "p95", "p99", "max", "mean"] {
            assert!(v["latency_ms"][key].is_f64(), "latency_ms.{key}");
        }
        for key in [
            "t_s",
            "committed",
            "records_per_s",
            "p50_ms",
            "p99_ms",
            "failures",
        ] {
            assert!(v["series"][0].get(key).is_some(), "series[].{key}");
        }
        assert!(v["offered_rate"].is_null());
        assert_eq!(v["committed"], 1);
        assert_eq!(v["success_rate"], 1.0);
        assert_eq!(v["throughput_rps"], 0.5);
        assert_eq!(v["records_per_joule"], 0.25);
        assert!(v["machine"]["cpus"].as_u64().is_some_and(|c| c > 0));
        // The chart can be redrawn from the saved JSON.
        let back: ChartInput = serde_json::from_value(v).unwrap();
        assert_eq!(back.series, r.series);
    }

    #[test]
    fn the_table_names_every_figure() {
        let t = table(&sample_report(), Path::new("/tmp/x.json"));
        for word in [
            "throughput",
            "p95",
            "success rate",
            "energy",
            "records per joule",
            "peak RSS",
            "closed loop, 8 clients",
        ] {
            assert!(t.contains(word), "{word} missing in\n{t}");
        }
    }
}
