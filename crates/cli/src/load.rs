//! `medchain load`: submit records through a replica's client port as its gateway, with
//! a number of concurrent requests in flight, and report what was acknowledged. Used by
//! the real-process tests and for quick measurements.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use medchain_node::client::LedgerClient;
use medchain_node::NodeFiles;
use medchain_records::{Actor, Batch, Envelope, Transaction};

#[derive(clap::Args, Debug)]
pub struct LoadArgs {
    /// Config of the replica whose gateway key and port to use.
    #[arg(long)]
    pub config: PathBuf,
    /// Requests to submit (each carries `--batch` records).
    #[arg(long, default_value_t = 1000)]
    pub records: u64,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// First request id (ids must grow from run to run of the same gateway).
    #[arg(long, default_value_t = 1)]
    pub start_id: u64,
    /// Content bytes per record.
    #[arg(long, default_value_t = 256)]
    pub payload_bytes: usize,
    /// Records per request (as a node's gateway batches them), 1 to 256.
    #[arg(long, default_value_t = 1,
          value_parser = clap::value_parser!(u16).range(1..=256))]
    pub batch: u16,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 120)]
    pub timeout_s: u64,
}

/// What was acknowledged: (request id, height of its block).
type Acked = Arc<std::sync::Mutex<Vec<(u64, u64)>>>;

pub fn run(a: &LoadArgs) -> anyhow::Result<()> {
    let files = NodeFiles::load(&a.config)?;
    // The operator's client, not the gateway's: the running node's gateway owns that
    // client's request ids.
    let operator = files.operator()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let addr = files.config.p2p_listen.parse().context("p2p_listen")?;
        let client =
            LedgerClient::connect(addr, files.id(), operator.0, operator.1, &files.genesis)
                .await
                .context("connecting to the replica's client port")?;
        // A real transaction (the operator's no-op marker) with the record's bytes as its
        // content piece: every replica stores it, and execution accepts it.
        let marker = Batch(vec![
            Envelope {
                actor: Actor::Operator,
                tx: Transaction::Marker,
            };
            usize::from(a.batch)
        ])
        .encode();
        let started = Instant::now();
        let acked: Acked = Arc::default();
        // Bounded in time: what was acknowledged by then is reported.
        let _ = tokio::time::timeout(
            std::time::Duration::from_secs(a.timeout_s),
            submit_all(a, client, marker, acked.clone()),
        )
        .await;
        let mut acked = acked.lock().map(|v| v.clone()).unwrap_or_default();
        let secs = started.elapsed().as_secs_f64();
        acked.sort_unstable();
        print_summary(a, &acked, secs);
        anyhow::Ok(())
    })
}

/// Submits `a.records` requests of `marker`, at most `a.concurrency` at a time, recording
/// each one acknowledged in `acked`.
async fn submit_all(a: &LoadArgs, client: LedgerClient, marker: Vec<u8>, acked: Acked) {
    let sem = Arc::new(tokio::sync::Semaphore::new(a.concurrency.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..a.records {
        let Ok(permit) = sem.clone().acquire_owned().await else {
            break;
        };
        let c = client.clone();
        let id = a.start_id + i;
        let content = (0..a.batch)
            .map(|j| {
                let mut c = format!("record {id}.{j} ").into_bytes();
                c.resize(a.payload_bytes.max(c.len()), b'x');
                c
            })
            .collect();
        let payload = marker.clone();
        let acked = acked.clone();
        tasks.spawn(async move {
            if let Ok(reply) = c.submit_with_content(id, payload, content).await {
                if let Ok(mut v) = acked.lock() {
                    v.push((id, reply.height));
                }
            }
            drop(permit);
        });
    }
    while tasks.join_next().await.is_some() {}
}

/// The run as one line of JSON on stdout (the real-process tests and `bench` read it).
fn print_summary(a: &LoadArgs, acked: &[(u64, u64)], secs: f64) {
    let ids: Vec<u64> = acked.iter().map(|(id, _)| *id).collect();
    println!(
        "{}",
        serde_json::json!({
            "submitted": a.records,
            "acked": acked.len(),
            "elapsed_s": secs,
            "records_per_request": a.batch,
            "records_per_s": (acked.len() * usize::from(a.batch)) as f64 / secs.max(1e-9),
            "max_height": acked.iter().map(|(_, h)| *h).max().unwrap_or(0),
            "acked_ids": ids,
        })
    );
}
