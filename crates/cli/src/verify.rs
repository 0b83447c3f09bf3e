//! `medchain verify`: the whole chain of one replica, offline, against the genesis keys:
//! hash links, Merkle roots, request signatures and every commit certificate. Exits
//! non-zero naming the first bad block.

use std::path::Path;

use anyhow::bail;
use medchain_node::NodeFiles;
use medchain_store::{Reader, StoreError};
use medchain_types::chain::ChainVerifier;
use medchain_types::{ChainError, Hash32};

pub fn run(config: &Path) -> anyhow::Result<()> {
    let files = NodeFiles::load(config)?;
    let db = files.db_path();
    if !db.exists() {
        bail!(
            "{} does not exist: this replica has never run",
            db.display()
        );
    }
    let reader = Reader::open(&db)?;
    let height = reader.height()?;
    let bar = indicatif::ProgressBar::new(height);
    bar.set_style(
        indicatif::ProgressStyle::with_template("verifying {bar:40} {pos}/{len} blocks ({eta})")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let mut chain = ChainVerifier::new(&files.genesis)?;
    let (mut pieces, mut erased) = (0u64, 0u64);
    let result = reader.for_each_block(|b| {
        chain.push(b).map_err(StoreError::Corrupt)?;
        // Content beside the block: present and matching its signed hash, or erased
        // (crypto-shredded at a patient's request), never different.
        for r in &b.requests {
            for hash in &r.request.content_hashes {
                pieces += 1;
                match content_at(reader.connection(), b.height(), hash)? {
                    Some(bytes) if Hash32::sha256(&bytes) == *hash => {}
                    Some(_) => {
                        return Err(StoreError::Corrupt(ChainError {
                            height: b.height(),
                            reason: format!("content {} does not match its hash", hash.to_hex()),
                        }))
                    }
                    None => erased += 1,
                }
            }
        }
        bar.inc(1);
        Ok(())
    });
    bar.finish_and_clear();
    if let Err(e) = result {
        bail!("verification failed: {e}");
    }
    let s = chain.summary();
    println!(
        "chain OK: {} blocks, {} requests, head {}",
        s.height, s.requests, s.head_hash
    );
    println!(
        "content: {} pieces, {} present and matching, {} erased",
        pieces,
        pieces - erased,
        erased
    );
    Ok(())
}

/// The content stored under `hash` by block `height`, if it is still there.
fn content_at(
    conn: &medchain_store::rusqlite::Connection,
    height: u64,
    hash: &Hash32,
) -> Result<Option<Vec<u8>>, StoreError> {
    use medchain_store::rusqlite::OptionalExtension;
    Ok(conn
        .prepare_cached("SELECT bytes FROM content WHERE height = ?1 AND hash = ?2")?
        .query_row(
            medchain_store::rusqlite::params![height as i64, &hash.0[..]],
            |r| r.get(0),
        )
        .optional()?)
}
