//! Vote records are stored without their requests' content (it goes to the content table
//! once) and get it back when a restarting replica loads its vote state.

mod common;

use common::{loaded_pre_prepare, pre_prepared, proposal, request};
use medchain_store::{Reader, Store, WriteOp};

#[test]
fn pre_prepared_batches_lose_content_in_the_vote_row_and_get_it_back_on_load() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    let content = vec![b"a clinical note, stored once".to_vec(), vec![b'x'; 4000]];
    let proposal = proposal(1, vec![request(1, content.clone())]);
    {
        let store = Store::open(&path).unwrap();
        store
            .write(vec![WriteOp::Vote(pre_prepared(&proposal))])
            .unwrap();
    }
    let reader = Reader::open(&path).unwrap();
    let row: Vec<u8> = reader
        .connection()
        .query_row("SELECT record FROM votes", [], |r| r.get(0))
        .unwrap();
    assert!(
        row.len() < 1000,
        "the vote row holds {} bytes: content was not stripped",
        row.len()
    );
    for (c, h) in content
        .iter()
        .zip(&proposal.requests[0].request.content_hashes)
    {
        assert_eq!(reader.content(1, h).unwrap().as_deref(), Some(&c[..]));
    }
    assert_eq!(
        loaded_pre_prepare(&reader),
        proposal,
        "content attached again, proposal intact"
    );
}
