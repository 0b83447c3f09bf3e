//! `medchain bench`: measure what the ledger delivers end to end (throughput, commit
//! latency, success rate, CPU, energy, memory) on a cluster it starts itself or on one
//! already running, so that performance claims come from one repeatable command.
//!
//! The pieces: `cluster` (own four-process cluster), `http` and `consensus` (the two
//! ways of submitting a record), `catchup` (a late replica's state transfer), `driver` (closed and open loop), `recorder`
//! (histograms and the per-second series), `metrics` (Prometheus scrape of CPU and
//! energy), `report` (table and JSON) and `chart` (SVG).

mod catchup;
mod chart;
mod cluster;
mod consensus;
mod driver;
mod failure;
mod http;
mod metrics;
mod recorder;
mod report;
mod series;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use cluster::OwnCluster;
use driver::{Plan, Submitter};
use recorder::Recorder;
use report::Report;

/// Longest measured run: a benchmark is not a soak test, and every loop stays bounded.
pub const MAX_DURATION_S: u64 = 3600;
/// What a run may take beyond warm-up and duration before outstanding requests are
/// abandoned (and counted as failures).
pub const HARD_STOP_GRACE_S: u64 = 30;
/// One request may not take longer than this; it is then a failure ("timeout").
pub const REQUEST_TIMEOUT_S: u64 = 20;
/// The replicas of a cluster `bench` starts itself.
pub const OWN_REPLICAS: usize = 4;

/// How records are submitted.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Through the HTTP API as the demo doctor d001 (gateway, auth, access checks,
    /// consensus, execution).
    Http,
    /// Straight to the replicas' client ports as each organisation's operator,
    /// bypassing HTTP: the cost of consensus and execution alone.
    Consensus,
    /// Three replicas take `--behind` records (through the consensus layer, `--batch`
    /// per request) while the fourth is down; then it starts and is timed until it
    /// has caught up by state transfer. `--duration` bounds the whole run.
    #[value(name = "catch-up")]
    #[serde(rename = "catch-up")]
    CatchUp,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Http => "http",
            Mode::Consensus => "consensus",
            Mode::CatchUp => "catch-up",
        }
    }
}

#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// Measured seconds (1..=3600), after the warm-up.
    #[arg(long, value_name = "SECS", required_unless_present = "chart_from",
          value_parser = clap::value_parser!(u64).range(1..=MAX_DURATION_S))]
    pub duration: Option<u64>,
    /// Offer this many records per second in total (open loop; latency counted from each
    /// request's scheduled start). Without it: closed loop at full speed.
    #[arg(long, value_name = "N", value_parser = parse_rate)]
    pub rate: Option<f64>,
    /// Where to write the JSON results.
    #[arg(long, value_name = "FILE", required_unless_present = "chart_from")]
    pub json: Option<PathBuf>,
    /// Also draw records/s and p50/p99 latency over time as an SVG chart.
    #[arg(long, value_name = "FILE")]
    pub svg: Option<PathBuf>,
    /// Only redraw the chart of an earlier run's JSON into --svg (no cluster started).
    #[arg(long, value_name = "FILE.json", requires = "svg",
          conflicts_with_all = ["duration", "rate", "json", "target", "mode", "config", "keep"])]
    pub chart_from: Option<PathBuf>,
    /// Drive an existing cluster at these base URLs (repeat or comma-separate) instead of
    /// starting one.
    #[arg(long, value_name = "URL", value_delimiter = ',')]
    pub target: Vec<String>,
    /// `http` (default), `consensus` (client ports, bypassing HTTP) or `catch-up` (a
    /// late replica's state transfer).
    #[arg(long, value_enum, default_value_t = Mode::Http)]
    pub mode: Mode,
    /// With --target in consensus mode: the directory holding the cluster's
    /// node0.toml.. (keys, ports and data directories).
    #[arg(long, value_name = "DIR")]
    pub config: Option<PathBuf>,
    /// Concurrent closed-loop clients, spread round-robin over the replicas.
    #[arg(long, default_value_t = 64,
          value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub clients: u64,
    /// Size of one record's content in bytes (the add_record JSON, or the consensus
    /// content piece).
    #[arg(long, default_value_t = 1024,
          value_parser = clap::value_parser!(u64).range(200..=10_000))]
    pub record_bytes: u64,
    /// Open loop: most requests outstanding at once; a request that cannot start on
    /// schedule counts as a failure.
    #[arg(long, default_value_t = 4096,
          value_parser = clap::value_parser!(u64).range(1..=65_536))]
    pub max_in_flight: u64,
    /// Consensus mode, closed loop: records per signed request, as a node's gateway batches
    /// its users' transactions (1 = one signature and one request per record).
    #[arg(long, default_value_t = 1,
          value_parser = clap::value_parser!(u64).range(1..=256))]
    pub batch: u64,
    /// Seconds of load before measuring starts (not counted).
    #[arg(long, value_name = "SECS", default_value_t = 2,
          value_parser = clap::value_parser!(u64).range(0..=600))]
    pub warmup: u64,
    /// Catch-up mode: records the late replica is behind.
    #[arg(long, default_value_t = 102_400,
          value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub behind: u64,
    /// Keep the temporary cluster directory (logs, databases) and print its path.
    #[arg(long)]
    pub keep: bool,
}

fn parse_rate(s: &str) -> Result<f64, String> {
    let r: f64 = s
        .parse()
        .map_err(|_| format!("`{s}` is not a number of records per second"))?;
    if !(r.is_finite() && r > 0.0 && r <= 100_000.0) {
        return Err("must be more than 0 and at most 100000 records per second".into());
    }
    Ok(r)
}

/// Base URLs checked and normalised: plain HTTP only (no TLS in this client).
fn parse_targets(raw: &[String]) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    for t in raw.iter().map(|t| t.trim()).filter(|t| !t.is_empty()) {
        let t = t.trim_end_matches('/');
        let Some(host) = t.strip_prefix("http://") else {
            bail!("--target {t}: give a plain http:// base URL such as http://127.0.0.1:5000");
        };
        if host.is_empty() || host.contains('/') {
            bail!("--target {t}: give the base URL only (scheme, host and port)");
        }
        out.push(t.to_string());
    }
    Ok(out)
}

pub fn run(a: &BenchArgs) -> anyhow::Result<()> {
    if let Some(from) = &a.chart_from {
        let svg = a.svg.as_deref().context("--chart-from needs --svg")?;
        chart::redraw(from, svg)?;
        println!("chart of {} written to {}", from.display(), svg.display());
        return Ok(());
    }
    let (Some(duration_s), Some(json)) = (a.duration, a.json.clone()) else {
        bail!("--duration and --json are required");
    };
    let targets = parse_targets(&a.target)?;
    if a.mode == Mode::CatchUp {
        return run_catch_up(a, &targets, duration_s, &json);
    }
    let settings = Settings::from_args(a, &targets, duration_s)?;
    let report = run_load(a, &settings, &targets)?;
    write_json(&report, &json)?;
    print!("{}", report::table(&report, &json));
    if let Some(svg) = &a.svg {
        chart::draw(&report.chart_input(), svg)?;
        println!("chart written to {}", svg.display());
    }
    Ok(())
}

/// `--mode catch-up`: its own cluster, its own report.
fn run_catch_up(
    a: &BenchArgs,
    targets: &[String],
    duration_s: u64,
    json: &Path,
) -> anyhow::Result<()> {
    if !targets.is_empty() || a.rate.is_some() {
        bail!("--mode catch-up starts its own cluster, in closed loop (no --target, --rate)");
    }
    let exe = std::env::current_exe().context("locating the medchain binary")?;
    let settings = catchup::CatchUpSettings {
        records: a.behind,
        batch: a.batch,
        record_bytes: a.record_bytes,
        limit: Duration::from_secs(duration_s),
    };
    let report = catchup::run(&exe, &settings)?;
    write_json(&report, json)?;
    print!("{}", catchup::table(&report, json));
    Ok(())
}

/// Load the cluster (our own, started here and stopped after, or the `targets`) and
/// return the report with the cluster's side filled in.
fn run_load(a: &BenchArgs, settings: &Settings, targets: &[String]) -> anyhow::Result<Report> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let mut own = if targets.is_empty() {
        let exe = std::env::current_exe().context("locating the medchain binary")?;
        let c = OwnCluster::start(&exe, OWN_REPLICAS)?;
        println!(
            "cluster: {} replicas in {}",
            OWN_REPLICAS,
            c.dir().display()
        );
        Some(c)
    } else {
        None
    };
    let config_dir = own
        .as_ref()
        .map(|c| c.dir().to_path_buf())
        .or_else(|| a.config.clone());
    let urls = match &own {
        Some(c) => c.urls(),
        None => targets.to_vec(),
    };

    let outcome = rt.block_on(async {
        tokio::select! {
            r = measure(settings, own.as_ref(), &urls, config_dir.as_deref()) => r,
            sig = interrupted() => Err(anyhow::anyhow!("interrupted by {sig}; stopping")),
        }
    });
    // Requests still in the air would only meet replicas that are going away.
    rt.shutdown_timeout(Duration::from_secs(2));

    let rss = own.as_ref().map(|c| c.rss_peaks_mb());
    if let Some(c) = own.as_mut() {
        c.stop();
    }
    let kept = match own {
        Some(c) if a.keep => Some(c.keep()),
        _ => None,
    };
    if let Some(dir) = &kept {
        println!("cluster directory kept: {}", dir.display());
    }
    let mut report = outcome?;
    report.rss_peak_mb = rss.unwrap_or_default();
    report.target = if targets.is_empty() {
        format!("own {OWN_REPLICAS}-replica cluster")
    } else {
        targets.join(",")
    };
    report.cluster_dir = kept.map(|d| d.display().to_string());
    Ok(report)
}

/// The results as pretty JSON, newline-terminated.
fn write_json(report: &impl serde::Serialize, json: &Path) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(report).context("encoding the results")?;
    std::fs::write(json, text + "\n").with_context(|| format!("writing {}", json.display()))
}

/// What the run was asked to do, validated.
#[derive(Debug, Clone)]
struct Settings {
    mode: Mode,
    duration_s: u64,
    warmup_s: u64,
    clients: usize,
    rate: Option<f64>,
    max_in_flight: usize,
    record_bytes: usize,
    /// Records per request (consensus mode).
    batch: usize,
}

impl Settings {
    /// The arguments of a load run (not catch-up), checked against each other.
    fn from_args(a: &BenchArgs, targets: &[String], duration_s: u64) -> anyhow::Result<Settings> {
        if a.config.is_some() && targets.is_empty() {
            bail!("--config only goes with --target (an own cluster has its own configs)");
        }
        if a.mode == Mode::Consensus && !targets.is_empty() && a.config.is_none() {
            bail!(
                "--mode consensus with --target needs --config DIR, the directory holding the \
                 cluster's node0.toml.. (the operator keys and client ports are there)"
            );
        }
        if a.batch > 1 && (a.mode == Mode::Http || a.rate.is_some()) {
            bail!(
                "--batch goes with --mode consensus in closed loop (over HTTP the node's gateway \
                 batches by itself)"
            );
        }
        Ok(Settings {
            batch: a.batch as usize,
            mode: a.mode,
            duration_s,
            warmup_s: a.warmup,
            clients: a.clients as usize,
            rate: a.rate,
            max_in_flight: a.max_in_flight as usize,
            record_bytes: a.record_bytes as usize,
        })
    }
}

async fn interrupted() -> &'static str {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "Ctrl-C",
        _ = async {
            match term.as_mut() {
                Some(t) => { t.recv().await; }
                None => std::future::pending::<()>().await,
            }
        } => "SIGTERM",
    }
}

/// Everything between a healthy cluster and the numbers: connect, load, scrape.
async fn measure(
    s: &Settings,
    own: Option<&OwnCluster>,
    urls: &[String],
    config_dir: Option<&Path>,
) -> anyhow::Result<Report> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(REQUEST_TIMEOUT_S))
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true)
        .build()
        .context("building the HTTP client")?;
    if let Some(c) = own {
        c.wait_healthy(&http, Duration::from_secs(30)).await?;
    }
    let (submitter, first_ids) = connect(s, &http, own, urls, config_dir).await?;

    let started_at = std::time::SystemTime::now();
    let plan = plan(s, Instant::now());
    let recorder = Arc::new(Mutex::new(Recorder::new(
        plan.measure_start,
        s.duration_s as usize,
        s.batch as u64,
    )?));
    let pids = own.map(|c| c.pids()).unwrap_or_default();

    // The "before" sample is taken when measuring starts, not when the load starts, so
    // energy and CPU cover the same window as the committed records.
    let before = {
        let http = http.clone();
        let urls = urls.to_vec();
        let pids = pids.clone();
        let at = plan.measure_start;
        tokio::spawn(async move {
            tokio::time::sleep_until(at.into()).await;
            metrics::sample(&http, &urls, &pids).await
        })
    };
    let progress = driver::progress(&plan, recorder.clone());
    driver::drive(submitter, &plan, recorder.clone()).await;
    progress.finish();
    let before = before.await.unwrap_or_default();
    let after = metrics::sample(&http, urls, &pids).await;
    let usage = metrics::Usage::between(&before, &after);
    for w in &usage.warnings {
        eprintln!("warning: {w}");
    }

    let ledger_outcomes = ledger_outcomes(&first_ids);
    let rec = recorder
        .lock()
        .map_err(|_| anyhow::anyhow!("a load task panicked"))?;
    Ok(Report::build(
        s,
        &rec,
        usage,
        started_at,
        urls.len(),
        ledger_outcomes,
    ))
}

/// The submitter of the run's mode and, in consensus mode, the first request id of each
/// lane (where the ledger's outcomes of this run start).
async fn connect(
    s: &Settings,
    http: &reqwest::Client,
    own: Option<&OwnCluster>,
    urls: &[String],
    config_dir: Option<&Path>,
) -> anyhow::Result<(Submitter, Vec<(u16, u64, PathBuf)>)> {
    Ok(match s.mode {
        Mode::Http => (
            Submitter::Http(Arc::new(
                http::HttpDriver::login(http.clone(), urls, s.record_bytes).await?,
            )),
            Vec::new(),
        ),
        Mode::Consensus => {
            let dir = config_dir.context("consensus mode needs the cluster's configs")?;
            let d =
                consensus::ConsensusDriver::connect(dir, own.is_none(), s.record_bytes, s.batch)
                    .await?;
            let ids = d.first_ids();
            (Submitter::Consensus(Arc::new(d)), ids)
        }
        Mode::CatchUp => bail!("catch-up runs are measured by `catchup::run`"),
    })
}

/// Warm-up from `t0`, then the measured window, then the grace before outstanding
/// requests are abandoned.
fn plan(s: &Settings, t0: Instant) -> Plan {
    Plan {
        start: t0,
        measure_start: t0 + Duration::from_secs(s.warmup_s),
        measure_end: t0 + Duration::from_secs(s.warmup_s + s.duration_s),
        hard_stop: t0 + Duration::from_secs(s.warmup_s + s.duration_s + HARD_STOP_GRACE_S),
        clients: s.clients,
        rate: s.rate,
        max_in_flight: s.max_in_flight,
    }
}

/// How the ledger judged the run's transactions; `None` over HTTP, or (with a warning,
/// the run's numbers stand without it) when the databases cannot be read.
fn ledger_outcomes(first_ids: &[(u16, u64, PathBuf)]) -> Option<BTreeMap<String, u64>> {
    if first_ids.is_empty() {
        return None;
    }
    match consensus::ledger_outcomes(first_ids) {
        Ok(o) => Some(o),
        Err(e) => {
            eprintln!("warning: could not read the ledger's outcomes: {e:#}");
            None
        }
    }
}
