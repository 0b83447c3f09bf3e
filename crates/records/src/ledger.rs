//! The records state machine the store runs inside each block's own SQLite transaction.
//! Every replica runs the same transactions in the same order against the same rules,
//! with the block's own timestamp as "now", so every replica ends with the same state.
//! This file is the machinery around the rules: decoding a request's batch, a savepoint
//! per transaction where a rejection could leave a write behind, and the outcome rows
//! the gateway answers its users from. The rules themselves are in `rules/`.

use medchain_store::rusqlite::{params, Connection, Transaction};
use medchain_store::{ApplyError, StateMachine};
use medchain_types::{decode, CommittedBlock, Genesis, SignedRequest};

use crate::limits::{BATCH_MAX_BYTES, BATCH_MAX_TXS, TX_MAX_BYTES};
use crate::outcome::{Outcome, Rejection};
use crate::rules::{self, Request};
use crate::tx::{Batch, Envelope, Transaction as Tx};

/// The records state machine.
#[derive(Debug)]
pub struct Ledger {
    genesis: Genesis,
    /// A block just applied erased a patient: the store is to checkpoint and truncate
    /// its WAL, whose older frames still hold the erased bytes.
    erased: bool,
}

impl Ledger {
    pub fn new(genesis: Genesis) -> Self {
        Ledger {
            genesis,
            erased: false,
        }
    }
}

/// One transaction's verdict.
type Verdict = Result<(), Rejection>;

impl StateMachine for Ledger {
    fn migrate(&mut self, conn: &Connection) -> Result<(), ApplyError> {
        crate::schema::migrate(conn, &self.genesis)
    }

    fn apply(&mut self, tx: &Transaction<'_>, block: &CommittedBlock) -> Result<(), ApplyError> {
        let erased = std::cell::Cell::new(false);
        for r in &block.requests {
            let request = Request {
                conn: tx,
                signed: r,
                now_ms: block.header.timestamp_ms,
                height: block.height(),
                n_replicas: self.genesis.n(),
                encryption_keys: &self.genesis.encryption_keys,
                policy: &self.genesis.policy,
                erased: &erased,
            };
            apply_request(&request)?;
        }
        self.erased |= erased.get();
        Ok(())
    }

    fn take_wal_truncate(&mut self) -> bool {
        std::mem::take(&mut self.erased)
    }
}

/// Execute every transaction of one request's batch and record their outcomes.
fn apply_request(r: &Request<'_>) -> Result<(), ApplyError> {
    let batch = match decode::<Batch>(&r.signed.request.payload, BATCH_MAX_BYTES) {
        Ok(Batch(envs)) if (1..=BATCH_MAX_TXS).contains(&envs.len()) => envs,
        Ok(_) => {
            let bad = Rejection::invalid("batch: 1 to 256 transactions");
            return record_outcome(r, 0, &Err(bad));
        }
        Err(_) => {
            let bad = Rejection::invalid("payload does not decode");
            return record_outcome(r, 0, &Err(bad));
        }
    };
    let mut verdicts = Vec::with_capacity(batch.len());
    for env in &batch {
        verdicts.push(apply_one(r, env)?);
    }
    if verdicts.iter().all(Result::is_ok) {
        record_all_ok(r, verdicts.len())
    } else {
        for (index, verdict) in verdicts.iter().enumerate() {
            record_outcome(r, index as i64, verdict)?;
        }
        Ok(())
    }
}

/// Execute one transaction so that nothing of it stays if it is rejected.
fn apply_one(r: &Request<'_>, env: &Envelope) -> Result<Verdict, ApplyError> {
    // Counted, not encoded again: this runs for every transaction on every replica.
    let size = borsh::object_length(env).unwrap_or(usize::MAX);
    if size > TX_MAX_BYTES {
        return Ok(Err(Rejection::invalid("transaction too large")));
    }
    if writes_only_once_accepted(&env.tx) {
        let before = r.conn.total_changes();
        let verdict = rules::execute(r, env)?;
        if verdict.is_err() && r.conn.total_changes() != before {
            // A rejection after a write would leave that write behind: a bug in
            // `writes_only_once_accepted`, and every replica would hit it alike. Stop
            // rather than commit the partial transaction.
            return Err(ApplyError::Invariant(
                "a rejected transaction wrote without a savepoint",
            ));
        }
        return Ok(verdict);
    }
    exec(r.conn, "SAVEPOINT one", [])?;
    let verdict = rules::execute(r, env)?;
    if verdict.is_err() {
        // Nothing of a rejected transaction stays but its outcome.
        exec(r.conn, "ROLLBACK TO one", [])?;
    }
    exec(r.conn, "RELEASE one", [])?;
    Ok(verdict)
}

/// Transactions whose every rejection comes before their only write, so that they need
/// no savepoint to leave nothing behind when rejected. A savepoint copies each page it
/// first touches into the statement journal (16 KiB a page, five or so per record), a
/// fifth of the writer's time when replaying records. `add_record` with a consent code
/// is not among them: it spends the code, then may still find the record id taken.
fn writes_only_once_accepted(tx: &Tx) -> bool {
    matches!(
        tx,
        Tx::Marker
            | Tx::AuditRead { .. }
            | Tx::AddRecord {
                consent_code: None,
                ..
            }
    )
}

/// Run `sql` as a cached prepared statement: the same few statements run for every
/// transaction of every block, and parsing them each time was a measurable share of the
/// writer's time.
pub(crate) fn exec(
    conn: &Connection,
    sql: &str,
    params: impl medchain_store::rusqlite::Params,
) -> medchain_store::rusqlite::Result<usize> {
    conn.prepare_cached(sql)?.execute(params)
}

/// Keep that every one of the `n` transactions of the request succeeded, in one row with
/// `idx = -n` (see `query::outcome`). Most requests succeed entirely, and one row per
/// transaction cost about an eighth of the consensus bench's throughput (a gateway's
/// batch carries up to 256).
fn record_all_ok(r: &Request<'_>, n: usize) -> Result<(), ApplyError> {
    record_outcome(r, -(n as i64), &Ok(()))
}

/// Keep what became of transaction `index` of the request for the gateway's answer
/// (`index = -n`: all n transactions, see `record_all_ok`).
fn record_outcome(r: &Request<'_>, index: i64, verdict: &Verdict) -> Result<(), ApplyError> {
    let (outcome, message) = match verdict {
        Ok(()) => (Outcome::Ok, ""),
        Err(rej) => (rej.outcome, rej.message.as_str()),
    };
    let SignedRequest { request, .. } = r.signed;
    exec(
        r.conn,
        "INSERT OR REPLACE INTO outcomes (client, request_id, idx, height, outcome, message)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            request.client.0,
            request.request_id as i64,
            index,
            r.height as i64,
            outcome.as_str(),
            message
        ],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use medchain_store::rusqlite::Connection;
    use medchain_types::genesis::{GenesisUser, UserRole};
    use medchain_types::{
        BlockHeader, ClientId, CommitCertificate, Hash32, KeyPair, Proposal, ReplicaId, Request,
    };

    use super::*;

    fn genesis() -> Genesis {
        Genesis {
            format_version: medchain_types::codec::FORMAT_VERSION,
            chain_id: "ledger-test".into(),
            replicas: vec![medchain_types::ReplicaInfo {
                id: ReplicaId(0),
                organisation: "Org 0".into(),
                public_key: KeyPair::for_test("ledger-test-replica").public(),
                peer_addr: String::new(),
                http_addr: String::new(),
            }],
            clients: Vec::new(),
            users: vec![GenesisUser {
                user_id: "d1".into(),
                role: UserRole::Doctor,
                organisation: ReplicaId(0),
                department: "cardiology".into(),
                display_name: "d1".into(),
            }],
            consents: Vec::new(),
            policy: Default::default(),
            encryption_keys: Vec::new(),
        }
    }

    fn block_of(env: &Envelope) -> CommittedBlock {
        let request = Request {
            client: ClientId(0),
            request_id: 1,
            payload: Batch::one(env),
            content_hashes: Vec::new(),
        }
        .sign(&KeyPair::for_test("ledger-test-gateway"));
        let proposal = Proposal {
            height: 1,
            view: 0,
            proposer: ReplicaId(0),
            timestamp_ms: 1_000,
            requests: vec![request],
        };
        let header = proposal.header();
        CommittedBlock {
            header: BlockHeader::new(&header, Hash32::default()),
            requests: proposal.requests,
            certificate: CommitCertificate {
                view: 0,
                height: 1,
                proposal_digest: header.digest(),
                signatures: Vec::new(),
            },
        }
    }

    /// A replica that cannot read its own state stops instead of recording a verdict
    /// that a healthy replica would not record (the determinism bug of the first round
    /// turned a failed read into an `invalid` outcome).
    #[test]
    fn a_state_read_that_fails_stops_the_replica_instead_of_recording_a_verdict() {
        let mut conn = Connection::open_in_memory().expect("db");
        let mut ledger = Ledger::new(genesis());
        ledger.migrate(&conn).expect("migrate");
        // A row this binary never writes: the role is unreadable.
        conn.execute("UPDATE users SET role = 'nurse' WHERE user_id = 'd1'", [])
            .expect("corrupt the row");
        let env = Envelope {
            actor: crate::tx::Actor::User("d1".into()),
            tx: Tx::Marker,
        };
        let tx = conn.transaction().expect("tx");
        let result = ledger.apply(&tx, &block_of(&env));
        assert!(
            matches!(result, Err(ApplyError::Sqlite(_))),
            "got {result:?}"
        );
        let outcomes: i64 = tx
            .query_row("SELECT COUNT(*) FROM outcomes", [], |r| r.get(0))
            .expect("count");
        assert_eq!(outcomes, 0, "no verdict was recorded");
    }
}
