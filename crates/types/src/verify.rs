//! The one place where signatures and structural limits are checked, and the only code
//! that can make a [`Verified`] value. The PBFT core accepts only `Verified` messages, so
//! "nothing changes state before it is verified" is a type error to get wrong.
//!
//! The verifier checks everything that needs no protocol state: every signature
//! (nested proofs included), signer roles (only the primary of a view pre-prepares),
//! quorum sizes of proofs and certificates, digests of attached proposals, and every
//! count and size against [`Limits`]. The core then checks what depends on its state.

use crate::block::{tx_root, CommittedBlock, Proposal};
use crate::codec::{decode, tagged_bytes};
use crate::crypto::{verify_signature, verify_signatures, PublicKey};
use crate::genesis::Genesis;
use crate::ids::{Hash32, ReplicaId, SeqNum, ViewNum};
use crate::message::*;
use crate::request::SignedRequest;

/// A value whose signatures and limits were checked by a [`Verifier`]. Only this module
/// can construct one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified<T>(T);

impl<T> Verified<T> {
    pub fn get(&self) -> &T {
        &self.0
    }
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::ops::Deref for Verified<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// Hashes of frames that passed verification recently. PBFT retransmits (votes,
/// pre-prepares with their batches, view changes with every prepared batch) every few
/// hundred milliseconds while it waits; without this, a replica under load spends its
/// CPU re-verifying the same megabytes of signatures, falls further behind, and the
/// retransmissions that should heal the cluster keep it down. Bounded: the oldest hashes
/// are forgotten first.
#[derive(Debug)]
pub struct VerifiedFrames {
    inner: std::sync::Mutex<FrameMemo>,
    capacity: usize,
}

/// The remembered hashes, and the order in which to forget them.
#[derive(Debug, Default)]
struct FrameMemo {
    known: std::collections::HashSet<Hash32>,
    oldest_first: std::collections::VecDeque<Hash32>,
}

impl VerifiedFrames {
    pub fn new(capacity: usize) -> Self {
        VerifiedFrames {
            inner: std::sync::Mutex::new(Default::default()),
            capacity: capacity.max(1),
        }
    }

    fn contains(&self, h: &Hash32) -> bool {
        self.inner
            .lock()
            .map(|g| g.known.contains(h))
            .unwrap_or(false)
    }

    fn insert(&self, h: Hash32) {
        if let Ok(mut g) = self.inner.lock() {
            if g.known.insert(h) {
                g.oldest_first.push_back(h);
                while g.oldest_first.len() > self.capacity {
                    if let Some(old) = g.oldest_first.pop_front() {
                        g.known.remove(&old);
                    }
                }
            }
        }
    }
}

/// Bounds on everything a peer can make us hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest encoded peer message.
    pub max_message_bytes: usize,
    /// Most requests in one proposal.
    pub max_batch_requests: usize,
    /// Largest request payload.
    pub max_payload_bytes: usize,
    /// Most content pieces one request may name.
    pub max_content_pieces: usize,
    /// Largest total content attached to one request.
    pub max_content_bytes: usize,
    /// The watermark window L: sequence numbers in (h, h+L] are accepted.
    pub window: u64,
    /// Most blocks in one state-transfer answer.
    pub max_fetch_blocks: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_bytes: 64 << 20,
            max_batch_requests: 1024,
            // A request is a gateway's batch of up to 256 transactions (1 MiB encoded),
            // each with at most one content piece.
            max_payload_bytes: 1 << 20,
            max_content_pieces: 256,
            max_content_bytes: 4 << 20,
            window: 256,
            max_fetch_blocks: 256,
        }
    }
}

/// Views and sequence numbers above this are rejected outright, so that arithmetic on
/// them can never overflow.
pub const MAX_SANE_NUMBER: u64 = 1 << 48;

/// Why a message was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("cannot decode: {0}")]
    Decode(#[from] crate::codec::CodecError),
    #[error("bad signature on {0}")]
    BadSignature(&'static str),
    #[error("unknown sender {0}")]
    UnknownReplica(ReplicaId),
    #[error("unknown client {0}")]
    UnknownClient(u16),
    #[error("{0} is not the primary of view {1}")]
    NotPrimary(ReplicaId, ViewNum),
    #[error("limit exceeded: {0}")]
    Limit(&'static str),
    #[error("malformed {0}")]
    Malformed(&'static str),
    #[error("digest mismatch in {0}")]
    Digest(&'static str),
    #[error("quorum not met in {0}")]
    Quorum(&'static str),
}

/// Checks messages against the genesis keys and the limits.
#[derive(Debug, Clone)]
pub struct Verifier {
    replica_keys: Vec<PublicKey>,
    client_keys: Vec<PublicKey>,
    genesis_hash: Hash32,
    f: usize,
    limits: Limits,
}

fn ensure(cond: bool, err: VerifyError) -> Result<(), VerifyError> {
    if cond {
        Ok(())
    } else {
        Err(err)
    }
}

fn sane(n: u64, what: &'static str) -> Result<(), VerifyError> {
    ensure(n < MAX_SANE_NUMBER, VerifyError::Limit(what))
}

impl Verifier {
    pub fn new(genesis: &Genesis, limits: Limits) -> Self {
        Verifier {
            replica_keys: genesis.replica_keys(),
            client_keys: genesis.client_keys(),
            genesis_hash: genesis.hash(),
            f: genesis.f(),
            limits,
        }
    }

    pub fn n(&self) -> usize {
        self.replica_keys.len()
    }
    pub fn f(&self) -> usize {
        self.f
    }
    pub fn quorum(&self) -> usize {
        2 * self.f + 1
    }
    pub fn limits(&self) -> &Limits {
        &self.limits
    }
    pub fn replica_keys(&self) -> &[PublicKey] {
        &self.replica_keys
    }

    /// The primary of `view`.
    pub fn primary(&self, view: ViewNum) -> ReplicaId {
        // max(1): a verifier over an invalid, empty genesis must not divide by zero.
        ReplicaId((view % self.n().max(1) as u64) as u16)
    }

    /// Decode a peer message (bounded by `max_message_bytes`) and verify it.
    pub fn decode_message(&self, bytes: &[u8]) -> Result<Verified<PeerMessage>, VerifyError> {
        let msg: PeerMessage = decode(bytes, self.limits.max_message_bytes)?;
        self.verify_message(msg)
    }

    /// As [`Verifier::decode_message`], but bytes identical to a frame that already
    /// passed are not verified again (a retransmission). Only frames that passed are
    /// remembered, by their SHA-256; a frame that failed is checked in full every time.
    pub fn decode_message_cached(
        &self,
        bytes: &[u8],
        seen: &VerifiedFrames,
    ) -> Result<Verified<PeerMessage>, VerifyError> {
        let h = Hash32::sha256(bytes);
        if seen.contains(&h) {
            let msg: PeerMessage = decode(bytes, self.limits.max_message_bytes)?;
            return Ok(Verified(msg));
        }
        let v = self.decode_message(bytes)?;
        seen.insert(h);
        Ok(v)
    }

    /// Verify a client request: known client, bounded payload, valid signature.
    pub fn verify_request(&self, r: SignedRequest) -> Result<Verified<SignedRequest>, VerifyError> {
        self.check_request(&r)?;
        Ok(Verified(r))
    }

    /// Sign a request as its client and check everything but the signature just made:
    /// for a node's gateway, which would otherwise verify its own signature on every
    /// batch. Refused (as a bad signature) if `key` is not the client's registered key.
    pub fn sign_request(
        &self,
        request: crate::request::Request,
        content: Vec<Vec<u8>>,
        key: &crate::crypto::KeyPair,
    ) -> Result<Verified<SignedRequest>, VerifyError> {
        let r = request.sign_with_content(key, content);
        let registered = self.check_request_unsigned(&r)?;
        ensure(
            *registered == key.public(),
            VerifyError::BadSignature("request"),
        )?;
        Ok(Verified(r))
    }

    fn check_request(&self, r: &SignedRequest) -> Result<(), VerifyError> {
        let key = self.check_request_unsigned(r)?;
        ensure(
            verify_signature(key, &r.request.signing_bytes(), &r.signature),
            VerifyError::BadSignature("request"),
        )
    }

    /// Everything about a request but its signature; returns the key to check it with.
    fn check_request_unsigned(&self, r: &SignedRequest) -> Result<&PublicKey, VerifyError> {
        let key = self
            .client_keys
            .get(usize::from(r.request.client.0))
            .ok_or(VerifyError::UnknownClient(r.request.client.0))?;
        ensure(
            r.request.payload.len() <= self.limits.max_payload_bytes,
            VerifyError::Limit("request payload"),
        )?;
        ensure(
            r.request.content_hashes.len() <= self.limits.max_content_pieces
                && r.content.iter().map(Vec::len).sum::<usize>() <= self.limits.max_content_bytes,
            VerifyError::Limit("request content"),
        )?;
        // Content is unsigned; its signed hashes vouch for it.
        ensure(r.content_matches(), VerifyError::Digest("request content"))?;
        Ok(key)
    }

    fn check_signed<T: Signable>(
        &self,
        s: &Signed<T>,
        what: &'static str,
    ) -> Result<(), VerifyError> {
        let signer = s.signer();
        let key = self
            .replica_keys
            .get(signer.index())
            .ok_or(VerifyError::UnknownReplica(signer))?;
        ensure(
            verify_signature(key, &tagged_bytes(T::DOMAIN, &s.body), &s.signature),
            VerifyError::BadSignature(what),
        )
    }

    /// A batch attached to a pre-prepare of view `view`: it may have been first proposed
    /// in an earlier view (a NEW-VIEW re-proposal), never in a later one.
    fn check_proposal(
        &self,
        p: &Proposal,
        view: ViewNum,
        seq: SeqNum,
        digest: &Hash32,
    ) -> Result<(), VerifyError> {
        ensure(p.height == seq, VerifyError::Malformed("proposal height"))?;
        ensure(
            p.view <= view,
            VerifyError::Malformed("proposal from a later view"),
        )?;
        sane(p.view, "proposal view")?;
        ensure(
            p.proposer == self.primary(p.view),
            VerifyError::NotPrimary(p.proposer, p.view),
        )?;
        ensure(
            p.requests.len() <= self.limits.max_batch_requests,
            VerifyError::Limit("batch size"),
        )?;
        ensure(p.digest() == *digest, VerifyError::Digest("proposal"))?;
        self.check_requests(&p.requests)
    }

    /// Every request of a batch, with their signatures checked together.
    fn check_requests(&self, requests: &[SignedRequest]) -> Result<(), VerifyError> {
        let mut keys = Vec::with_capacity(requests.len());
        let mut signed = Vec::with_capacity(requests.len());
        for r in requests {
            keys.push(self.check_request_unsigned(r)?);
            signed.push(r.request.signing_bytes());
        }
        let items = requests
            .iter()
            .zip(&keys)
            .zip(&signed)
            .map(|((r, k), b)| (*k, b.as_slice(), &r.signature));
        ensure(
            verify_signatures(items),
            VerifyError::BadSignature("request"),
        )
    }

    fn check_pre_prepare(&self, pp: &Signed<PrePrepare>) -> Result<(), VerifyError> {
        sane(pp.body.view, "view")?;
        sane(pp.body.seq, "seq")?;
        ensure(
            pp.body.replica == self.primary(pp.body.view),
            VerifyError::NotPrimary(pp.body.replica, pp.body.view),
        )?;
        self.check_signed(pp, "pre-prepare")
    }

    fn check_prepare(&self, p: &Signed<Prepare>) -> Result<(), VerifyError> {
        sane(p.body.view, "view")?;
        sane(p.body.seq, "seq")?;
        ensure(
            p.body.replica != self.primary(p.body.view),
            VerifyError::Malformed("prepare from the primary"),
        )?;
        self.check_signed(p, "prepare")
    }

    /// 2f prepares from distinct backups matching the pre-prepare (section 4.2's
    /// "prepared" predicate, carried as a proof).
    fn check_prepared_proof(&self, proof: &PreparedProof) -> Result<(), VerifyError> {
        self.check_pre_prepare(&proof.pre_prepare)?;
        let pp = &proof.pre_prepare.body;
        ensure(
            proof.prepares.len() >= 2 * self.f && proof.prepares.len() <= self.n(),
            VerifyError::Quorum("prepared proof"),
        )?;
        let mut last: Option<ReplicaId> = None;
        for p in &proof.prepares {
            ensure(
                p.body.view == pp.view && p.body.seq == pp.seq && p.body.digest == pp.digest,
                VerifyError::Malformed("prepared proof: mismatched prepare"),
            )?;
            ensure(
                last.is_none_or(|l| l < p.body.replica),
                VerifyError::Malformed("prepared proof: prepares not sorted"),
            )?;
            last = Some(p.body.replica);
            self.check_prepare(p)?;
        }
        Ok(())
    }

    /// Checks a view change's own signature, its checkpoint proof and its P set.
    fn check_view_change(&self, vc: &Signed<ViewChange>) -> Result<(), VerifyError> {
        let b = &vc.body;
        sane(b.new_view, "view")?;
        sane(b.stable_seq, "seq")?;
        self.check_signed(vc, "view-change")?;
        if b.stable_seq == 0 {
            ensure(
                b.checkpoint_proof.is_empty() && b.stable_digest == self.genesis_hash,
                VerifyError::Malformed("genesis checkpoint"),
            )?;
        } else {
            self.check_checkpoint_proof(&b.checkpoint_proof, b.stable_seq, &b.stable_digest)?;
        }
        ensure(
            b.prepared.len() as u64 <= self.limits.window,
            VerifyError::Limit("P set size"),
        )?;
        let mut last_seq = b.stable_seq;
        for proof in &b.prepared {
            let pp = &proof.pre_prepare.body;
            ensure(
                pp.seq > last_seq && pp.seq <= b.stable_seq + self.limits.window,
                VerifyError::Malformed("P set order or window"),
            )?;
            ensure(pp.view < b.new_view, VerifyError::Malformed("P set view"))?;
            last_seq = pp.seq;
            self.check_prepared_proof(proof)?;
        }
        Ok(())
    }

    /// 2f+1 checkpoint messages from distinct replicas for (seq, digest): a stable
    /// checkpoint (section 4.3).
    pub fn check_checkpoint_proof(
        &self,
        proof: &[Signed<Checkpoint>],
        seq: SeqNum,
        digest: &Hash32,
    ) -> Result<(), VerifyError> {
        ensure(
            proof.len() >= self.quorum() && proof.len() <= self.n(),
            VerifyError::Quorum("checkpoint proof"),
        )?;
        let mut last: Option<ReplicaId> = None;
        for c in proof {
            ensure(
                c.body.seq == seq && c.body.digest == *digest,
                VerifyError::Malformed("checkpoint proof: mismatched checkpoint"),
            )?;
            ensure(
                last.is_none_or(|l| l < c.body.replica),
                VerifyError::Malformed("checkpoint proof: not sorted"),
            )?;
            last = Some(c.body.replica);
            self.check_signed(c, "checkpoint")?;
        }
        Ok(())
    }

    /// Verify a committed block on its own: request signatures, Merkle root, proposer,
    /// and a commit certificate of 2f+1 valid signatures over this block's proposal.
    pub fn check_block(&self, block: &CommittedBlock) -> Result<(), VerifyError> {
        let h = &block.header;
        sane(h.height, "seq")?;
        sane(h.view, "view")?;
        ensure(
            block.requests.len() <= self.limits.max_batch_requests,
            VerifyError::Limit("batch size"),
        )?;
        ensure(
            h.proposer == self.primary(h.view),
            VerifyError::NotPrimary(h.proposer, h.view),
        )?;
        ensure(
            tx_root(&block.requests) == h.tx_root,
            VerifyError::Digest("merkle root"),
        )?;
        let c = &block.certificate;
        ensure(
            c.height == h.height && c.proposal_digest == h.proposal_header().digest(),
            VerifyError::Digest("certificate"),
        )?;
        c.verify(&self.replica_keys, self.quorum())
            .map_err(|_| VerifyError::Quorum("commit certificate"))?;
        self.check_requests(&block.requests)
    }

    /// A VIEW-CHANGE message: the view change itself, then the batches it carries, one
    /// per prepared proof and each matching the digest its proof names.
    fn check_view_change_message(
        &self,
        view_change: &Signed<ViewChange>,
        proposals: &[Proposal],
    ) -> Result<(), VerifyError> {
        self.check_view_change(view_change)?;
        let prepared = &view_change.body.prepared;
        ensure(
            proposals.len() == prepared.len(),
            VerifyError::Malformed("view-change proposals"),
        )?;
        for (proof, p) in prepared.iter().zip(proposals) {
            let pp = &proof.pre_prepare.body;
            self.check_proposal(p, pp.view, pp.seq, &pp.digest)?;
        }
        Ok(())
    }

    /// A NEW-VIEW message: sent by the new view's primary, carrying a quorum of sorted
    /// view changes for that view and an O set of pre-prepares in that view, each with
    /// its batch.
    fn check_new_view(
        &self,
        new_view: &Signed<NewView>,
        proposals: &[Proposal],
    ) -> Result<(), VerifyError> {
        let b = &new_view.body;
        sane(b.view, "view")?;
        ensure(
            b.replica == self.primary(b.view),
            VerifyError::NotPrimary(b.replica, b.view),
        )?;
        self.check_signed(new_view, "new-view")?;
        ensure(
            b.view_changes.len() >= self.quorum() && b.view_changes.len() <= self.n(),
            VerifyError::Quorum("new-view"),
        )?;
        let mut last: Option<ReplicaId> = None;
        for vc in &b.view_changes {
            ensure(
                vc.body.new_view == b.view,
                VerifyError::Malformed("new-view: view change for another view"),
            )?;
            ensure(
                last.is_none_or(|l| l < vc.body.replica),
                VerifyError::Malformed("new-view: view changes not sorted"),
            )?;
            last = Some(vc.body.replica);
            self.check_view_change(vc)?;
        }
        ensure(
            b.pre_prepares.len() as u64 <= self.limits.window
                && proposals.len() == b.pre_prepares.len(),
            VerifyError::Limit("O set size"),
        )?;
        for (pp, p) in b.pre_prepares.iter().zip(proposals) {
            ensure(pp.body.view == b.view, VerifyError::Malformed("O set view"))?;
            self.check_pre_prepare(pp)?;
            self.check_proposal(p, pp.body.view, pp.body.seq, &pp.body.digest)?;
        }
        Ok(())
    }

    /// Verify every signature and limit in a peer message.
    pub fn verify_message(&self, msg: PeerMessage) -> Result<Verified<PeerMessage>, VerifyError> {
        match &msg {
            PeerMessage::Request(r) => self.check_request(r)?,
            PeerMessage::PrePrepare {
                pre_prepare,
                proposal,
            } => {
                self.check_pre_prepare(pre_prepare)?;
                self.check_proposal(
                    proposal,
                    pre_prepare.body.view,
                    pre_prepare.body.seq,
                    &pre_prepare.body.digest,
                )?;
            }
            PeerMessage::Prepare(p) => self.check_prepare(p)?,
            PeerMessage::Commit(c) => {
                sane(c.body.view, "view")?;
                sane(c.body.seq, "seq")?;
                self.check_signed(c, "commit")?;
            }
            PeerMessage::Checkpoint(c) => {
                sane(c.body.seq, "seq")?;
                self.check_signed(c, "checkpoint")?;
            }
            PeerMessage::ViewChange {
                view_change,
                proposals,
            } => self.check_view_change_message(view_change, proposals)?,
            PeerMessage::NewView {
                new_view,
                proposals,
            } => self.check_new_view(new_view, proposals)?,
            PeerMessage::Status(s) => {
                sane(s.body.view, "view")?;
                sane(s.body.last_executed, "seq")?;
                sane(s.body.stable_seq, "seq")?;
                self.check_signed(s, "status")?;
            }
            PeerMessage::FetchBlocks(fb) => {
                sane(fb.body.from_height, "seq")?;
                self.check_signed(fb, "fetch-blocks")?;
            }
            PeerMessage::Blocks(blocks) => {
                ensure(
                    blocks.len() <= self.limits.max_fetch_blocks,
                    VerifyError::Limit("blocks per answer"),
                )?;
                blocks.iter().try_for_each(|b| self.check_block(b))?;
            }
        }
        Ok(Verified(msg))
    }
}
