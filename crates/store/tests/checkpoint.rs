//! The database's layout and its checkpoints: new databases take 16 KiB pages, and the
//! checkpointer thread copies committed WAL pages into the database file well before the
//! writer's own backstop (64 MiB of WAL) would.

mod common;

use std::time::{Duration, Instant};

use medchain_store::{Reader, Store, WriteOp};

/// A pre-prepared proposal at `height` carrying `pieces` pieces of 128 KiB of content.
fn pre_prepared(height: u64, pieces: usize) -> WriteOp {
    let content: Vec<Vec<u8>> = (0..pieces)
        .map(|i| vec![(height as u8).wrapping_add(i as u8); 128 << 10])
        .collect();
    let proposal = common::proposal(height, vec![common::request(height, content)]);
    WriteOp::Vote(common::pre_prepared(&proposal))
}

#[test]
fn a_new_database_has_16_kib_pages() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("ledger.db");
    let _store = Store::open(&path).expect("the store opens");
    let reader = Reader::open(&path).expect("a reader opens");
    let page_size: i64 = reader
        .connection()
        .query_row("PRAGMA page_size", [], |r| r.get(0))
        .expect("the page size reads");
    assert_eq!(page_size, 16 << 10);
}

#[test]
fn committed_pages_reach_the_database_file_without_waiting_for_the_backstop() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("ledger.db");
    let store = Store::open(&path).expect("the store opens");
    let empty = std::fs::metadata(&path).expect("the file exists").len();
    // 24 MiB of content: past one checkpoint's worth (16 MiB), far below the backstop.
    for height in 1..=24 {
        store
            .write(vec![pre_prepared(height, 8)])
            .expect("the write commits");
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut size = empty;
    while Instant::now() < deadline {
        size = std::fs::metadata(&path).expect("the file exists").len();
        if size > 8 << 20 {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        size > 8 << 20,
        "the database file is {size} bytes ({empty} empty): nothing was checkpointed"
    );
}
