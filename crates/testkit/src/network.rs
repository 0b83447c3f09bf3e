//! The one in-memory network that drives real replicas in tests: encoded messages in
//! flight, ordered by delivery time and then by the order they were posted, so that a run
//! is a pure function of its inputs. Faults are the caller's: the PBFT tests hold, drop
//! and isolate by rule, the simulator drops, delays, duplicates and partitions by seed.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::convert::Infallible;
use std::rc::Rc;

use medchain_types::{PeerMessage, ReplicaId, Verified, Verifier, VerifyError};

/// One message on the wire. The bytes are what a node would send, so delivery goes
/// through the real decoder and verifier; a broadcast shares one encoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub from: ReplicaId,
    pub to: ReplicaId,
    pub bytes: Rc<Vec<u8>>,
}

/// What falls due: a message, or one of the host's own events (a timer, a client, a
/// crash). The simulator needs both in one queue because its trace hash depends on the
/// exact interleaving of deliveries and events at equal times.
#[derive(Debug)]
pub enum Due<X> {
    Message(Envelope),
    Event(X),
}

/// What happened to the messages, for reports and assertions.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Traffic {
    /// Messages replicas handed to the network for another replica.
    pub sent: u64,
    /// Messages the caller's fault model lost.
    pub dropped: u64,
    /// Messages that decoded and verified at their destination.
    pub delivered: u64,
    /// Messages their destination's verifier refused.
    pub rejected: u64,
}

#[derive(Debug)]
struct Pending<X> {
    at_ms: u64,
    seq: u64,
    item: Due<X>,
}

impl<X> PartialEq for Pending<X> {
    fn eq(&self, o: &Self) -> bool {
        (self.at_ms, self.seq) == (o.at_ms, o.seq)
    }
}
impl<X> Eq for Pending<X> {}
impl<X> PartialOrd for Pending<X> {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl<X> Ord for Pending<X> {
    fn cmp(&self, o: &Self) -> Ordering {
        // Reversed: `BinaryHeap` is a max-heap and the earliest item must come out first.
        (o.at_ms, o.seq).cmp(&(self.at_ms, self.seq))
    }
}

/// The queue of in-flight messages (and of the host's events `X`), with its bookkeeping.
/// Items due at the same time come out in the order they were posted, so a caller that
/// always posts at the current time gets a FIFO network.
#[derive(Debug)]
pub struct Network<X = Infallible> {
    queue: BinaryHeap<Pending<X>>,
    last_seq: u64,
    pub traffic: Traffic,
}

impl<X> Default for Network<X> {
    fn default() -> Self {
        Self::new()
    }
}

impl<X> Network<X> {
    pub fn new() -> Self {
        Network {
            queue: BinaryHeap::new(),
            last_seq: 0,
            traffic: Traffic::default(),
        }
    }

    /// Count a message from `from` to `to`; false (and not counted) when it is addressed
    /// to its sender, which a host handles without the network.
    pub fn offer(&mut self, from: ReplicaId, to: ReplicaId) -> bool {
        if from == to {
            return false;
        }
        self.traffic.sent += 1;
        true
    }

    /// The fault model lost an offered message.
    pub fn lose(&mut self) {
        self.traffic.dropped += 1;
    }

    /// Put a message (or one copy of it) on the wire, to arrive at `at_ms`.
    pub fn post(&mut self, at_ms: u64, envelope: Envelope) {
        self.push(at_ms, Due::Message(envelope));
    }

    /// Queue one of the host's own events for `at_ms`, in the same order as messages.
    pub fn schedule(&mut self, at_ms: u64, event: X) {
        self.push(at_ms, Due::Event(event));
    }

    fn push(&mut self, at_ms: u64, item: Due<X>) {
        self.last_seq += 1;
        self.queue.push(Pending {
            at_ms,
            seq: self.last_seq,
            item,
        });
    }

    /// The earliest item and its time.
    pub fn pop(&mut self) -> Option<(u64, Due<X>)> {
        self.queue.pop().map(|p| (p.at_ms, p.item))
    }

    pub fn len(&self) -> usize {
        self.queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Decode and verify a message at its destination, as a node's peer link does.
    pub fn open(
        &mut self,
        verifier: &Verifier,
        envelope: &Envelope,
    ) -> Result<Verified<PeerMessage>, VerifyError> {
        let opened = verifier.decode_message(&envelope.bytes);
        match opened {
            Ok(_) => self.traffic.delivered += 1,
            Err(_) => self.traffic.rejected += 1,
        }
        opened
    }
}
