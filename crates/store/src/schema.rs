//! Schema and migrations, versioned with SQLite's `user_version`.

use rusqlite::Connection;

use crate::StoreError;

/// Each entry migrates from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    // 0 -> 1: the chain, the vote state, content.
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
];

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
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i as i64 + 1)?;
        tx.commit()?;
    }
    Ok(())
}
