//! Per-client deduplication (Castro & Liskov, OSDI 1999, section 4.1: the client
//! timestamp that makes execution at-most-once, generalised to a window of outstanding
//! request ids), and rebuilding it from the chain after a restart.

mod common;

use common::*;
use medchain_pbft::clients::{RequestState, CLIENT_WINDOW};
use medchain_pbft::ClientTable;
use medchain_types::{
    BlockHeader, ClientId, CommitCertificate, CommittedBlock, Hash32, SignedRequest,
};

/// Section 4.1: each (client, id) executes at most once even when ids arrive out of
/// order, and one client's ids do not affect another's.
#[test]
fn each_request_id_executes_once_in_any_order() {
    let mut t = ClientTable::new(CLIENTS);
    let (a, b) = (ClientId(0), ClientId(1));
    assert!(t.execute(a, 3, 1));
    assert_eq!(t.state(a, 3), RequestState::Executed(Some(1)));
    assert_eq!(
        t.state(a, 1),
        RequestState::New,
        "a gap below is still executable"
    );
    assert!(!t.execute(a, 3, 2), "executed twice");
    assert_eq!(
        t.state(a, 3),
        RequestState::Executed(Some(1)),
        "height overwritten"
    );

    assert!(t.execute(a, 1, 2));
    assert!(t.execute(a, 2, 3));
    for id in 1..=3 {
        assert!(!t.execute(a, id, 4), "id {id} executed twice");
        assert!(matches!(t.state(a, id), RequestState::Executed(_)));
    }
    assert_eq!(t.state(a, 4), RequestState::New);

    assert_eq!(t.state(b, 1), RequestState::New);
    assert_eq!(t.state(b, 3), RequestState::New);
    assert!(t.execute(b, 3, 5));
}

/// Section 4.1: ids must lie in (low, low + window]; beyond it a request can never run,
/// and the window slides as the executed prefix grows. Unknown clients are invalid.
#[test]
fn ids_outside_the_window_are_invalid() {
    let mut t = ClientTable::new(CLIENTS);
    let a = ClientId(0);
    assert_eq!(t.state(a, CLIENT_WINDOW), RequestState::New);
    assert_eq!(t.state(a, CLIENT_WINDOW + 1), RequestState::Invalid);
    assert!(!t.execute(a, CLIENT_WINDOW + 1, 1));
    assert_eq!(t.state(a, CLIENT_WINDOW + 1), RequestState::Invalid);
    // Id 0 is at the bottom of the window: never executable.
    assert!(!t.execute(a, 0, 1));

    for id in 1..=3 {
        assert!(t.execute(a, id, id));
    }
    assert_eq!(t.state(a, CLIENT_WINDOW + 3), RequestState::New);
    assert_eq!(t.state(a, CLIENT_WINDOW + 4), RequestState::Invalid);

    let stranger = ClientId(CLIENTS as u16);
    assert_eq!(t.state(stranger, 1), RequestState::Invalid);
    assert!(!t.execute(stranger, 1, 1));
}

/// Section 4.1: to re-send a reply, a replica must remember that the client's latest
/// request executed and where, also when ids arrive in order.
#[test]
fn the_latest_executed_request_keeps_its_height() {
    let mut t = ClientTable::new(CLIENTS);
    let a = ClientId(0);
    assert!(t.execute(a, 1, 7));
    assert_eq!(t.state(a, 1), RequestState::Executed(Some(7)));
    assert!(t.execute(a, 2, 8));
    assert_eq!(t.state(a, 2), RequestState::Executed(Some(8)));
}

/// A block with the given requests; `apply_block` only looks at requests and height.
fn block(height: u64, requests: Vec<SignedRequest>) -> CommittedBlock {
    let p = proposal(height, 0, height, requests.clone());
    CommittedBlock {
        header: BlockHeader::new(&p.header(), Hash32::default()),
        requests,
        certificate: CommitCertificate {
            view: 0,
            height,
            proposal_digest: p.digest(),
            signatures: Vec::new(),
        },
    }
}

/// Section 4.1: the last-request state is a function of the executed chain, so
/// replaying the blocks rebuilds the table every replica holds, including the heights of
/// out-of-order ids, and reports which requests in a block take effect.
#[test]
fn apply_block_rebuilds_the_same_table() {
    let mut c = Cluster::new();
    let order = [(0, 3), (1, 2), (0, 1), (1, 1), (0, 2), (0, 5)];
    for (client, id) in order {
        c.submit(0, request(client, id));
    }
    assert_eq!(c.heights(), vec![order.len() as u64; N]);

    let tables: Vec<ClientTable> = c
        .chains()
        .map(|chain| {
            let mut t = ClientTable::new(CLIENTS);
            for b in chain {
                assert_eq!(t.apply_block(b), vec![true; b.requests.len()]);
            }
            t
        })
        .collect();
    assert!(tables.iter().all(|t| *t == tables[0]));

    let mut direct = ClientTable::new(CLIENTS);
    for (h, (client, id)) in order.iter().enumerate() {
        assert!(direct.execute(ClientId(*client), *id, h as u64 + 1));
    }
    let t = &tables[0];
    assert_eq!(*t, direct);
    assert_eq!(t.state(ClientId(0), 5), RequestState::Executed(Some(6)));
    assert!(matches!(t.state(ClientId(0), 3), RequestState::Executed(_)));
    assert_eq!(t.state(ClientId(0), 4), RequestState::New);
    assert_eq!(t.state(ClientId(1), 3), RequestState::New);

    // Replaying a block again, or a block repeating a request, takes no effect twice.
    let mut again = t.clone();
    assert_eq!(again.apply_block(&c.disks[0].chain[5]), vec![false]);
    let dup = block(7, vec![request(1, 3), request(1, 3), request(0, 5)]);
    assert_eq!(again.apply_block(&dup), vec![true, false, false]);
}

/// Section 4.1 across a restart: a primary restored with the table rebuilt from its chain
/// does not propose an executed request again, and still proposes new ones.
#[test]
fn restored_primary_does_not_execute_a_request_twice() {
    let mut c = Cluster::new();
    let done = request(0, 2);
    c.submit(0, done.clone());
    c.submit(0, request(1, 1));
    c.restart(0);

    let outs = c.submit(0, done.clone());
    assert!(
        pre_prepares_in(&outs).is_empty(),
        "re-proposed an executed request"
    );
    let outs = c.submit(0, request(0, 1));
    assert_eq!(pre_prepares_in(&outs).len(), 1);
    assert_eq!(c.heights(), vec![3; N]);
    let executed: Vec<_> = c.disks[0]
        .chain
        .iter()
        .flat_map(|b| b.requests.iter().map(SignedRequest::key))
        .collect();
    assert_eq!(
        executed,
        vec![(ClientId(0), 2), (ClientId(1), 1), (ClientId(0), 1)]
    );
}
