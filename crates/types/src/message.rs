//! PBFT protocol messages (Castro & Liskov, OSDI 1999, section 4), each signed by its
//! sender under its own domain-separation tag.
//!
//! Small votes (PRE-PREPARE, PREPARE, COMMIT, CHECKPOINT) carry digests only, so they can
//! be nested as proofs inside VIEW-CHANGE and NEW-VIEW; the batches they name travel
//! beside them as unsigned [`Proposal`]s whose digest the receiver recomputes.

use borsh::{BorshDeserialize, BorshSerialize};

use crate::block::{CommittedBlock, Proposal};
use crate::ids::{Hash32, ReplicaId, SeqNum, ViewNum};
use crate::request::SignedRequest;
use crate::signed::signable;

pub use crate::signed::*;

/// A pre-prepare and 2f matching prepares from distinct backups: proof that
/// (view, seq, digest) was prepared (the P set entries of section 4.4).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct PreparedProof {
    pub pre_prepare: Signed<PrePrepare>,
    pub prepares: Vec<Signed<Prepare>>,
}

/// VIEW-CHANGE (section 4.4): the sender's stable checkpoint with its 2f+1 proof, and
/// what it prepared above it.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct ViewChange {
    pub new_view: ViewNum,
    pub stable_seq: SeqNum,
    pub stable_digest: Hash32,
    /// Empty when `stable_seq` is 0 (the genesis needs no proof).
    pub checkpoint_proof: Vec<Signed<Checkpoint>>,
    /// Sorted by sequence number, one entry per sequence number.
    pub prepared: Vec<PreparedProof>,
    pub replica: ReplicaId,
}
signable!(ViewChange, VIEW_CHANGE_DOMAIN);

/// NEW-VIEW (section 4.4): 2f+1 view changes and the O set the new primary computed.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct NewView {
    pub view: ViewNum,
    /// Sorted by sender.
    pub view_changes: Vec<Signed<ViewChange>>,
    /// The O set, sorted by sequence number, one per number in (min-s, max-s].
    pub pre_prepares: Vec<Signed<PrePrepare>>,
    pub replica: ReplicaId,
}
signable!(NewView, NEW_VIEW_DOMAIN);

/// A periodic heartbeat that lets a lagging replica notice it is behind (and fetch
/// blocks) or in an old view (and be sent the current NEW-VIEW).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Status {
    pub view: ViewNum,
    pub in_view_change: bool,
    pub last_executed: SeqNum,
    pub stable_seq: SeqNum,
    pub replica: ReplicaId,
}
signable!(Status, STATUS_DOMAIN);

/// State transfer: "send me committed blocks from `from_height`".
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct FetchBlocks {
    pub from_height: SeqNum,
    pub max_blocks: u32,
    pub replica: ReplicaId,
}
signable!(FetchBlocks, FETCH_BLOCKS_DOMAIN);

/// Everything replicas send each other.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum PeerMessage {
    /// A client request, sent by a client or forwarded by a backup to the primary.
    Request(SignedRequest),
    PrePrepare {
        pre_prepare: Signed<PrePrepare>,
        proposal: Proposal,
    },
    Prepare(Signed<Prepare>),
    Commit(Signed<Commit>),
    Checkpoint(Signed<Checkpoint>),
    ViewChange {
        view_change: Signed<ViewChange>,
        /// The batches its prepared proofs name, one per proof, same order.
        proposals: Vec<Proposal>,
    },
    NewView {
        new_view: Signed<NewView>,
        /// One batch per O entry, same order (`Proposal::null` for a gap).
        proposals: Vec<Proposal>,
    },
    Status(Signed<Status>),
    FetchBlocks(Signed<FetchBlocks>),
    /// State-transfer answer: consecutive committed blocks, each self-certifying.
    Blocks(Vec<CommittedBlock>),
}

impl PeerMessage {
    /// A short name for traces and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            PeerMessage::Request(_) => "request",
            PeerMessage::PrePrepare { .. } => "pre-prepare",
            PeerMessage::Prepare(_) => "prepare",
            PeerMessage::Commit(_) => "commit",
            PeerMessage::Checkpoint(_) => "checkpoint",
            PeerMessage::ViewChange { .. } => "view-change",
            PeerMessage::NewView { .. } => "new-view",
            PeerMessage::Status(_) => "status",
            PeerMessage::FetchBlocks(_) => "fetch-blocks",
            PeerMessage::Blocks(_) => "blocks",
        }
    }
}
