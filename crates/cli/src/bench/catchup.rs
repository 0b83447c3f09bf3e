//! `medchain bench --mode catch-up`: how fast a replica that is far behind catches up by
//! state transfer. Three replicas of a fresh cluster take a load the fourth never sees;
//! then the fourth starts, and the run times it from process start (and from its first
//! block) until its height reaches the others' head.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use super::cluster::OwnCluster;
use super::OWN_REPLICAS;

/// Clients the load runs with (requests in flight at once).
const LOAD_CONCURRENCY: usize = 16;
/// How often the catching-up replica's height is read.
const POLL: Duration = Duration::from_millis(20);

/// What a catch-up run was asked to do.
#[derive(Debug, Clone)]
pub struct CatchUpSettings {
    /// Records the late replica is behind.
    pub records: u64,
    /// Records per request in the load (blocks hold a few requests each).
    pub batch: u64,
    pub record_bytes: u64,
    /// The whole run (load and catch-up) must end within this.
    pub limit: Duration,
}

/// The JSON a catch-up run writes.
#[derive(Debug, serde::Serialize)]
pub struct CatchUpReport {
    pub mode: &'static str,
    pub replicas: usize,
    pub records_behind: u64,
    pub records_per_request: u64,
    pub record_bytes: u64,
    /// The head the others had when the late replica started.
    pub blocks_behind: u64,
    /// Records per second the load reached on the three replicas (for context).
    pub load_records_per_s: f64,
    /// From starting the late replica's process to its height reaching the head.
    pub seconds: f64,
    /// The height first seen on the late replica (its first write may hold many blocks).
    pub first_height_seen: u64,
    /// From that first height to the head: the transfer alone, without process start,
    /// opening the database, the first round trip and the first write.
    pub seconds_after_first_block: f64,
    pub records_per_s: f64,
    /// Records in the blocks above `first_height_seen`, over `seconds_after_first_block`
    /// (records spread evenly over the blocks, as the load makes them).
    pub records_per_s_after_first_block: f64,
}

/// Start three of four replicas, load them, start the fourth and time its catch-up.
pub fn run(exe: &Path, s: &CatchUpSettings) -> anyhow::Result<CatchUpReport> {
    let deadline = Instant::now() + s.limit;
    let late = OWN_REPLICAS - 1;
    let mut cluster = OwnCluster::start_some(exe, OWN_REPLICAS, late)?;
    println!(
        "cluster: {} of {} replicas in {}",
        late,
        OWN_REPLICAS,
        cluster.dir().display()
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .context("building the HTTP client")?;
    rt.block_on(cluster.wait_healthy(&http, Duration::from_secs(30)))?;

    let requests = s.records.div_ceil(s.batch);
    println!(
        "loading {} records ({} requests of {}) into replicas 0 to {}",
        requests * s.batch,
        requests,
        s.batch,
        late - 1
    );
    let load_rate = load(exe, cluster.dir(), requests, s, deadline)?;
    let urls = cluster.urls();
    let head = rt.block_on(settled_head(&http, &urls[..late], deadline))?;
    // Flush the load's writes first, so that the catch-up is not measured against the
    // kernel writing back the other replicas' databases.
    let _ = Command::new("sync").status();

    println!("starting replica {late}, {head} blocks behind");
    let started = Instant::now();
    cluster.start_replica(exe, late)?;
    let timing = rt.block_on(catch_up(&http, &cluster, late, head, started, deadline))?;
    rt.shutdown_timeout(Duration::from_secs(2));
    cluster.stop();
    Ok(CatchUpReport::new(
        s,
        requests * s.batch,
        head,
        load_rate,
        &timing,
    ))
}

/// When the late replica first answered with a height, and when it reached the head,
/// both counted from its process start.
#[derive(Debug)]
struct CatchUpTiming {
    first: Duration,
    first_height: u64,
    done: Duration,
}

/// The head: every running replica at the same height (the load is acknowledged by a
/// quorum, the third may still be executing the last blocks).
async fn settled_head(
    http: &reqwest::Client,
    urls: &[String],
    deadline: Instant,
) -> anyhow::Result<u64> {
    loop {
        let mut heights = Vec::new();
        for u in urls {
            heights.push(height(http, u).await.unwrap_or(0));
        }
        if heights.iter().all(|h| *h > 0 && *h == heights[0]) {
            return Ok(heights[0]);
        }
        if Instant::now() > deadline {
            bail!("the running replicas did not settle on one head: {heights:?}");
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Polls replica `late` until its height reaches `head`.
async fn catch_up(
    http: &reqwest::Client,
    cluster: &OwnCluster,
    late: usize,
    head: u64,
    started: Instant,
    deadline: Instant,
) -> anyhow::Result<CatchUpTiming> {
    let urls = cluster.urls();
    let url = &urls[late];
    let mut first = None;
    loop {
        let h = height(http, url).await.unwrap_or(0);
        if h > 0 && first.is_none() {
            first = Some((started.elapsed(), h));
        }
        if h >= head {
            let (t, h1) = first.unwrap_or_default();
            return Ok(CatchUpTiming {
                first: t,
                first_height: h1,
                done: started.elapsed(),
            });
        }
        if Instant::now() > deadline {
            bail!("replica {late} reached {h} of {head} blocks before the time limit");
        }
        if !cluster.running(late) {
            bail!("replica {late} exited while catching up");
        }
        tokio::time::sleep(POLL).await;
    }
}

impl CatchUpReport {
    fn new(
        s: &CatchUpSettings,
        records: u64,
        head: u64,
        load_rate: f64,
        t: &CatchUpTiming,
    ) -> CatchUpReport {
        let secs = t.done.as_secs_f64();
        let after_first = (t.done - t.first).as_secs_f64();
        CatchUpReport {
            mode: "catch-up",
            replicas: OWN_REPLICAS,
            records_behind: records,
            records_per_request: s.batch,
            record_bytes: s.record_bytes,
            blocks_behind: head,
            load_records_per_s: load_rate,
            seconds: secs,
            first_height_seen: t.first_height,
            seconds_after_first_block: after_first,
            records_per_s: records as f64 / secs.max(1e-9),
            // The blocks written by the first write are not in the transfer window.
            records_per_s_after_first_block: records as f64
                * (head.saturating_sub(t.first_height) as f64 / head.max(1) as f64)
                / after_first.max(1e-9),
        }
    }
}

/// `medchain load` against replica 0's client port; returns its records per second.
fn load(
    exe: &Path,
    dir: &Path,
    requests: u64,
    s: &CatchUpSettings,
    deadline: Instant,
) -> anyhow::Result<f64> {
    let timeout = deadline.saturating_duration_since(Instant::now()).as_secs();
    let out = Command::new(exe)
        .arg("load")
        .arg("--config")
        .arg(dir.join("node0.toml"))
        .args(["--records", &requests.to_string()])
        .args(["--batch", &s.batch.to_string()])
        .args(["--concurrency", &LOAD_CONCURRENCY.to_string()])
        .args(["--payload-bytes", &s.record_bytes.to_string()])
        .args(["--timeout-s", &timeout.max(1).to_string()])
        .stdin(Stdio::null())
        .output()
        .context("running medchain load")?;
    if !out.status.success() {
        bail!(
            "medchain load failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).context("reading medchain load's JSON")?;
    let acked = v["acked"].as_u64().unwrap_or(0);
    if acked != requests {
        bail!("the load acknowledged {acked} of {requests} requests before the time limit");
    }
    Ok(v["records_per_s"].as_f64().unwrap_or(0.0))
}

/// A replica's `medchain_height` from its `/metrics`; `None` while it does not answer.
async fn height(http: &reqwest::Client, url: &str) -> Option<u64> {
    let text = http
        .get(format!("{url}/metrics"))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    parse_height(&text)
}

fn parse_height(metrics: &str) -> Option<u64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("medchain_height "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|h| h as u64)
}

/// The summary printed after a run.
pub fn table(r: &CatchUpReport, json: &Path) -> String {
    format!(
        "\ncatch-up of replica {} ({} records of {} bytes, {} blocks behind)\n  \
         from process start  {:>8.2} s  {:>9.0} records/s\n  \
         after height {:<6} {:>8.2} s  {:>9.0} records/s\n  \
         (load on the other three: {:.0} records/s)\nresults written to {}\n",
        r.replicas - 1,
        r.records_behind,
        r.record_bytes,
        r.blocks_behind,
        r.seconds,
        r.records_per_s,
        r.first_height_seen,
        r.seconds_after_first_block,
        r.records_per_s_after_first_block,
        r.load_records_per_s,
        json.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_height_is_read_from_prometheus_text() {
        let text = "# HELP medchain_height Height\n# TYPE medchain_height gauge\n\
                    medchain_height_seen 9\nmedchain_height 1234\nmedchain_view 0\n";
        assert_eq!(parse_height(text), Some(1234));
        assert_eq!(parse_height("medchain_view 0\n"), None);
    }
}
