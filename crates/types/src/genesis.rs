//! The genesis: who the replicas and clients are. Anyone holding it can verify the whole
//! chain offline.

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::codec::{encode, FORMAT_VERSION};
use crate::crypto::PublicKey;
use crate::ids::{Hash32, ReplicaId};

pub const GENESIS_DOMAIN: &[u8] = b"medchain/v1/genesis";

/// Most replicas a genesis may list.
pub const MAX_REPLICAS: usize = 64;
/// Most clients (API gateways) a genesis may list.
pub const MAX_CLIENTS: usize = 1024;

/// One replica: an organisation's node.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct ReplicaInfo {
    pub id: ReplicaId,
    pub organisation: String,
    pub public_key: PublicKey,
    pub peer_addr: String,
    pub http_addr: String,
}

/// An organisation's X25519 public encryption key: patient data keys are sealed to it
/// (HPKE), so that only that organisation's node can open them.
#[derive(Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct EncryptionKey(pub [u8; 32]);

impl EncryptionKey {
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parse 64 hex digits.
    pub fn from_hex(s: &str) -> Result<Self, String> {
        let bytes = hex::decode(s.trim()).map_err(|e| format!("encryption key: {e}"))?;
        let arr: [u8; 32] = bytes
            .try_into()
            .map_err(|_| "encryption key: expected 32 bytes".to_string())?;
        Ok(EncryptionKey(arr))
    }
}

impl Serialize for EncryptionKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for EncryptionKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <String as Deserialize>::deserialize(d)?;
        EncryptionKey::from_hex(&s).map_err(serde::de::Error::custom)
    }
}

impl std::fmt::Debug for EncryptionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ek:{}", &self.to_hex()[..12])
    }
}

/// A client allowed to submit requests: in production a node's API gateway.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct ClientInfo {
    pub name: String,
    pub public_key: PublicKey,
}

/// What a user may do (see the records service for the rules of each role).
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    BorshSerialize,
    BorshDeserialize,
    Serialize,
    Deserialize,
)]
#[serde(rename_all = "lowercase")]
#[borsh(use_discriminant = true)]
pub enum UserRole {
    Doctor = 0,
    Patient = 1,
    Pharmacy = 2,
    Department = 3,
}

impl UserRole {
    pub fn as_str(self) -> &'static str {
        match self {
            UserRole::Doctor => "doctor",
            UserRole::Patient => "patient",
            UserRole::Pharmacy => "pharmacy",
            UserRole::Department => "department",
        }
    }
}

/// A user known from the start: department administrators, and on demo clusters the
/// demo accounts. Later users are registered by ledger transactions.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct GenesisUser {
    pub user_id: String,
    pub role: UserRole,
    /// The organisation (replica) the user belongs to.
    pub organisation: ReplicaId,
    /// Doctors, patients and department administrators belong to a department.
    pub department: String,
    pub display_name: String,
}

/// A standing consent known from the start (demo clusters).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct GenesisConsent {
    pub patient: String,
    pub doctor: String,
}

/// Rules of the records service that a consortium fixes at its start, in the genesis,
/// so that every replica applies the same ones.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LedgerPolicy {
    /// Break-glass openings one doctor may make in any 24 hours; beyond it each one
    /// needs a second approver (another doctor or the patient's department).
    pub break_glass_per_doctor_per_day: u32,
}

impl Default for LedgerPolicy {
    fn default() -> Self {
        LedgerPolicy {
            break_glass_per_doctor_per_day: 3,
        }
    }
}

impl LedgerPolicy {
    pub fn is_default(&self) -> bool {
        *self == LedgerPolicy::default()
    }
}

/// The chain's first, unsigned, block-zero description.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Genesis {
    pub format_version: u8,
    pub chain_id: String,
    pub replicas: Vec<ReplicaInfo>,
    pub clients: Vec<ClientInfo>,
    pub users: Vec<GenesisUser>,
    pub consents: Vec<GenesisConsent>,
    /// Absent from a genesis file: the defaults.
    #[serde(default, skip_serializing_if = "LedgerPolicy::is_default")]
    pub policy: LedgerPolicy,
    /// Each organisation's encryption key, by replica index. Empty in a genesis made
    /// before patient data was encrypted: such a chain keeps its content in clear.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub encryption_keys: Vec<EncryptionKey>,
}

/// The canonical bytes the genesis hash covers. The policy is appended only when it
/// differs from the defaults or encryption keys follow it, and the keys only when there
/// are some, so that every genesis written before either existed keeps its hash (and its
/// chain keeps verifying).
impl BorshSerialize for Genesis {
    fn serialize<W: std::io::Write>(&self, w: &mut W) -> std::io::Result<()> {
        BorshSerialize::serialize(&self.format_version, w)?;
        BorshSerialize::serialize(&self.chain_id, w)?;
        BorshSerialize::serialize(&self.replicas, w)?;
        BorshSerialize::serialize(&self.clients, w)?;
        BorshSerialize::serialize(&self.users, w)?;
        BorshSerialize::serialize(&self.consents, w)?;
        if !self.policy.is_default() || !self.encryption_keys.is_empty() {
            BorshSerialize::serialize(&self.policy, w)?;
        }
        if !self.encryption_keys.is_empty() {
            BorshSerialize::serialize(&self.encryption_keys, w)?;
        }
        Ok(())
    }
}

/// Why a genesis is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GenesisError {
    #[error("format version {0} is not supported (expected {FORMAT_VERSION})")]
    Version(u8),
    #[error("{0} replicas: need 1 to {MAX_REPLICAS}")]
    ReplicaCount(usize),
    #[error("{0} clients: at most {MAX_CLIENTS}")]
    ClientCount(usize),
    #[error("replica at position {0} has id {1}; ids must be 0..n in order")]
    ReplicaOrder(usize, ReplicaId),
    #[error("two replicas or clients share a public key")]
    DuplicateKey,
    #[error("genesis user {0:?}: {1}")]
    User(String, &'static str),
    #[error("{0} encryption keys for {1} replicas: need one per organisation, or none")]
    EncryptionKeyCount(usize, usize),
    #[error("genesis consent of {0:?} to {1:?}: {2}")]
    Consent(String, String, &'static str),
}

impl Genesis {
    /// The hash block 1 links to.
    pub fn hash(&self) -> Hash32 {
        Hash32::tagged(GENESIS_DOMAIN, &encode(self))
    }

    pub fn n(&self) -> usize {
        self.replicas.len()
    }

    /// Faults tolerated: the largest f with 3f+1 <= n.
    pub fn f(&self) -> usize {
        self.n().saturating_sub(1) / 3
    }

    /// 2f+1.
    pub fn quorum(&self) -> usize {
        2 * self.f() + 1
    }

    /// Whether patient data on this chain is encrypted (its genesis names encryption
    /// keys).
    pub fn encrypts(&self) -> bool {
        !self.encryption_keys.is_empty()
    }

    /// Organisation `organisation`'s encryption key, if the chain encrypts.
    pub fn encryption_key(&self, organisation: u16) -> Option<EncryptionKey> {
        self.encryption_keys.get(usize::from(organisation)).copied()
    }

    pub fn replica_keys(&self) -> Vec<PublicKey> {
        self.replicas.iter().map(|r| r.public_key).collect()
    }

    pub fn client_keys(&self) -> Vec<PublicKey> {
        self.clients.iter().map(|c| c.public_key).collect()
    }

    /// Check the invariants every other module relies on.
    pub fn validate(&self) -> Result<(), GenesisError> {
        if self.format_version != FORMAT_VERSION {
            return Err(GenesisError::Version(self.format_version));
        }
        if self.replicas.is_empty() || self.replicas.len() > MAX_REPLICAS {
            return Err(GenesisError::ReplicaCount(self.replicas.len()));
        }
        if self.clients.len() > MAX_CLIENTS {
            return Err(GenesisError::ClientCount(self.clients.len()));
        }
        if !self.encryption_keys.is_empty() && self.encryption_keys.len() != self.replicas.len() {
            return Err(GenesisError::EncryptionKeyCount(
                self.encryption_keys.len(),
                self.replicas.len(),
            ));
        }
        for (i, r) in self.replicas.iter().enumerate() {
            if r.id.index() != i {
                return Err(GenesisError::ReplicaOrder(i, r.id));
            }
        }
        let mut keys: Vec<PublicKey> = self.replica_keys();
        keys.extend(self.client_keys());
        keys.sort();
        if keys.windows(2).any(|w| w[0] == w[1]) {
            return Err(GenesisError::DuplicateKey);
        }
        let mut seen = std::collections::HashSet::new();
        for u in &self.users {
            let bad = |why| Err(GenesisError::User(u.user_id.clone(), why));
            if !valid_user_id(&u.user_id) {
                return bad("ids are 1 to 64 letters, digits, '-', '_' or '.'");
            }
            if !seen.insert(u.user_id.as_str()) {
                return bad("listed twice");
            }
            if u.organisation.index() >= self.replicas.len() {
                return bad("organisation is not a replica");
            }
        }
        let role_of = |id: &str| self.users.iter().find(|u| u.user_id == id).map(|u| u.role);
        for c in &self.consents {
            let bad = |why| {
                Err(GenesisError::Consent(
                    c.patient.clone(),
                    c.doctor.clone(),
                    why,
                ))
            };
            if role_of(&c.patient) != Some(UserRole::Patient) {
                return bad("not a patient");
            }
            if role_of(&c.doctor) != Some(UserRole::Doctor) {
                return bad("not a doctor");
            }
        }
        Ok(())
    }
}

/// User ids: 1 to 64 ASCII letters, digits, '-', '_' or '.'.
pub fn valid_user_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn genesis() -> Genesis {
        Genesis {
            format_version: FORMAT_VERSION,
            chain_id: "policy-test".into(),
            replicas: Vec::new(),
            clients: Vec::new(),
            users: Vec::new(),
            consents: Vec::new(),
            policy: LedgerPolicy::default(),
            encryption_keys: Vec::new(),
        }
    }

    /// A genesis written before the policy existed keeps its hash (the default policy
    /// adds no bytes), a file without `policy` reads as the defaults, and a changed
    /// policy is part of what the hash covers.
    #[test]
    fn the_policy_changes_the_hash_only_when_it_is_not_the_default() {
        let g = genesis();
        let mut legacy = Vec::new();
        for part in [
            encode(&g.format_version),
            encode(&g.chain_id),
            encode(&g.replicas),
            encode(&g.clients),
            encode(&g.users),
            encode(&g.consents),
        ] {
            legacy.extend(part);
        }
        assert_eq!(g.hash(), Hash32::tagged(GENESIS_DOMAIN, &legacy));
        let text = serde_json::to_string(&g).expect("json");
        assert!(!text.contains("\"policy\""), "{text}");
        let back: Genesis = serde_json::from_str(&text).expect("reads back");
        assert!(back.policy.is_default());
        let mut strict = g.clone();
        strict.policy.break_glass_per_doctor_per_day = 1;
        assert_ne!(strict.hash(), g.hash());
    }

    /// Encryption keys are covered by the hash, and with them the policy is always
    /// written, so that keys cannot be mistaken for a policy.
    #[test]
    fn encryption_keys_change_the_hash_and_are_checked_against_the_replicas() {
        let g = genesis();
        let mut keyed = g.clone();
        keyed.encryption_keys = vec![EncryptionKey([7; 32])];
        assert_ne!(keyed.hash(), g.hash());
        let mut legacy = encode(&g);
        legacy.extend(encode(&g.policy));
        legacy.extend(encode(&keyed.encryption_keys));
        assert_eq!(keyed.hash(), Hash32::tagged(GENESIS_DOMAIN, &legacy));
        let text = serde_json::to_string(&keyed).expect("json");
        let back: Genesis = serde_json::from_str(&text).expect("reads back");
        assert_eq!(back, keyed);
        assert!(!serde_json::to_string(&g)
            .expect("json")
            .contains("encryption_keys"));
        keyed.replicas = (0..2)
            .map(|i| ReplicaInfo {
                id: ReplicaId(i),
                organisation: format!("Org {i}"),
                public_key: PublicKey([i as u8 + 1; 32]),
                peer_addr: String::new(),
                http_addr: String::new(),
            })
            .collect();
        assert_eq!(
            keyed.validate(),
            Err(GenesisError::EncryptionKeyCount(1, 2))
        );
        keyed.encryption_keys.push(EncryptionKey([8; 32]));
        assert_eq!(keyed.validate(), Ok(()));
    }
}
