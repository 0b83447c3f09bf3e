//! Validly signed protocol messages and certificates that more than one suite builds by
//! hand (the verifier tests, the PBFT tests, and later the API's local certifier), so
//! that each test only spells out the part it tampers with.

use medchain_types::{
    BlockHeader, Checkpoint, Commit, CommitCertificate, CommittedBlock, Hash32, PrePrepare,
    Prepare, PreparedProof, Proposal, ReplicaId, SeqNum, Signed, ViewNum,
};

use crate::keys::TestKeys;

impl TestKeys {
    /// The pre-prepare `replica` (the primary of `view`) signs for `p` at `p.height`.
    pub fn pre_prepare(
        &self,
        view: ViewNum,
        p: &Proposal,
        replica: ReplicaId,
    ) -> Signed<PrePrepare> {
        self.sign(PrePrepare {
            view,
            seq: p.height,
            digest: p.digest(),
            replica,
        })
    }

    /// A prepared certificate for `p` in `view`: `primary`'s pre-prepare and the prepares
    /// of `backups`, in the order given (a valid one names 2f distinct backups).
    pub fn prepared_proof(
        &self,
        view: ViewNum,
        p: &Proposal,
        primary: ReplicaId,
        backups: &[u16],
    ) -> PreparedProof {
        PreparedProof {
            pre_prepare: self.pre_prepare(view, p, primary),
            prepares: backups
                .iter()
                .map(|&r| {
                    self.sign(Prepare {
                        view,
                        seq: p.height,
                        digest: p.digest(),
                        replica: ReplicaId(r),
                    })
                })
                .collect(),
        }
    }

    /// Checkpoint messages for (`seq`, `digest`) from `signers`, in the order given.
    pub fn checkpoint_proof(
        &self,
        seq: SeqNum,
        digest: Hash32,
        signers: &[u16],
    ) -> Vec<Signed<Checkpoint>> {
        signers
            .iter()
            .map(|&r| {
                self.sign(Checkpoint {
                    seq,
                    digest,
                    replica: ReplicaId(r),
                })
            })
            .collect()
    }

    /// A commit certificate over `digest` for (`view`, `height`) signed by `signers`, in
    /// the order given (callers wanting a valid certificate pass them sorted).
    pub fn certificate(
        &self,
        view: ViewNum,
        height: SeqNum,
        digest: Hash32,
        signers: &[u16],
    ) -> CommitCertificate {
        CommitCertificate {
            view,
            height,
            proposal_digest: digest,
            signatures: signers
                .iter()
                .map(|&r| {
                    let commit = Commit {
                        view,
                        seq: height,
                        digest,
                        replica: ReplicaId(r),
                    };
                    (ReplicaId(r), self.sign(commit).signature)
                })
                .collect(),
        }
    }

    /// `proposal` committed after `prev_hash`, certified in `cert_view` by `signers`.
    pub fn commit_block(
        &self,
        proposal: &Proposal,
        prev_hash: Hash32,
        cert_view: ViewNum,
        signers: &[u16],
    ) -> CommittedBlock {
        let header = proposal.header();
        CommittedBlock {
            header: BlockHeader::new(&header, prev_hash),
            requests: proposal.requests.clone(),
            certificate: self.certificate(cert_view, proposal.height, header.digest(), signers),
        }
    }
}
