//! Vote records are stored without their requests' content (it goes to the content table
//! once) and get it back when a restarting replica loads its vote state.

mod common;

use common::loaded_pre_prepare;
use medchain_pbft::DurableRecord;
use medchain_store::{Reader, Store, WriteOp};
use medchain_types::{ClientId, Hash32, KeyPair, PrePrepare, Proposal, ReplicaId, Request, Signed};

#[test]
fn pre_prepared_batches_lose_content_in_the_vote_row_and_get_it_back_on_load() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    let key = KeyPair::from_secret([7; 32]);
    let content = vec![b"a clinical note, stored once".to_vec(), vec![b'x'; 4000]];
    let request = Request {
        client: ClientId(0),
        request_id: 1,
        payload: b"payload".to_vec(),
        content_hashes: content.iter().map(|c| Hash32::sha256(c)).collect(),
    }
    .sign_with_content(&key, content.clone());
    let proposal = Proposal {
        height: 1,
        view: 0,
        proposer: ReplicaId(0),
        timestamp_ms: 1,
        requests: vec![request],
    };
    let pre_prepare = Signed::sign(
        PrePrepare {
            view: 0,
            seq: 1,
            digest: proposal.digest(),
            replica: ReplicaId(0),
        },
        &key,
    );
    {
        let store = Store::open(&path).unwrap();
        store
            .write(vec![WriteOp::Vote(DurableRecord::PrePrepared {
                pre_prepare,
                proposal: proposal.clone(),
            })])
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
