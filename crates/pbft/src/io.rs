//! What goes into `Replica::step` and what comes out.

use medchain_types::{
    ClientId, CommittedBlock, PeerMessage, ReplicaId, SeqNum, SignedRequest, Verified, ViewNum,
};

use crate::durable::DurableRecord;

/// An input to the state machine. Messages must have passed the verifier.
#[derive(Debug)]
pub enum Input {
    /// A message from a peer replica (or a client request forwarded by one).
    Message(Verified<PeerMessage>),
    /// A request from a local client.
    ClientRequest(Verified<SignedRequest>),
    /// Time passed; check timers.
    Tick,
}

/// The answer to a client: its request is executed in block `height` (the host has the
/// block, and so its hash, once it has carried out the preceding `Commit`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub replica: ReplicaId,
    pub client: ClientId,
    pub request_id: u64,
    pub height: SeqNum,
    /// True when this answers a client's retransmission of an already executed request.
    pub retransmission: bool,
}

/// Something the caller must do, in the order given: a `Persist` must be durable before
/// any later `Send`/`Broadcast` leaves the process.
#[derive(Debug, Clone)]
pub enum Output {
    Persist(DurableRecord),
    Send {
        to: ReplicaId,
        message: PeerMessage,
    },
    Broadcast(PeerMessage),
    /// Persist and execute the next block (heights arrive consecutively).
    Commit(CommittedBlock),
    Reply(Reply),
    /// Read committed blocks from storage and send them to `to` as `PeerMessage::Blocks`.
    ReadBlocks {
        to: ReplicaId,
        from_height: SeqNum,
        max_blocks: usize,
    },
    /// Informational: the replica entered normal operation in `view`.
    ViewInstalled {
        view: ViewNum,
    },
}
