//! Where every answered request is counted: latency histograms (HdrHistogram, so the
//! percentiles are exact to three digits without keeping every sample), failures by
//! cause, and one bucket per measured second for the time series. Requests are bucketed
//! by the second they started (or were scheduled to start), which is what an open-loop
//! run controls.

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::Context;
use hdrhistogram::Histogram;

use super::failure::Failure;
use super::series::{LatencyMs, SeriesPoint};

/// Highest latency tracked exactly (µs); anything slower is recorded as this. Requests
/// time out well before it.
const MAX_TRACKED_US: u64 = 120_000_000;

#[derive(Debug)]
struct Second {
    committed: u64,
    failures: u64,
    /// Two significant digits: enough for a chart, and small for an hour of seconds.
    latency: Histogram<u32>,
}

#[derive(Debug)]
pub struct Recorder {
    measure_start: Instant,
    latency: Histogram<u64>,
    committed: u64,
    failed: u64,
    failures: BTreeMap<String, u64>,
    /// Measured requests begun and answered; the difference at the end was abandoned.
    started: u64,
    answered: u64,
    seconds: Vec<Second>,
    /// Records each request carries: counts are in records, latencies weighted by them.
    per_request: u64,
}

/// What the recorder saw, ready for the report.
#[derive(Debug, Clone)]
pub struct Summary {
    pub committed: u64,
    pub failed: u64,
    pub failures_by_status: BTreeMap<String, u64>,
    pub latency_ms: LatencyMs,
    pub series: Vec<SeriesPoint>,
}

fn ms(us: u64) -> f64 {
    (us as f64 / 10.0).round() / 100.0
}

impl Recorder {
    pub fn new(
        measure_start: Instant,
        duration_s: usize,
        per_request: u64,
    ) -> anyhow::Result<Recorder> {
        let seconds = (0..duration_s)
            .map(|_| {
                Ok(Second {
                    committed: 0,
                    failures: 0,
                    latency: Histogram::new_with_bounds(1, MAX_TRACKED_US, 2)?,
                })
            })
            .collect::<Result<Vec<_>, hdrhistogram::CreationError>>()
            .context("creating the latency histograms")?;
        Ok(Recorder {
            measure_start,
            latency: Histogram::new_with_bounds(1, MAX_TRACKED_US, 3)
                .context("creating the latency histogram")?,
            committed: 0,
            failed: 0,
            failures: BTreeMap::new(),
            started: 0,
            answered: 0,
            seconds,
            per_request: per_request.max(1),
        })
    }

    /// The measured second a request started in; `None` for warm-up (or past the end).
    fn slot(&self, started: Instant) -> Option<usize> {
        let i = started
            .checked_duration_since(self.measure_start)?
            .as_secs() as usize;
        (i < self.seconds.len()).then_some(i)
    }

    pub fn begin(&mut self, started: Instant) {
        if self.slot(started).is_some() {
            self.started += 1;
        }
    }

    pub fn end(&mut self, started: Instant, answered: Instant, result: Result<(), Failure>) {
        let Some(i) = self.slot(started) else {
            return;
        };
        self.answered += 1;
        match result {
            Ok(()) => {
                let us = answered.saturating_duration_since(started).as_micros() as u64;
                let k = self.per_request;
                self.committed += k;
                let _ = self.latency.record_n(us.clamp(1, MAX_TRACKED_US), k);
                self.seconds[i].committed += k;
                let _ = self.seconds[i]
                    .latency
                    .record_n(us.clamp(1, MAX_TRACKED_US), k as u32);
            }
            Err(f) => self.fail(i, f.key(), self.per_request),
        }
    }

    /// An open-loop request whose start time came while too many were outstanding.
    pub fn not_started(&mut self, scheduled: Instant) {
        if let Some(i) = self.slot(scheduled) {
            self.fail(i, Failure::Other("not_started").key(), 1);
        }
    }

    fn fail(&mut self, second: usize, key: String, n: u64) {
        self.failed += n;
        *self.failures.entry(key).or_insert(0) += n;
        if let Some(s) = self.seconds.get_mut(second) {
            s.failures += n;
        }
    }

    /// Count what was still outstanding at the hard stop as failed.
    pub fn finish(&mut self) {
        let unfinished = self.started.saturating_sub(self.answered);
        if unfinished > 0 {
            let last = self.seconds.len().saturating_sub(1);
            self.fail(last, "unfinished".into(), unfinished * self.per_request);
            self.answered = self.started;
        }
    }

    pub fn committed(&self) -> u64 {
        self.committed
    }

    pub fn failed(&self) -> u64 {
        self.failed
    }

    pub fn summary(&self) -> Summary {
        let h = &self.latency;
        let latency_ms = if h.is_empty() {
            LatencyMs::default()
        } else {
            LatencyMs {
                p50: ms(h.value_at_quantile(0.50)),
                p95: ms(h.value_at_quantile(0.95)),
                p99: ms(h.value_at_quantile(0.99)),
                max: ms(h.max()),
                mean: (h.mean() / 10.0).round() / 100.0,
            }
        };
        let mut cumulative = 0;
        let series = self
            .seconds
            .iter()
            .enumerate()
            .map(|(t, s)| {
                cumulative += s.committed;
                let q =
                    |q: f64| (!s.latency.is_empty()).then(|| ms(s.latency.value_at_quantile(q)));
                SeriesPoint {
                    t_s: t as u64,
                    committed: cumulative,
                    records_per_s: s.committed,
                    p50_ms: q(0.50),
                    p99_ms: q(0.99),
                    failures: s.failures,
                }
            })
            .collect();
        Summary {
            committed: self.committed,
            failed: self.failed,
            failures_by_status: self.failures.clone(),
            latency_ms,
            series,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn warm_up_is_not_counted_and_percentiles_are_ordered() {
        let t0 = Instant::now();
        let start = t0 + Duration::from_secs(2);
        let mut r = Recorder::new(start, 3, 1).unwrap();
        // Warm-up.
        r.begin(t0);
        r.end(t0, t0 + Duration::from_millis(5), Ok(()));
        // Second 0: 100 records of 1..=100 ms; second 2: two failures.
        for i in 1..=100u64 {
            let s = start + Duration::from_millis(i);
            r.begin(s);
            r.end(s, s + Duration::from_millis(i), Ok(()));
        }
        let s2 = start + Duration::from_millis(2_500);
        r.begin(s2);
        r.end(s2, s2, Err(Failure::Status(500)));
        r.not_started(s2);
        r.begin(s2); // never answered
        r.finish();
        let sum = r.summary();
        assert_eq!(sum.committed, 100);
        assert_eq!(sum.failed, 3);
        assert_eq!(sum.failures_by_status["500"], 1);
        assert_eq!(sum.failures_by_status["not_started"], 1);
        assert_eq!(sum.failures_by_status["unfinished"], 1);
        let l = &sum.latency_ms;
        assert!((49.9..=50.1).contains(&l.p50), "{l:?}");
        assert!(l.p50 <= l.p95 && l.p95 <= l.p99 && l.p99 <= l.max, "{l:?}");
        assert!((l.max - 100.0).abs() < 0.2, "{l:?}");
        assert_eq!(sum.series.len(), 3);
        assert_eq!(sum.series[0].records_per_s, 100);
        assert_eq!(sum.series[1].p50_ms, None);
        assert_eq!(sum.series[2].committed, 100);
        assert_eq!(sum.series[2].failures, 3);
    }
}
