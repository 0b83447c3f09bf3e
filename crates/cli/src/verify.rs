//! `medchain verify`: the whole chain of one replica, offline, against the genesis keys:
//! hash links, Merkle roots, request signatures and every commit certificate. Exits
//! non-zero naming the first bad block.

use std::path::Path;

use anyhow::bail;
use medchain_node::NodeFiles;
use medchain_store::{Reader, StoreError};
use medchain_types::chain::ChainVerifier;

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
    let result = reader.for_each_block(|b| {
        chain.push(b).map_err(StoreError::Corrupt)?;
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
    Ok(())
}
