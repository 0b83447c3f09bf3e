//! The records service's transactions: what a request payload means once the ledger has
//! ordered it. Encoded with the same canonical codec as everything else that is signed.

use borsh::{BorshDeserialize, BorshSerialize};
use medchain_types::{Hash32, UserRole};
use serde::{Deserialize, Serialize};

use crate::limits::BATCH_MAX_TXS;

/// Who asks: a user the gateway has authenticated, or the organisation's operator (the
/// CLI's user administration, acting for the node that signs the request).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum Actor {
    User(String),
    Operator,
}

/// A transaction with the actor the submitting gateway vouches for.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Envelope {
    pub actor: Actor,
    pub tx: Transaction,
}

/// What a request's payload holds: transactions executed in order, each on its own (one
/// refused transaction does not undo the others) and each with its own outcome, keyed by
/// its index. A single transaction is a batch of one.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Batch(pub Vec<Envelope>);

impl Batch {
    /// The canonical payload bytes.
    pub fn encode(&self) -> Vec<u8> {
        medchain_types::encode(self)
    }

    /// The payload of a batch of one.
    pub fn one(env: &Envelope) -> Vec<u8> {
        // Borsh: a u32 count, then the element; no clone of the envelope needed.
        let mut out = 1u32.to_le_bytes().to_vec();
        out.extend_from_slice(&medchain_types::encode(env));
        out
    }

    /// The payload of a batch whose envelopes were encoded one by one (a gateway encodes
    /// each as it arrives, then joins them): the same bytes as `Batch(envs).encode()`.
    pub fn join_encoded(encoded: &[&[u8]]) -> Vec<u8> {
        // Borsh: a u32 count, then the elements.
        let mut out = Vec::with_capacity(4 + encoded.iter().map(|e| e.len()).sum::<usize>());
        out.extend_from_slice(&(encoded.len() as u32).to_le_bytes());
        for e in encoded {
            out.extend_from_slice(e);
        }
        out
    }

    /// How many transactions a payload claims to hold, read from its count prefix
    /// without decoding it (for metrics; 0 when the payload is too short to say).
    pub fn count_in(payload: &[u8]) -> usize {
        payload
            .get(..4)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map_or(0, |b| u32::from_le_bytes(b) as usize)
            .min(BATCH_MAX_TXS)
    }
}

/// To whom a patient grants consent.
#[derive(
    Clone, Debug, PartialEq, Eq, Hash, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
#[serde(tag = "kind", content = "id", rename_all = "lowercase")]
pub enum Grantee {
    Doctor(String),
    /// A department of the patient's own home organisation (departments are named per
    /// organisation; this is what every consent to a department meant before
    /// `DepartmentOf`).
    Department(String),
    Pharmacy(String),
    /// A department of any organisation.
    DepartmentOf {
        organisation: u16,
        department: String,
    },
}

impl Grantee {
    pub fn kind(&self) -> &'static str {
        match self {
            Grantee::Doctor(_) => "doctor",
            Grantee::Department(_) | Grantee::DepartmentOf { .. } => "department",
            Grantee::Pharmacy(_) => "pharmacy",
        }
    }

    /// The user or department named (without its organisation).
    pub fn name(&self) -> &str {
        match self {
            Grantee::Doctor(s) | Grantee::Department(s) | Grantee::Pharmacy(s) => s,
            Grantee::DepartmentOf { department, .. } => department,
        }
    }
}

/// One ledger transaction of the records service.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum Transaction {
    RegisterUser {
        user_id: String,
        role: UserRole,
        department: String,
        display_name: String,
    },
    DeactivateUser {
        user_id: String,
    },
    /// The actor (a patient) grants consent, optionally until `expires_at_ms`.
    GrantConsent {
        grantee: Grantee,
        expires_at_ms: Option<u64>,
    },
    RevokeConsent {
        grantee: Grantee,
    },
    /// The actor (a patient) creates a one-time consent code; only its hash is public.
    CreateConsentCode {
        code_hash: Hash32,
    },
    /// The actor (a doctor) adds a record; its clinical content is the request's first
    /// content piece (`content_hash`).
    AddRecord {
        record_id: String,
        patient: String,
        content_hash: Hash32,
        /// A one-time consent code the patient gave the doctor, consumed by this record.
        consent_code: Option<String>,
        /// The record this one corrects (records are never edited in place).
        amends: Option<String>,
        /// Hash of the prescription code a pharmacy may present; present iff the record
        /// prescribes something.
        prescription_code_hash: Option<Hash32>,
    },
    /// The actor (a pharmacy) dispenses the prescription of `record_id`.
    Dispense {
        record_id: String,
        /// The prescription code's proof (`prescription_code_proof`), when the patient
        /// presents the code instead of consenting.
        code: Option<String>,
    },
    /// The actor read `patient`'s data: the audit trail is itself on the ledger.
    AuditRead {
        patient: String,
        action: String,
        reason: String,
    },
    /// The actor (a doctor) opens `patient`'s records without consent.
    BreakGlass {
        patient: String,
        reason: String,
        duration_ms: u64,
    },
    /// Nothing but a block: `validate_block` with no pending records.
    Marker,
    /// The actor (another doctor, or the patient's department) approves one break-glass
    /// opening of `doctor` on `patient` beyond the doctor's daily limit.
    ApproveBreakGlass {
        doctor: String,
        patient: String,
    },
    /// The actor (the patient's department) reviews break-glass event `id`.
    ReviewBreakGlass {
        id: u64,
        note: String,
    },
    /// The actor proposes a sensitive action of its organisation; it executes only once
    /// the approvers its rule names have signed it (the proposer's signature counts),
    /// within `ttl_ms` of this block.
    Propose {
        proposal_id: String,
        action: ProposedAction,
        ttl_ms: u64,
    },
    /// The actor approves proposal `proposal_id`; the approval that completes it
    /// executes the action in the same block.
    ApproveProposal {
        proposal_id: String,
    },
    /// The actor (the patient's department) reviews access-monitor alert `alert_id` on a
    /// read of `patient`'s data: justified or a violation, with a note.
    ReviewAlert {
        alert_id: String,
        patient: String,
        outcome: ReviewOutcome,
        note: String,
    },
    /// The patient's home organisation, acting for the patient (the actor), publishes
    /// the patient's data key of `epoch` sealed to `organisation` (HPKE to its key in the
    /// genesis); the sealed bytes are the request's content piece `sealed_hash`. Epoch 0,
    /// and each new epoch, starts with the home organisation's own copy; an older epoch
    /// is shared only with an organisation entitled to read now (consent, break-glass).
    SharePatientKey {
        epoch: u32,
        organisation: u16,
        sealed_hash: Hash32,
    },
}

/// A department's verdict on an access-monitor alert.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum ReviewOutcome {
    Justified,
    Violation,
}

impl ReviewOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            ReviewOutcome::Justified => "justified",
            ReviewOutcome::Violation => "violation",
        }
    }
}

/// The audit reason of a department administrator's reads of its patients' data (its
/// lists: activity, audit, alerts).
pub const DEPARTMENT_READ_REASON: &str = "department";

/// The approver id under which an organisation's operator signs a proposal: no user id
/// contains an '@'.
pub const OPERATOR_APPROVER: &str = "@operator";

/// What a proposal does once approved. Each kind has its approval rule (see
/// `rules/proposals.rs`).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ProposedAction {
    /// Register a department administrator of the proposer's organisation.
    RegisterAdministrator {
        user_id: String,
        department: String,
        display_name: String,
    },
    /// Deactivate a department administrator of the proposer's organisation.
    DeactivateAdministrator { user_id: String },
    /// Erase a patient's data (crypto-shredding): asked by the patient, approved by
    /// their department. `sealed_reason` is the patient's reason, hex of an envelope
    /// under the patient's data key, so that it is shredded with everything else.
    ErasePatient {
        patient: String,
        sealed_reason: String,
    },
    /// Open break-glass access beyond the doctor's daily limit: the doctor (the proposer)
    /// asks, another doctor of their organisation or the patient's department co-signs,
    /// and the opening executes with that second signature.
    OpenBreakGlass {
        patient: String,
        reason: String,
        duration_ms: u64,
    },
    /// Replace the proposer's organisation's X25519 encryption key (hex) with a new one:
    /// an organisation-level change, so its operator proposes and the operators of 2f+1
    /// organisations (its own among them) must sign. Patient keys sealed to the old key
    /// are then sealed again to the new one by each patient's home organisation.
    RotateEncryptionKey {
        organisation: u16,
        public_key: String,
    },
}

/// The approver id under which organisation `org`'s operator signs an organisation-level
/// proposal (one signature per organisation).
pub fn organisation_approver(org: u16) -> String {
    format!("@operator:{org}")
}

impl ProposedAction {
    pub fn kind(&self) -> &'static str {
        match self {
            ProposedAction::RegisterAdministrator { .. } => "register_administrator",
            ProposedAction::DeactivateAdministrator { .. } => "deactivate_administrator",
            ProposedAction::ErasePatient { .. } => "erase_patient",
            ProposedAction::OpenBreakGlass { .. } => "open_break_glass",
            ProposedAction::RotateEncryptionKey { .. } => "rotate_encryption_key",
        }
    }

    /// The user the action is about (none for an organisation-level change).
    pub fn target(&self) -> &str {
        match self {
            ProposedAction::RotateEncryptionKey { .. } => "",
            ProposedAction::RegisterAdministrator { user_id, .. }
            | ProposedAction::DeactivateAdministrator { user_id } => user_id,
            ProposedAction::ErasePatient { patient, .. }
            | ProposedAction::OpenBreakGlass { patient, .. } => patient,
        }
    }
}

/// The clinical content of a record, stored content-addressed (the ledger holds its hash).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct RecordContent {
    pub department: String,
    pub diagnosis: String,
    pub prescription: String,
    pub notes: String,
    #[serde(default)]
    pub medications: Vec<Medication>,
}

/// One structured medication line of a prescription.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Medication {
    pub name: String,
    #[serde(default)]
    pub dose: String,
    #[serde(default)]
    pub route: String,
    #[serde(default)]
    pub frequency: String,
    #[serde(default)]
    pub duration: String,
    #[serde(default)]
    pub quantity: String,
}

impl RecordContent {
    /// The bytes that are hashed and stored (JSON, in field order).
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        serde_json::from_slice(bytes).ok()
    }
    pub fn prescribes(&self) -> bool {
        !self.prescription.trim().is_empty() || !self.medications.is_empty()
    }
}

/// Hash under which a one-time consent code is published: bound to the patient, so a
/// code is useless for anyone else's records.
pub fn consent_code_hash(patient: &str, code: &str) -> Hash32 {
    Hash32::tagged(
        b"medchain/v1/consent-code",
        format!("{patient}\n{}", normalise_code(code)).as_bytes(),
    )
}

/// Hash under which a prescription code is published.
pub fn prescription_code_hash(code: &str) -> Hash32 {
    Hash32::tagged(
        b"medchain/v1/prescription-code",
        normalise_code(code).as_bytes(),
    )
}

/// What the ledger sees of a prescription code: its proof (`medchain_seal::prescription`),
/// hashed in the record ([`prescription_code_hash`] of it) and given in clear to dispense.
/// The code itself, which also derives the key of the prescription's medication lines,
/// stays with the patient, the doctor and the pharmacy.
pub fn prescription_code_proof(code: &str) -> String {
    medchain_seal::prescription::prescription_proof(&normalise_code(code))
}

/// Codes are read aloud and typed: ignore case, spaces and dashes.
pub fn normalise_code(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joined_and_single_payloads_are_the_batch_encoding() {
        let envs: Vec<Envelope> = (0..3)
            .map(|i| Envelope {
                actor: Actor::User(format!("d00{i}")),
                tx: Transaction::Marker,
            })
            .collect();
        let encoded: Vec<Vec<u8>> = envs.iter().map(medchain_types::encode).collect();
        let parts: Vec<&[u8]> = encoded.iter().map(Vec::as_slice).collect();
        let payload = Batch::join_encoded(&parts);
        assert_eq!(payload, Batch(envs.clone()).encode());
        assert_eq!(Batch::one(&envs[0]), Batch(vec![envs[0].clone()]).encode());
        assert_eq!(Batch::count_in(&payload), 3);
    }
}
