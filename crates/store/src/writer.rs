//! The single writer: a thread that owns the write connection, takes operations from a
//! bounded channel, and commits everything queued in one transaction (group commit)
//! before acknowledging any of it.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::thread::JoinHandle;

use medchain_pbft::DurableRecord;
use medchain_types::{encode, CommittedBlock, Hash32, Proposal, SeqNum, SignedRequest};
use rusqlite::{params, Connection, Transaction};

use crate::{schema, StoreError};

/// Most operations waiting for the writer; senders block beyond it (back-pressure).
const QUEUE_BOUND: usize = 4096;
/// Most operations in one transaction.
const MAX_GROUP: usize = 1024;

/// One durable change.
#[derive(Debug)]
pub enum WriteOp {
    /// PBFT vote state.
    Vote(DurableRecord),
    /// The next block.
    Block(CommittedBlock),
}

type Ack = SyncSender<Result<(), String>>;

/// Why an application could not execute a block. Every one of these stops the replica:
/// a rule saying no is a recorded outcome, never an error, so an error here means that
/// this replica cannot compute the verdict every other replica computes.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A state the application's own logic rules out (a bug, identical on every replica).
    #[error("invariant broken: {0}")]
    Invariant(&'static str),
    /// The database holds state this binary cannot continue from.
    #[error("{0}")]
    Unsupported(&'static str),
}

/// The application whose state changes commit in the same transaction as the block that
/// causes them (so a crash never leaves state and chain disagreeing).
pub trait StateMachine: Send + 'static {
    /// Create or upgrade the application's tables.
    fn migrate(&mut self, conn: &Connection) -> Result<(), ApplyError>;
    /// Execute `block` inside `tx`. Must be deterministic, and must turn a bad
    /// transaction into a recorded rejection rather than an error: an error here aborts
    /// the write and stops the replica.
    fn apply(&mut self, tx: &Transaction<'_>, block: &CommittedBlock) -> Result<(), ApplyError>;
    /// Whether the blocks applied since the last call deleted data that must not
    /// survive in the WAL's older frames (an erasure): the writer then checkpoints and
    /// truncates the WAL once they are committed.
    fn take_wal_truncate(&mut self) -> bool {
        false
    }
}

/// No application: the chain alone (tools and tests of the store itself).
#[derive(Debug, Default)]
pub struct NoState;

impl StateMachine for NoState {
    fn migrate(&mut self, _: &Connection) -> Result<(), ApplyError> {
        Ok(())
    }
    fn apply(&mut self, _: &Transaction<'_>, _: &CommittedBlock) -> Result<(), ApplyError> {
        Ok(())
    }
}

enum Msg {
    Write(Vec<WriteOp>, Ack),
    Stop,
}

/// Handle to a replica's database.
#[derive(Debug)]
pub struct Store {
    path: PathBuf,
    tx: SyncSender<Msg>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Msg")
    }
}

/// Bytes written between background checkpoints.
const CHECKPOINT_EVERY_BYTES: usize = 16 << 20;
/// WAL size at which the writer checkpoints by itself (SQLite's default is 1000 pages).
/// Only a backstop: the checkpointer thread normally copies the pages long before, and
/// the WAL only restarts from its beginning once every page is copied, which under a
/// steady stream of commits the writer's own checkpoint guarantees. It bounds the WAL
/// file at about this size.
const WAL_BACKSTOP_BYTES: i64 = 64 << 20;
/// Page size of a new database (SQLite's default is 4 KiB). Each page goes to the WAL as
/// its own frame, two unaligned `pwrite`s, so bulk writes of 1 KB records cost four
/// times the system calls with 4 KiB pages: a replica catching up 100,000 records
/// wrote 110,000 times and took 1.8 to 3.0 s, against 1.5 to 1.9 s with 16 KiB. Small
/// commits write a few more bytes per touched page (single-client latency about 1 ms
/// more in the same comparison, within run-to-run noise); BENCHMARKS.md has the runs.
const PAGE_SIZE: i64 = 16 << 10;
/// Prepared statements the writer keeps.
const WRITER_STATEMENTS: usize = 128;
/// The writer's page cache in KiB (SQLite's default is 2 MiB).
const WRITER_CACHE_KIB: i64 = 8 * 1024;

fn open_writer(path: &Path) -> Result<Connection, StoreError> {
    let mut conn = Connection::open(path)?;
    // Only a new, empty database takes this; an existing one keeps the page size it was
    // created with (changing it would need a VACUUM outside WAL mode).
    conn.pragma_update(None, "page_size", PAGE_SIZE)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    // A bigger WAL between checkpoints: a page rewritten by many blocks (the chain's tail,
    // the vote rows, index roots) is copied into the database once per checkpoint, not
    // once per thousand pages of log. The copying itself happens on the checkpointer's
    // thread (see `checkpointer`). And a page cache that holds the upper levels of the
    // content and state indexes, whose inserts land on random pages.
    let page_size: i64 = conn.pragma_query_value(None, "page_size", |r| r.get(0))?;
    conn.pragma_update(
        None,
        "wal_autocheckpoint",
        WAL_BACKSTOP_BYTES / page_size.max(512),
    )?;
    conn.pragma_update(None, "cache_size", -WRITER_CACHE_KIB)?;
    // Each ledger transaction runs inside a savepoint (a rejected one leaves only its
    // outcome), and a savepoint copies every page it first touches into a statement
    // journal: a temporary file by default, a write system call per page per
    // transaction. In memory it is a copy.
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    // Deleted rows (erased content and keys, replaced outcomes) are overwritten with
    // zeros, not left in free pages for anyone reading the file.
    conn.pragma_update(None, "secure_delete", "ON")?;
    // Every statement the writer and the ledger run stays prepared (rusqlite keeps 16
    // by default, fewer than the execution path cycles through).
    conn.set_prepared_statement_cache_capacity(WRITER_STATEMENTS);
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    schema::migrate(&mut conn)?;
    Ok(conn)
}

impl Store {
    /// Open (creating and migrating if needed) the database at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_with(path, Box::new(NoState))
    }

    /// Open with an application executed in each block's transaction.
    pub fn open_with(path: &Path, mut app: Box<dyn StateMachine>) -> Result<Self, StoreError> {
        let conn = open_writer(path)?;
        app.migrate(&conn)?;
        let checkpoints = start_checkpointer(path)?;
        let (tx, rx) = sync_channel(QUEUE_BOUND);
        let thread = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || writer_loop(conn, rx, app, checkpoints))
            .map_err(|_| StoreError::WriterGone)?;
        Ok(Store {
            path: path.to_path_buf(),
            tx,
            thread: Some(thread),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Write `ops` in one transaction (possibly grouped with others) and return once it
    /// is durable.
    pub fn write(&self, ops: Vec<WriteOp>) -> Result<(), StoreError> {
        if ops.is_empty() {
            return Ok(());
        }
        let (ack_tx, ack_rx) = sync_channel(1);
        self.tx
            .send(Msg::Write(ops, ack_tx))
            .map_err(|_| StoreError::WriterGone)?;
        match ack_rx.recv() {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(StoreError::WriteFailed(e)),
            Err(_) => Err(StoreError::WriterGone),
        }
    }

    /// A new reader on the same file.
    pub fn reader(&self) -> Result<crate::Reader, StoreError> {
        crate::Reader::open(&self.path)
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        let _ = self.tx.send(Msg::Stop);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Start the checkpointer: a thread with its own connection that copies committed WAL
/// pages into the database file whenever the writer says enough were written. The copy
/// and its fsync of the database file used to happen inside whichever commit crossed
/// the threshold, stalling the writer (and every vote and reply waiting on it) for
/// tens of milliseconds; on their own thread they overlap with the writer's work.
/// `PASSIVE` never blocks the writer or readers. The thread ends when the writer drops
/// its sender.
fn start_checkpointer(path: &Path) -> Result<SyncSender<()>, StoreError> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    let (poke, pokes) = sync_channel::<()>(1);
    std::thread::Builder::new()
        .name("store-checkpoint".into())
        .spawn(move || {
            while pokes.recv().is_ok() {
                let copied = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                    Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
                });
                match copied {
                    Ok((log, done)) => tracing::trace!(log, done, "checkpoint"),
                    // Busy (the writer's backstop checkpoint is running) or an I/O
                    // error: the next poke or the writer's backstop tries again.
                    Err(e) => tracing::debug!(error = %e, "checkpoint deferred"),
                }
            }
        })
        .map_err(|_| StoreError::WriterGone)?;
    Ok(poke)
}

fn writer_loop(
    mut conn: Connection,
    rx: Receiver<Msg>,
    mut app: Box<dyn StateMachine>,
    checkpoints: SyncSender<()>,
) {
    let mut since_checkpoint = 0usize;
    let mut known = KnownContent::default();
    while let Ok(first) = rx.recv() {
        let mut group: Vec<(Vec<WriteOp>, Ack)> = Vec::new();
        let mut stop = false;
        match first {
            Msg::Write(ops, ack) => group.push((ops, ack)),
            Msg::Stop => return,
        }
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(Msg::Write(ops, ack)) => group.push((ops, ack)),
                Ok(Msg::Stop) => {
                    stop = true;
                    break;
                }
                Err(_) => break,
            }
        }
        let result =
            commit_group(&mut conn, &group, app.as_mut(), &mut known).map_err(|e| e.to_string());
        if let Ok(bytes) = result {
            since_checkpoint += bytes;
            if since_checkpoint >= CHECKPOINT_EVERY_BYTES {
                since_checkpoint = 0;
                // Full: a checkpoint is already due and will copy these pages too.
                let _ = checkpoints.try_send(());
            }
        }
        if result.is_ok() && app.take_wal_truncate() {
            truncate_wal(&conn);
        }
        let result = result.map(|_| ());
        for (_, ack) in group {
            let _ = ack.send(result.clone());
        }
        if stop {
            return;
        }
    }
}

/// Attempts at a truncating checkpoint after an erasure, and the pause between them.
const TRUNCATE_ATTEMPTS: usize = 50;
const TRUNCATE_PAUSE: std::time::Duration = std::time::Duration::from_millis(20);

/// Copy the whole WAL into the database and cut it to zero bytes, so that no frame
/// written before an erasure (holding the erased bytes) stays on disk. A reader in the
/// middle of a read holds older frames; this waits for it, bounded (about a second, the
/// writer stalls meanwhile), and says so if it never got there.
fn truncate_wal(conn: &Connection) {
    for _ in 0..TRUNCATE_ATTEMPTS {
        match conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
            r.get::<_, i64>(0)
        }) {
            Ok(0) => return,
            Ok(_) | Err(_) => std::thread::sleep(TRUNCATE_PAUSE),
        }
    }
    tracing::warn!("the WAL could not be truncated after an erasure; the next checkpoint will");
}

/// Heights whose committed content rows `KnownContent` remembers at most.
const KNOWN_CONTENT_HEIGHTS: usize = 1024;

/// Content rows this writer has committed for heights not yet in a block. A proposal's
/// content is written with its pre-prepare record; the prepared record and the block
/// carry the same content again, and probing the content index once per piece only to
/// ignore it cost about a sixth of the consensus bench's throughput. Only a cache: a key
/// missing here (after a restart, or dropped at the bound) falls back to
/// `INSERT OR IGNORE`, and keys enter it only once their transaction has committed.
#[derive(Debug, Default)]
struct KnownContent {
    by_height: BTreeMap<SeqNum, HashSet<Hash32>>,
}

impl KnownContent {
    fn contains(&self, height: SeqNum, hash: &Hash32) -> bool {
        self.by_height
            .get(&height)
            .is_some_and(|h| h.contains(hash))
    }

    fn insert(&mut self, height: SeqNum, hash: Hash32) {
        self.by_height.entry(height).or_default().insert(hash);
    }

    /// Take in what a committed transaction wrote, then forget heights up to the last
    /// block it stored (nothing writes their content again).
    fn absorb(&mut self, written: KnownContent, last_block: Option<SeqNum>) {
        for (height, hashes) in written.by_height {
            self.by_height.entry(height).or_default().extend(hashes);
        }
        if let Some(h) = last_block {
            self.by_height = self.by_height.split_off(&(h + 1));
        }
        while self.by_height.len() > KNOWN_CONTENT_HEIGHTS {
            self.by_height.pop_first();
        }
    }
}

/// What `apply` needs besides the transaction: the application, the content known to
/// be stored, and what this transaction writes.
struct Apply<'a> {
    app: &'a mut dyn StateMachine,
    known: &'a KnownContent,
    written: KnownContent,
}

/// Commit `group` in one transaction; returns about how many bytes it wrote.
fn commit_group(
    conn: &mut Connection,
    group: &[(Vec<WriteOp>, Ack)],
    app: &mut dyn StateMachine,
    known: &mut KnownContent,
) -> Result<usize, ApplyError> {
    let tx = conn.transaction()?;
    let mut bytes = 0;
    let mut last_block = None;
    let mut ctx = Apply {
        app,
        known,
        written: KnownContent::default(),
    };
    for (ops, _) in group {
        for op in ops {
            bytes += apply(&tx, op, &mut ctx)?;
            if let WriteOp::Block(b) = op {
                last_block = last_block.max(Some(b.height()));
            }
        }
    }
    tx.commit()?;
    known.absorb(ctx.written, last_block);
    Ok(bytes)
}

/// Store the content of `requests`, proposed or committed at `height`, under the hashes
/// they sign. Every request reaching the store came through the verifier, which checked
/// that its content matches those hashes, so hashing again here would only repeat that
/// work.
fn insert_request_content(
    tx: &Transaction<'_>,
    height: SeqNum,
    requests: &[SignedRequest],
    ctx: &mut Apply<'_>,
) -> rusqlite::Result<usize> {
    let mut insert = tx.prepare_cached(
        "INSERT OR IGNORE INTO content (height, hash, bytes) VALUES (?1, ?2, ?3)",
    )?;
    let mut written = 0;
    for r in requests {
        for (hash, bytes) in r.request.content_hashes.iter().zip(&r.content) {
            if ctx.known.contains(height, hash) || ctx.written.contains(height, hash) {
                continue;
            }
            insert.execute(params![height as i64, &hash.0[..], bytes])?;
            ctx.written.insert(height, *hash);
            written += bytes.len();
        }
    }
    Ok(written)
}

/// A proposal without its requests' content: vote records keep it that way, so a
/// record's content is written once (to the content table, when first pre-prepared)
/// rather than with every vote and again with the block.
fn stripped_proposal(p: &Proposal) -> Proposal {
    Proposal {
        height: p.height,
        view: p.view,
        proposer: p.proposer,
        timestamp_ms: p.timestamp_ms,
        requests: p.requests.iter().map(SignedRequest::stripped).collect(),
    }
}

/// Apply one operation; returns about how many bytes it wrote (content and encoded rows,
/// not the application's own rows: enough to pace checkpoints).
fn apply(tx: &Transaction<'_>, op: &WriteOp, ctx: &mut Apply<'_>) -> Result<usize, ApplyError> {
    Ok(match op {
        WriteOp::Block(b) => {
            // The row holds the block without content; the content goes to its own
            // table, where erasing it later leaves the block verifiable.
            let has_content = b.requests.iter().any(|r| !r.content.is_empty());
            let (content, data) = if has_content {
                let content = insert_request_content(tx, b.height(), &b.requests, ctx)?;
                (content, encode(&crate::strip_content(b)))
            } else {
                (0, encode(b))
            };
            let written = content + data.len();
            tx.prepare_cached("INSERT INTO blocks (height, hash, data) VALUES (?1, ?2, ?3)")?
                .execute(params![b.height() as i64, &b.hash().0[..], data])?;
            ctx.app.apply(tx, b)?;
            written
        }
        WriteOp::Vote(rec) => match rec {
            DurableRecord::View { .. } => {
                let data = encode(rec);
                tx.prepare_cached("INSERT OR REPLACE INTO meta (key, value) VALUES ('view', ?1)")?
                    .execute(params![&data])?;
                data.len()
            }
            DurableRecord::StableCheckpoint { seq, .. } => {
                let data = encode(rec);
                tx.prepare_cached(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES ('stable', ?1)",
                )?
                .execute(params![&data])?;
                tx.prepare_cached("DELETE FROM votes WHERE seq <= ?1")?
                    .execute(params![*seq as i64])?;
                data.len()
            }
            DurableRecord::PrePrepared {
                pre_prepare,
                proposal,
            } => {
                let content = insert_request_content(tx, proposal.height, &proposal.requests, ctx)?;
                let stripped = encode(&DurableRecord::PrePrepared {
                    pre_prepare: pre_prepare.clone(),
                    proposal: stripped_proposal(proposal),
                });
                tx.prepare_cached("INSERT INTO votes (seq, record) VALUES (?1, ?2)")?
                    .execute(params![pre_prepare.body.seq as i64, &stripped])?;
                content + stripped.len()
            }
            DurableRecord::Prepared { proof, proposal } => {
                let content = insert_request_content(tx, proposal.height, &proposal.requests, ctx)?;
                let stripped = encode(&DurableRecord::Prepared {
                    proof: proof.clone(),
                    proposal: stripped_proposal(proposal),
                });
                tx.prepare_cached("INSERT INTO votes (seq, record) VALUES (?1, ?2)")?
                    .execute(params![proof.pre_prepare.body.seq as i64, &stripped])?;
                content + stripped.len()
            }
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(i: u8) -> Hash32 {
        Hash32([i; 32])
    }

    #[test]
    fn known_content_forgets_heights_up_to_the_last_block_and_stays_bounded() {
        let mut known = KnownContent::default();
        let mut written = KnownContent::default();
        written.insert(5, h(1));
        written.insert(6, h(2));
        known.absorb(written, None);
        assert!(known.contains(5, &h(1)) && known.contains(6, &h(2)));
        assert!(!known.contains(5, &h(2)), "keyed by height and hash");

        known.absorb(KnownContent::default(), Some(5));
        assert!(!known.contains(5, &h(1)), "height 5 is in a block now");
        assert!(known.contains(6, &h(2)));

        let mut many = KnownContent::default();
        for height in 100..100 + KNOWN_CONTENT_HEIGHTS as u64 + 10 {
            many.insert(height, h(3));
        }
        known.absorb(many, None);
        assert_eq!(known.by_height.len(), KNOWN_CONTENT_HEIGHTS);
        assert!(!known.contains(6, &h(2)), "the lowest heights go first");
    }
}
