//! A replica's durable storage in SQLite: the chain, the PBFT vote state, and the
//! content-addressed store for clinical content.
//!
//! One writer thread owns the only write connection and is fed by a bounded channel; it
//! groups whatever is queued into one transaction (group commit) and acknowledges each
//! write only once that transaction is durable. The journal is WAL with
//! `synchronous=FULL`: in WAL mode `NORMAL` survives a process crash but not a power
//! loss, and an acknowledged medical record must survive both. Readers open their own
//! connections and never wait for the writer (WAL lets readers see the last commit).

mod schema;
mod writer;

pub use rusqlite;
pub use writer::{ApplyError, NoState, StateMachine, Store, WriteOp};

use std::path::Path;

use medchain_pbft::{ChainState, ClientTable, DurableRecord, DurableState};
use medchain_types::{decode, ChainError, CommittedBlock, Genesis, Hash32, SeqNum, SignedRequest};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};

/// Block hashes handed to a restarting replica (more than the PBFT window).
const RECENT_HASHES: usize = 1024;

/// Largest stored block we will decode.
pub const MAX_BLOCK_BYTES: usize = 64 << 20;

/// Storage failures. Messages name what is wrong, never SQL internals beyond SQLite's own
/// error text.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("database schema version {found} is newer than this binary supports ({supported})")]
    SchemaTooNew { found: i64, supported: i64 },
    #[error("corrupt database: {0}")]
    Corrupt(#[from] ChainError),
    #[error("the writer thread has stopped")]
    WriterGone,
    /// The writer could not commit (the application or SQLite failed; the replica stops).
    #[error("durable write failed: {0}")]
    WriteFailed(String),
    #[error("application state: {0}")]
    Apply(#[from] ApplyError),
}

/// A read-only connection, for API reads and verification.
#[derive(Debug)]
pub struct Reader {
    conn: Connection,
}

impl Reader {
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        Ok(Reader { conn })
    }

    /// Height of the last stored block (0: only the genesis).
    pub fn height(&self) -> Result<SeqNum, StoreError> {
        let h: Option<i64> = self
            .conn
            .query_row("SELECT MAX(height) FROM blocks", [], |r| r.get(0))?;
        Ok(h.unwrap_or(0) as SeqNum)
    }

    /// The block at `height`, decoded; `Corrupt` if its bytes do not decode or do not
    /// hash to the stored hash.
    pub fn block(&self, height: SeqNum) -> Result<Option<CommittedBlock>, StoreError> {
        let row: Option<(Vec<u8>, Vec<u8>)> = self
            .conn
            .query_row(
                "SELECT hash, data FROM blocks WHERE height = ?1",
                params![height as i64],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        row.map(|(hash, data)| decode_block(height, &hash, &data))
            .transpose()
    }

    /// Up to `max` consecutive blocks from `from`.
    pub fn blocks(&self, from: SeqNum, max: usize) -> Result<Vec<CommittedBlock>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT height, hash, data FROM blocks WHERE height >= ?1 ORDER BY height LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![from as i64, max as i64], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, Vec<u8>>(1)?,
                r.get::<_, Vec<u8>>(2)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (h, hash, data) = row?;
            out.push(decode_block(h as SeqNum, &hash, &data)?);
        }
        Ok(out)
    }

    /// Like `blocks`, with each request's content attached again from the content
    /// table (what a lagging replica is sent, so that it stores the content too), and
    /// no more blocks than fit in about `max_bytes` (always at least one, so that a
    /// lagging replica always makes progress). A request whose content was erased goes
    /// without it.
    pub fn blocks_with_content(
        &self,
        from: SeqNum,
        max: usize,
        max_bytes: usize,
    ) -> Result<Vec<CommittedBlock>, StoreError> {
        let mut blocks = self.blocks(from, max)?;
        let mut bytes = 0;
        for (i, b) in blocks.iter_mut().enumerate() {
            let height = b.height();
            self.attach_content(height, &mut b.requests)?;
            bytes += b
                .requests
                .iter()
                .map(SignedRequest::size_hint)
                .sum::<usize>()
                + 1024;
            if bytes > max_bytes && i > 0 {
                blocks.truncate(i);
                break;
            }
        }
        Ok(blocks)
    }

    /// Attach each request's content (proposed or committed at `height`) from the content
    /// table, where all of it is there.
    fn attach_content(
        &self,
        height: SeqNum,
        requests: &mut [SignedRequest],
    ) -> Result<(), StoreError> {
        for r in requests {
            if !r.content.is_empty() {
                continue;
            }
            let mut content = Vec::with_capacity(r.request.content_hashes.len());
            for h in &r.request.content_hashes {
                match self.content(height, h)? {
                    Some(c) => content.push(c),
                    None => break,
                }
            }
            if content.len() == r.request.content_hashes.len() {
                r.content = content;
            }
        }
        Ok(())
    }

    /// The underlying read-only connection, for application queries.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// Content by its SHA-256, as carried by the block (or proposal) at `height`.
    pub fn content(&self, height: SeqNum, hash: &Hash32) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT bytes FROM content WHERE height = ?1 AND hash = ?2")?
            .query_row(params![height as i64, &hash.0[..]], |r| r.get(0))
            .optional()?)
    }

    /// The persisted vote state, folded.
    pub fn durable_state(&self, genesis_hash: Hash32) -> Result<DurableState, StoreError> {
        let mut state = DurableState::genesis(genesis_hash);
        for key in ["stable", "view"] {
            let v: Option<Vec<u8>> = self
                .conn
                .query_row("SELECT value FROM meta WHERE key = ?1", params![key], |r| {
                    r.get(0)
                })
                .optional()?;
            if let Some(bytes) = v {
                state.apply(&decode_record(&bytes)?);
            }
        }
        let mut stmt = self.conn.prepare("SELECT record FROM votes ORDER BY id")?;
        let rows = stmt.query_map([], |r| r.get::<_, Vec<u8>>(0))?;
        for row in rows {
            // Vote records are stored without content (the writer puts it in the content
            // table): attach it again, so that a batch re-proposed after a restart still
            // carries its records' content to the other replicas.
            let mut record = decode_record(&row?)?;
            if let DurableRecord::PrePrepared { proposal, .. }
            | DurableRecord::Prepared { proposal, .. } = &mut record
            {
                self.attach_content(proposal.height, &mut proposal.requests)?;
            }
            state.apply(&record);
        }
        Ok(state)
    }

    /// Walk the whole chain in order (for `verify` and start-up checks), calling
    /// `each(height)` after every block so callers can show progress.
    pub fn for_each_block(
        &self,
        mut each: impl FnMut(&CommittedBlock) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT height, hash, data FROM blocks ORDER BY height")?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let h: i64 = row.get(0)?;
            let hash: Vec<u8> = row.get(1)?;
            let data: Vec<u8> = row.get(2)?;
            each(&decode_block(h as SeqNum, &hash, &data)?)?;
        }
        Ok(())
    }

    /// What the PBFT core needs on restart: head and the client table replayed from the
    /// chain. Checks hash links and Merkle roots on the way (hashing only), so a corrupt
    /// row stops the start.
    pub fn chain_state(&self, genesis: &Genesis) -> Result<ChainState, StoreError> {
        let mut clients = ClientTable::new(genesis.clients.len());
        let mut last_hash = genesis.hash();
        let mut last = 0;
        let mut recent_hashes = std::collections::VecDeque::new();
        self.for_each_block(|b| {
            if b.height() != last + 1 || b.header.prev_hash != last_hash {
                return Err(corrupt(last + 1, "previous-hash link broken".into()));
            }
            // Hashing only (no signatures): cheap enough to run over the whole chain on
            // every start, and it catches any change to a block's requests.
            if medchain_types::block::tx_root(&b.requests) != b.header.tx_root {
                return Err(corrupt(
                    b.height(),
                    "requests do not match the Merkle root".into(),
                ));
            }
            clients.apply_block(b);
            last = b.height();
            last_hash = b.hash();
            recent_hashes.push_back((last, last_hash));
            if recent_hashes.len() > RECENT_HASHES {
                recent_hashes.pop_front();
            }
            Ok(())
        })?;
        Ok(ChainState {
            last_executed: last,
            last_hash,
            clients,
            recent_hashes: recent_hashes.into(),
        })
    }
}

fn corrupt(height: SeqNum, reason: String) -> StoreError {
    StoreError::Corrupt(ChainError { height, reason })
}

fn decode_block(height: SeqNum, hash: &[u8], data: &[u8]) -> Result<CommittedBlock, StoreError> {
    let block: CommittedBlock = decode(data, MAX_BLOCK_BYTES)
        .map_err(|e| corrupt(height, format!("stored block does not decode: {e}")))?;
    if block.height() != height {
        return Err(corrupt(
            height,
            format!("row holds block {}", block.height()),
        ));
    }
    if block.hash().0[..] != *hash {
        return Err(corrupt(
            height,
            "stored bytes do not match the block hash".into(),
        ));
    }
    Ok(block)
}

fn decode_record(bytes: &[u8]) -> Result<DurableRecord, StoreError> {
    decode(bytes, MAX_BLOCK_BYTES)
        .map_err(|e| corrupt(0, format!("stored vote state does not decode: {e}")))
}

/// The block as its row stores it: every request without its content.
pub fn strip_content(b: &CommittedBlock) -> CommittedBlock {
    CommittedBlock {
        header: b.header.clone(),
        requests: b.requests.iter().map(|r| r.stripped()).collect(),
        certificate: b.certificate.clone(),
    }
}
