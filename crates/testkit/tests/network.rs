//! The queue's order is what makes runs reproducible: earliest first, and posting order
//! among equals (messages and host events alike), so the simulator's traces and the PBFT
//! tests' FIFO delivery both rest on it.

use std::rc::Rc;

use medchain_testkit::{Due, Envelope, Network};
use medchain_types::ReplicaId;

fn envelope(to: u16, byte: u8) -> Envelope {
    Envelope {
        from: ReplicaId(0),
        to: ReplicaId(to),
        bytes: Rc::new(vec![byte]),
    }
}

fn label(due: Due<&'static str>) -> String {
    match due {
        Due::Message(e) => format!("msg{}", e.bytes[0]),
        Due::Event(x) => x.to_string(),
    }
}

#[test]
fn earliest_first_then_in_posting_order() {
    let mut net: Network<&'static str> = Network::new();
    net.post(10, envelope(1, 1));
    net.schedule(5, "tick");
    net.post(5, envelope(2, 2));
    net.schedule(10, "check");
    net.post(10, envelope(3, 3));
    let order: Vec<(u64, String)> = std::iter::from_fn(|| net.pop())
        .map(|(at_ms, due)| (at_ms, label(due)))
        .collect();
    let expected = [
        (5, "tick"),
        (5, "msg2"),
        (10, "msg1"),
        (10, "check"),
        (10, "msg3"),
    ];
    assert_eq!(
        order,
        expected
            .iter()
            .map(|(t, s)| (*t, s.to_string()))
            .collect::<Vec<_>>()
    );
    assert!(net.is_empty());
}

#[test]
fn self_sends_never_reach_the_wire_or_the_counts() {
    let mut net: Network = Network::new();
    assert!(!net.offer(ReplicaId(1), ReplicaId(1)));
    assert!(net.offer(ReplicaId(1), ReplicaId(2)));
    net.lose();
    assert_eq!((net.traffic.sent, net.traffic.dropped), (1, 1));
}
