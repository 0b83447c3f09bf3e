//! A version-1 database (content keyed by hash alone) opens as version 2, with every
//! piece of content that a block or a vote record refers to moved under that height.

mod common;

use common::{loaded_pre_prepare, proposal, request, KEYS};
use medchain_pbft::DurableRecord;
use medchain_store::{rusqlite::params, strip_content, Reader, Store};
use medchain_types::{
    encode, BlockHeader, CommitCertificate, CommittedBlock, Hash32, Proposal, ReplicaId,
};

const VERSION_1: &str = "CREATE TABLE blocks (height INTEGER PRIMARY KEY, hash BLOB NOT NULL,
        data BLOB NOT NULL);
     CREATE TABLE votes (id INTEGER PRIMARY KEY AUTOINCREMENT, seq INTEGER NOT NULL,
        record BLOB NOT NULL);
     CREATE INDEX votes_seq ON votes(seq);
     CREATE TABLE meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
     CREATE TABLE content (hash BLOB PRIMARY KEY, bytes BLOB NOT NULL);
     PRAGMA user_version = 1;";

#[test]
fn version_1_content_moves_under_the_heights_that_refer_to_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    let in_block = b"a note committed in block 1".to_vec();
    let in_vote = b"a note only pre-prepared at height 2".to_vec();
    let orphan = b"content nothing refers to".to_vec();

    let committed = proposal(1, vec![request(1, vec![in_block.clone()])]);
    let block = CommittedBlock {
        header: BlockHeader::new(&committed.header(), Hash32::default()),
        requests: committed.requests.clone(),
        certificate: CommitCertificate {
            view: 0,
            height: 1,
            proposal_digest: committed.digest(),
            signatures: Vec::new(),
        },
    };
    let pending = proposal(2, vec![request(2, vec![in_vote.clone()])]);
    // A version-1 vote row held the proposal without its content.
    let vote = DurableRecord::PrePrepared {
        pre_prepare: KEYS.pre_prepare(0, &pending, ReplicaId(0)),
        proposal: Proposal {
            requests: pending.requests.iter().map(|r| r.stripped()).collect(),
            ..pending.clone()
        },
    };
    {
        let conn = medchain_store::rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(VERSION_1).unwrap();
        conn.execute(
            "INSERT INTO blocks (height, hash, data) VALUES (1, ?1, ?2)",
            params![&block.hash().0[..], encode(&strip_content(&block))],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO votes (seq, record) VALUES (2, ?1)",
            params![encode(&vote)],
        )
        .unwrap();
        for c in [&in_block, &in_vote, &orphan] {
            conn.execute(
                "INSERT INTO content (hash, bytes) VALUES (?1, ?2)",
                params![&Hash32::sha256(c).0[..], c],
            )
            .unwrap();
        }
    }

    drop(Store::open(&path).expect("a version-1 database migrates"));
    let reader = Reader::open(&path).unwrap();
    let version: i64 = reader
        .connection()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 2);
    let h = |c: &[u8]| Hash32::sha256(c);
    assert_eq!(
        reader.content(1, &h(&in_block)).unwrap(),
        Some(in_block.clone())
    );
    assert_eq!(reader.content(2, &h(&in_vote)).unwrap(), Some(in_vote));
    assert_eq!(
        reader.content(2, &h(&in_block)).unwrap(),
        None,
        "wrong height"
    );
    let rows: i64 = reader
        .connection()
        .query_row("SELECT COUNT(*) FROM content", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 2, "the orphan is dropped, nothing else");
    // The block is served with its content again, and the vote state loads whole.
    let served = reader.blocks_with_content(1, 1, 1 << 20).unwrap();
    assert_eq!(served[0].requests, block.requests);
    assert_eq!(loaded_pre_prepare(&reader), pending);
}
