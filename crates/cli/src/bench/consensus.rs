//! Records straight to the replicas' client ports, bypassing HTTP, to separate the cost
//! of consensus and execution from the gateway's. Each replica's organisation operator
//! submits real ledger transactions (`Marker` by `Actor::Operator`, which execution
//! accepts from an operator key) with a content piece of the record's size, so every
//! replica still signs, orders, stores and executes them. With `--batch N` each request
//! carries N such records, as a node's gateway batches its users' transactions.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{bail, Context};
use medchain_node::client::LedgerClient;
use medchain_node::NodeFiles;
use medchain_records::{Actor, Batch, Envelope, Transaction};
use medchain_store::rusqlite::params;

use super::failure::Failure;

/// One replica's operator client and the next request id it may use.
#[derive(Debug)]
struct Lane {
    client: LedgerClient,
    client_id: u16,
    db: PathBuf,
    first_id: u64,
    next_id: AtomicU64,
}

#[derive(Debug)]
pub struct ConsensusDriver {
    lanes: Vec<Lane>,
    payload: Vec<u8>,
    record_bytes: usize,
    batch: usize,
}

/// `DIR/node0.toml`, `DIR/node1.toml`, ... as far as they go.
fn configs(dir: &Path) -> Vec<PathBuf> {
    (0..)
        .map(|i| dir.join(format!("node{i}.toml")))
        .take_while(|p| p.exists())
        .collect()
}

/// The highest request id of `client` any replica has executed (0 if none). The PBFT
/// client table accepts ids only in a window above the executed prefix, so a second run
/// must continue just above the first rather than jump far ahead.
fn last_executed_id(dbs: &[PathBuf], client: u16) -> anyhow::Result<u64> {
    let mut max = 0;
    for db in dbs {
        let r = medchain_store::Reader::open(db)
            .with_context(|| format!("opening {} read-only", db.display()))?;
        let id: Option<i64> = r
            .connection()
            .query_row(
                "SELECT MAX(request_id) FROM outcomes WHERE client = ?1",
                params![client],
                |row| row.get(0),
            )
            .with_context(|| format!("reading executed requests in {}", db.display()))?;
        max = max.max(id.unwrap_or(0).max(0) as u64);
    }
    Ok(max)
}

impl ConsensusDriver {
    /// Connect as each replica's operator. On a cluster that existed before this run
    /// (`existing`), request ids continue above the ones already executed.
    pub async fn connect(
        dir: &Path,
        existing: bool,
        record_bytes: usize,
        batch: usize,
    ) -> anyhow::Result<ConsensusDriver> {
        let paths = configs(dir);
        if paths.is_empty() {
            bail!("no node0.toml in {}", dir.display());
        }
        let files = paths
            .iter()
            .map(|p| NodeFiles::load(p).with_context(|| format!("loading {}", p.display())))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let dbs: Vec<PathBuf> = files.iter().map(NodeFiles::db_path).collect();
        let mut lanes = Vec::new();
        for f in &files {
            let (client_id, key) = f.operator().with_context(|| {
                format!(
                    "replica {}: consensus mode submits as its operator",
                    f.id().0
                )
            })?;
            let first_id = if existing {
                last_executed_id(&dbs, client_id.0)? + 1
            } else {
                1
            };
            let addr = f
                .config
                .p2p_listen
                .parse()
                .with_context(|| format!("p2p_listen of replica {}", f.id().0))?;
            let client = tokio::time::timeout(
                Duration::from_secs(10),
                LedgerClient::connect(addr, f.id(), client_id, key, &f.genesis),
            )
            .await
            .map_err(|_| anyhow::anyhow!("timed out"))
            .and_then(|r| r.map_err(anyhow::Error::from))
            .with_context(|| format!("connecting to replica {}'s client port {addr}", f.id().0))?;
            lanes.push(Lane {
                client,
                client_id: client_id.0,
                db: f.db_path(),
                first_id,
                next_id: AtomicU64::new(first_id),
            });
        }
        let marker = Envelope {
            actor: Actor::Operator,
            tx: Transaction::Marker,
        };
        let batch = batch.max(1);
        let payload = Batch(vec![marker; batch]).encode();
        Ok(ConsensusDriver {
            lanes,
            payload,
            record_bytes,
            batch,
        })
    }

    pub fn lanes(&self) -> usize {
        self.lanes.len()
    }

    /// (client, first request id, database of the replica it talks to) per lane.
    pub fn first_ids(&self) -> Vec<(u16, u64, PathBuf)> {
        self.lanes
            .iter()
            .map(|l| (l.client_id, l.first_id, l.db.clone()))
            .collect()
    }

    pub async fn submit(&self, lane: usize, seq: u64) -> Result<(), Failure> {
        let l = &self.lanes[lane % self.lanes.len()];
        let id = l.next_id.fetch_add(1, Ordering::Relaxed);
        let content = (0..self.batch)
            .map(|j| {
                let mut c = format!("benchmark record {seq}.{j} request {id}; ").into_bytes();
                c.resize(self.record_bytes.max(c.len()), b'x');
                c
            })
            .collect();
        let r = tokio::time::timeout(
            Duration::from_secs(super::REQUEST_TIMEOUT_S),
            l.client
                .submit_with_content(id, self.payload.clone(), content),
        )
        .await;
        match r {
            Ok(Ok(_reply)) => Ok(()),
            Ok(Err(_)) => Err(Failure::Other("disconnected")),
            Err(_) => Err(Failure::Other("timeout")),
        }
    }
}

/// How execution judged this run's requests ("ok", "forbidden", ...), counted on the
/// replica each client talked to: the reply to a client says "committed", not "accepted".
pub fn ledger_outcomes(lanes: &[(u16, u64, PathBuf)]) -> anyhow::Result<BTreeMap<String, u64>> {
    let mut out = BTreeMap::new();
    for (client, first, db) in lanes {
        let r = medchain_store::Reader::open(db)
            .with_context(|| format!("opening {} read-only", db.display()))?;
        let mut stmt = r.connection().prepare(
            // A request whose n transactions all succeeded has one row with idx = -n.
            "SELECT outcome, SUM(CASE WHEN idx < 0 THEN -idx ELSE 1 END) FROM outcomes
             WHERE client = ?1 AND request_id >= ?2 GROUP BY outcome",
        )?;
        let rows = stmt.query_map(params![client, *first as i64], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
        })?;
        for row in rows {
            let (outcome, n) = row?;
            *out.entry(outcome).or_insert(0) += n.max(0) as u64;
        }
    }
    Ok(out)
}
