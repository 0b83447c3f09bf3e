//! Schema and migrations, versioned with SQLite's `user_version`.

use medchain_pbft::DurableRecord;
use medchain_types::{CommittedBlock, SeqNum, SignedRequest};
use rusqlite::{params, Connection, Transaction};

use crate::StoreError;

/// One step from version `i` to `i + 1`: plain SQL, or code where rows must be decoded.
enum Migration {
    Sql(&'static str),
    Code(fn(&Transaction<'_>) -> Result<(), StoreError>),
}

const MIGRATIONS: &[Migration] = &[
    // 0 -> 1: the chain, the vote state, content.
    Migration::Sql(
        "CREATE TABLE blocks (
            height INTEGER PRIMARY KEY,
            hash   BLOB NOT NULL,
            data   BLOB NOT NULL
         );
         CREATE TABLE votes (
            id     INTEGER PRIMARY KEY AUTOINCREMENT,
            seq    INTEGER NOT NULL,
            record BLOB NOT NULL
         );
         CREATE INDEX votes_seq ON votes(seq);
         CREATE TABLE meta (
            key   TEXT PRIMARY KEY,
            value BLOB NOT NULL
         );
         CREATE TABLE content (
            hash  BLOB PRIMARY KEY,
            bytes BLOB NOT NULL
         );",
    ),
    // 1 -> 2: content addressed by (height, SHA-256).
    Migration::Code(content_by_height),
];

/// The content table of version 2. Content is still addressed by its SHA-256, now within
/// the block (height) that carries it. A key that starts with the height puts every new
/// row at the end of the index: a table keyed by the hash alone put each 1 KB record's
/// key on a random index page, and rewriting that 4 KiB page on every commit and again at
/// every checkpoint cost more than the record itself (a third of the consensus layer's
/// throughput in `medchain bench`). Identical content in two blocks is stored twice.
/// A rowid table with a separate index rather than `WITHOUT ROWID`: an index page keeps
/// at most about a quarter of a page of a row inline, so content of a few kilobytes
/// would spill to overflow pages, while a table page holds it inline.
const CONTENT_V2: &str = "CREATE TABLE content (
        id     INTEGER PRIMARY KEY,
        height INTEGER NOT NULL,
        hash   BLOB NOT NULL,
        bytes  BLOB NOT NULL
     );
     CREATE UNIQUE INDEX content_at ON content(height, hash);";

/// Move version-1 content (keyed by hash alone) under the heights of the blocks and vote
/// records that refer to it. Content no block or vote refers to has nothing to serve and
/// is dropped.
fn content_by_height(tx: &Transaction<'_>) -> Result<(), StoreError> {
    tx.execute_batch("ALTER TABLE content RENAME TO content_v1;")?;
    tx.execute_batch(CONTENT_V2)?;
    let mut copy = tx.prepare(
        "INSERT OR IGNORE INTO content (height, hash, bytes)
         SELECT ?1, hash, bytes FROM content_v1 WHERE hash = ?2",
    )?;
    let mut refer = |height: SeqNum, requests: &[SignedRequest]| -> Result<(), StoreError> {
        for h in requests.iter().flat_map(|r| &r.request.content_hashes) {
            copy.execute(params![height as i64, &h.0[..]])?;
        }
        Ok(())
    };
    {
        let mut blocks = tx.prepare("SELECT height, hash, data FROM blocks")?;
        let mut rows = blocks.query([])?;
        while let Some(row) = rows.next()? {
            let height: i64 = row.get(0)?;
            let hash: Vec<u8> = row.get(1)?;
            let data: Vec<u8> = row.get(2)?;
            let block: CommittedBlock = crate::decode_block(height as SeqNum, &hash, &data)?;
            refer(block.height(), &block.requests)?;
        }
    }
    {
        let mut votes = tx.prepare("SELECT record FROM votes")?;
        let mut rows = votes.query([])?;
        while let Some(row) = rows.next()? {
            let bytes: Vec<u8> = row.get(0)?;
            if let DurableRecord::PrePrepared { proposal, .. }
            | DurableRecord::Prepared { proposal, .. } = crate::decode_record(&bytes)?
            {
                refer(proposal.height, &proposal.requests)?;
            }
        }
    }
    drop(copy);
    tx.execute_batch("DROP TABLE content_v1;")?;
    Ok(())
}

pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Bring the database to the current schema, in one transaction per step.
pub fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    for (i, step) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let tx = conn.transaction()?;
        match step {
            Migration::Sql(sql) => tx.execute_batch(sql)?,
            Migration::Code(f) => f(&tx)?,
        }
        tx.pragma_update(None, "user_version", i as i64 + 1)?;
        tx.commit()?;
    }
    Ok(())
}
