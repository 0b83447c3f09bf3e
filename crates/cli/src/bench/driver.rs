//! The load generator, the same for both ways of submitting: a closed loop (each client
//! sends its next record as soon as the previous one is answered) measures capacity; an
//! open loop (records started on a fixed schedule whatever happens) measures latency at
//! a given load, counted from each record's scheduled start so that time spent queueing
//! behind a slow system is not hidden (coordinated omission).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use super::consensus::ConsensusDriver;
use super::failure::Failure;
use super::http::HttpDriver;
use super::recorder::Recorder;

/// One way of submitting a record, to one of several lanes (replicas).
#[derive(Debug, Clone)]
pub enum Submitter {
    Http(Arc<HttpDriver>),
    Consensus(Arc<ConsensusDriver>),
}

impl Submitter {
    fn lanes(&self) -> usize {
        match self {
            Submitter::Http(d) => d.lanes(),
            Submitter::Consensus(d) => d.lanes(),
        }
        .max(1)
    }

    async fn submit(&self, lane: usize, seq: u64) -> Result<(), Failure> {
        match self {
            Submitter::Http(d) => d.submit(lane, seq).await,
            Submitter::Consensus(d) => d.submit(lane, seq).await,
        }
    }
}

/// When things happen in a run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Load starts (warm-up begins).
    pub start: Instant,
    /// Requests started from here on are measured.
    pub measure_start: Instant,
    /// No request starts from here on.
    pub measure_end: Instant,
    /// Requests still outstanding here are abandoned and counted as failures.
    pub hard_stop: Instant,
    pub clients: usize,
    /// Records per second offered in total; `None`: closed loop.
    pub rate: Option<f64>,
    pub max_in_flight: usize,
}

/// A poisoned lock only means a load task panicked; its counts are still good.
pub fn lock(r: &Mutex<Recorder>) -> MutexGuard<'_, Recorder> {
    r.lock().unwrap_or_else(|e| e.into_inner())
}

/// Run the load as planned; returns at the latest at `plan.hard_stop`.
pub async fn drive(sub: Submitter, plan: &Plan, rec: Arc<Mutex<Recorder>>) {
    let work = async {
        match plan.rate {
            None => closed_loop(&sub, plan, &rec).await,
            Some(rate) => open_loop(&sub, plan, rate, &rec).await,
        }
    };
    // Dropping the unfinished work aborts its tasks (JoinSet); `finish` counts them.
    let _ = tokio::time::timeout_at(plan.hard_stop.into(), work).await;
    lock(&rec).finish();
}

/// After a failure without an answer (a refused connection fails at once) a client
/// waits this long, so that a dead replica costs a bounded number of attempts.
const BACKOFF_AFTER_TRANSPORT_FAILURE: Duration = Duration::from_millis(10);

async fn closed_loop(sub: &Submitter, plan: &Plan, rec: &Arc<Mutex<Recorder>>) {
    let seq = Arc::new(AtomicU64::new(0));
    let lanes = sub.lanes();
    let mut workers = JoinSet::new();
    for w in 0..plan.clients {
        let (sub, rec, seq, end) = (sub.clone(), rec.clone(), seq.clone(), plan.measure_end);
        workers.spawn(async move {
            loop {
                let started = Instant::now();
                if started >= end {
                    break;
                }
                let n = seq.fetch_add(1, Ordering::Relaxed);
                lock(&rec).begin(started);
                let r = sub.submit(w % lanes, n).await;
                lock(&rec).end(started, Instant::now(), r);
                if let Err(Failure::Other(_)) = r {
                    tokio::time::sleep(BACKOFF_AFTER_TRANSPORT_FAILURE).await;
                }
            }
        });
    }
    while workers.join_next().await.is_some() {}
}

async fn open_loop(sub: &Submitter, plan: &Plan, rate: f64, rec: &Arc<Mutex<Recorder>>) {
    let lanes = sub.lanes() as u64;
    let in_flight = Arc::new(tokio::sync::Semaphore::new(plan.max_in_flight));
    let mut tasks = JoinSet::new();
    for k in 0u64.. {
        let scheduled = plan.start + Duration::from_secs_f64(k as f64 / rate);
        if scheduled >= plan.measure_end {
            break;
        }
        tokio::time::sleep_until(scheduled.into()).await;
        while tasks.try_join_next().is_some() {}
        let Ok(permit) = in_flight.clone().try_acquire_owned() else {
            lock(rec).not_started(scheduled);
            continue;
        };
        lock(rec).begin(scheduled);
        let (sub, rec) = (sub.clone(), rec.clone());
        tasks.spawn(async move {
            let r = sub.submit((k % lanes) as usize, k).await;
            lock(&rec).end(scheduled, Instant::now(), r);
            drop(permit);
        });
    }
    while tasks.join_next().await.is_some() {}
}

/// The progress bar (drawn on stderr when it is a terminal): elapsed time, records
/// committed so far and the rate over the last second.
#[derive(Debug)]
pub struct Progress {
    bar: indicatif::ProgressBar,
    ticker: tokio::task::AbortHandle,
}

impl Progress {
    pub fn finish(self) {}
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.ticker.abort();
        self.bar.finish_and_clear();
    }
}

pub fn progress(plan: &Plan, rec: Arc<Mutex<Recorder>>) -> Progress {
    let total_ms = plan.measure_end.duration_since(plan.start).as_millis() as u64;
    let bar = indicatif::ProgressBar::new(total_ms);
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("[{elapsed_precise}] {bar:30} {percent:>3}% {msg}")
    {
        bar.set_style(style);
    }
    let (b, plan) = (bar.clone(), plan.clone());
    let ticker = tokio::spawn(async move {
        let mut window: VecDeque<(Instant, u64)> = VecDeque::new();
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        loop {
            tick.tick().await;
            let now = Instant::now();
            b.set_position((now.duration_since(plan.start).as_millis() as u64).min(total_ms));
            if now < plan.measure_start {
                b.set_message("warm-up (not counted)");
                continue;
            }
            let (committed, failed) = {
                let r = lock(&rec);
                (r.committed(), r.failed())
            };
            window.push_back((now, committed));
            while window.len() > 1 && now.duration_since(window[0].0) > Duration::from_secs(1) {
                window.pop_front();
            }
            let (t0, c0) = window[0];
            let dt = now.duration_since(t0).as_secs_f64();
            let rate = if dt > 0.0 {
                committed.saturating_sub(c0) as f64 / dt
            } else {
                0.0
            };
            let phase = if now >= plan.measure_end {
                "draining, "
            } else {
                ""
            };
            b.set_message(format!(
                "{phase}{committed} committed, {rate:.0} records/s, {failed} failed"
            ));
        }
    })
    .abort_handle();
    Progress { bar, ticker }
}
