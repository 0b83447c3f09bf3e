//! This organisation's view of its patients' data keys: it opens the keys the ledger
//! holds sealed to it (with the organisation's X25519 secret, never written anywhere by
//! this node), caches them in memory (zeroized when dropped), encrypts new content under
//! the patient's current epoch and decrypts what it reads. Nothing here writes a key or
//! plaintext to disk.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use medchain_records::query;
use medchain_records::sealed::{key_aad, open_record, ContentOpener, StoredContent};
use medchain_records::RecordContent;
use medchain_seal::{DataKey, OrgPublicKey, OrgSecretKey, SealError, SealedKey};
use medchain_store::rusqlite::{self, Connection};
use medchain_types::Genesis;

/// Most opened data keys kept in memory; past it the cache starts again (opening a key
/// is one X25519 operation, ~50 µs).
const CACHE_MAX_KEYS: usize = 16_384;

/// What a node shows for a patient's name it holds no key for.
pub const SEALED_NAME_PLACEHOLDER: &str = "(name sealed)";

/// Why this node cannot encrypt for a patient now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoKey {
    /// The patient has no data key yet (their home organisation makes it).
    NotYetMade,
    /// The patient's current key epoch has not been shared with this organisation (it
    /// is not entitled, or the home organisation has not sealed it yet).
    NotShared,
    /// An organisation holding the current epoch is no longer entitled (consent revoked
    /// or expired, break-glass over): new content waits for the next epoch.
    RotationDue { next_epoch: u32 },
}

/// The key a writer encrypts a patient's new content under.
pub enum WritingKey {
    /// The chain keeps content in clear (its genesis has no encryption keys).
    Clear,
    Sealed {
        epoch: u32,
        key: Arc<DataKey>,
    },
}

impl std::fmt::Debug for WritingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WritingKey::Clear => f.write_str("Clear"),
            WritingKey::Sealed { epoch, .. } => write!(f, "Sealed {{ epoch: {epoch}, .. }}"),
        }
    }
}

/// The organisation's key holder.
pub struct PatientKeys {
    organisation: u16,
    /// Each organisation's encryption key in the genesis, by replica index (empty: in
    /// clear); a rotation on the ledger may have replaced some (`current_key_of`).
    genesis_keys: Vec<medchain_types::EncryptionKey>,
    /// This organisation's secrets with their public halves: the current one, and during
    /// a key rotation the other (copies sealed to either open).
    secrets: Vec<(OrgSecretKey, OrgPublicKey)>,
    /// Opened data keys by the hash of their sealed bytes.
    cache: Mutex<HashMap<Vec<u8>, Arc<DataKey>>>,
    /// Patients' names as opened here, by user id: the in-memory index name search
    /// reads (names are never written in clear).
    names: Mutex<HashMap<String, String>>,
    /// Patients being registered here whose first key (already sealing their name) is
    /// about to be published: no other first key may be made for them meanwhile.
    registering: Mutex<std::collections::HashSet<String>>,
    /// Genesis patients' first keys still to publish (`medchain init` leaves them).
    first_keys: crate::first_keys::FirstKeys,
}

impl std::fmt::Debug for PatientKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "PatientKeys {{ organisation: {}, encrypts: {}, .. }}",
            self.organisation,
            self.encrypts()
        )
    }
}

impl PatientKeys {
    /// The key holder of `organisation` on the chain of `genesis`. A chain with
    /// encryption keys needs this organisation's secret; one of `secrets` must be the
    /// key the ledger lists for it now (`current`: the genesis's, or the last rotation's).
    pub fn new(
        genesis: &Genesis,
        organisation: u16,
        current: Option<[u8; 32]>,
        secrets: Vec<OrgSecretKey>,
    ) -> Result<PatientKeys, String> {
        let mut pairs = Vec::new();
        if genesis.encryption_key(organisation).is_some() {
            if secrets.is_empty() {
                return Err(
                    "the genesis names encryption keys: configure this organisation's \
                     encryption_key (or MEDCHAIN_ENCRYPTION_KEY)"
                        .into(),
                );
            }
            for sk in secrets {
                let public = sk.public().map_err(|e| e.to_string())?;
                pairs.push((sk, public));
            }
            if !pairs.iter().any(|(_, p)| Some(p.0) == current) {
                return Err("encryption_key is not the key the ledger lists for this \
                     organisation (after a rotation, keep the new key beside the old one \
                     as encryption_key with the suffix .next)"
                    .into());
            }
        }
        Ok(PatientKeys {
            organisation,
            genesis_keys: genesis.encryption_keys.clone(),
            secrets: pairs,
            cache: Mutex::new(HashMap::new()),
            names: Mutex::new(HashMap::new()),
            registering: Mutex::new(std::collections::HashSet::new()),
            first_keys: crate::first_keys::FirstKeys::default(),
        })
    }

    /// A holder for a chain that keeps content in clear.
    pub fn clear(organisation: u16) -> PatientKeys {
        PatientKeys {
            organisation,
            genesis_keys: Vec::new(),
            secrets: Vec::new(),
            cache: Mutex::new(HashMap::new()),
            names: Mutex::new(HashMap::new()),
            registering: Mutex::new(std::collections::HashSet::new()),
            first_keys: crate::first_keys::FirstKeys::default(),
        }
    }

    /// The genesis patients' first keys this node is to publish.
    pub fn with_first_keys(mut self, first_keys: crate::first_keys::FirstKeys) -> PatientKeys {
        self.first_keys = first_keys;
        self
    }

    pub fn first_keys(&self) -> &crate::first_keys::FirstKeys {
        &self.first_keys
    }

    pub fn encrypts(&self) -> bool {
        !self.secrets.is_empty()
    }

    pub fn organisation(&self) -> u16 {
        self.organisation
    }

    /// The patient's data key of `epoch` as sealed to this organisation, opened.
    pub fn epoch_key(
        &self,
        conn: &Connection,
        patient: &str,
        epoch: u32,
    ) -> rusqlite::Result<Option<Arc<DataKey>>> {
        if !self.encrypts() {
            return Ok(None);
        }
        let Some(copy) = query::patient_key(conn, patient, epoch, self.organisation)? else {
            return Ok(None);
        };
        let (height, hash) = (copy.height, copy.hash);
        let sealed_to = copy.recipient_key.or_else(|| {
            self.genesis_keys
                .get(usize::from(self.organisation))
                .map(|k| k.0.to_vec())
        });
        let Some((sk, _)) = self
            .secrets
            .iter()
            .find(|(_, p)| sealed_to.as_deref() == Some(&p.0[..]))
        else {
            tracing::warn!(
                patient,
                epoch,
                "a patient key is sealed to a key this node lacks"
            );
            return Ok(None);
        };
        if let Some(k) = self.lock().get(&hash) {
            return Ok(Some(Arc::clone(k)));
        }
        let Some(sealed) = query::content_bytes(conn, height, &hash)? else {
            return Ok(None); // erased
        };
        let Ok(key) =
            medchain_seal::sealed::open_key(sk, &key_aad(patient, epoch), &SealedKey(sealed))
        else {
            tracing::warn!(patient, epoch, "a sealed patient key does not open");
            return Ok(None);
        };
        let key = Arc::new(key);
        self.remember(hash, Arc::clone(&key));
        Ok(Some(key))
    }

    /// The key new content of `patient` is encrypted under: the current epoch's, if
    /// this organisation holds it.
    pub fn writing_key(
        &self,
        conn: &Connection,
        patient: &str,
        now_ms: u64,
    ) -> rusqlite::Result<Result<WritingKey, NoKey>> {
        if !self.encrypts() {
            return Ok(Ok(WritingKey::Clear));
        }
        let Some(epoch) = query::current_key_epoch(conn, patient)? else {
            return Ok(Err(NoKey::NotYetMade));
        };
        let home = medchain_records::user(conn, patient)?.map(|u| u.organisation);
        let entitled = medchain_records::policy::entitled_organisations(conn, patient, now_ms)?;
        let holders = query::key_holders(conn, patient, epoch)?;
        if holders
            .iter()
            .any(|o| Some(*o) != home && !entitled.contains(o))
        {
            return Ok(Err(NoKey::RotationDue {
                next_epoch: epoch + 1,
            }));
        }
        Ok(match self.epoch_key(conn, patient, epoch)? {
            Some(key) => Ok(WritingKey::Sealed { epoch, key }),
            None => Err(NoKey::NotShared),
        })
    }

    /// Epochs of `patient` this organisation holds no key of: content under them
    /// cannot be read here yet.
    pub fn missing_epochs(&self, conn: &Connection, patient: &str) -> rusqlite::Result<Vec<u32>> {
        if !self.encrypts() {
            return Ok(Vec::new());
        }
        let Some(current) = query::current_key_epoch(conn, patient)? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for epoch in 0..=current {
            if query::patient_key(conn, patient, epoch, self.organisation)?.is_none() {
                out.push(epoch);
            }
        }
        Ok(out)
    }

    /// Seal `key` (the patient's data key of `epoch`) to `to`, an organisation's current
    /// key (`current_key_of`).
    pub fn seal_to(
        &self,
        to: [u8; 32],
        patient: &str,
        epoch: u32,
        key: &DataKey,
    ) -> Result<Vec<u8>, SealError> {
        Ok(medchain_seal::sealed::seal_key(&OrgPublicKey(to), &key_aad(patient, epoch), key)?.0)
    }

    /// Organisation `organisation`'s encryption key now, as the ledger says.
    pub fn current_key_of(
        &self,
        conn: &Connection,
        organisation: u16,
    ) -> rusqlite::Result<Option<[u8; 32]>> {
        medchain_records::policy::organisation_key(conn, &self.genesis_keys, organisation)
    }

    /// Keep a key this node has just made, under the hash its sealed copy will have.
    pub fn remember(&self, sealed_hash: Vec<u8>, key: Arc<DataKey>) {
        let mut cache = self.lock();
        if cache.len() >= CACHE_MAX_KEYS {
            cache.clear();
        }
        cache.insert(sealed_hash, key);
    }

    /// Drop every cached key and name (an erasure, or a key rotation).
    pub fn forget_all(&self) {
        self.lock().clear();
        self.names_lock().clear();
    }

    /// A user's display name as this node may show it: a patient's sealed name opened
    /// with the patient's key (or a placeholder when this organisation holds none), any
    /// other name as stored.
    pub fn display_name(&self, conn: &Connection, user_id: &str, stored: &str) -> String {
        let Some((epoch, envelope)) = medchain_records::sealed::sealed_name_parts(stored) else {
            return stored.to_string();
        };
        if let Some(n) = self.names_lock().get(user_id) {
            return n.clone();
        }
        let opened = self
            .epoch_key(conn, user_id, epoch)
            .ok()
            .flatten()
            .and_then(|k| medchain_records::sealed::open_name(&k, user_id, &envelope));
        match opened {
            Some(name) => {
                let mut names = self.names_lock();
                if names.len() >= CACHE_MAX_KEYS {
                    names.clear();
                }
                names.insert(user_id.to_string(), name.clone());
                name
            }
            None => SEALED_NAME_PLACEHOLDER.to_string(),
        }
    }

    /// Mark `patient` as being registered (their first key is this node's to publish);
    /// `false` if already marked.
    pub fn start_registering(&self, patient: &str) -> bool {
        self.registering_lock().insert(patient.to_string())
    }

    pub fn done_registering(&self, patient: &str) {
        self.registering_lock().remove(patient);
    }

    pub fn is_registering(&self, patient: &str) -> bool {
        self.registering_lock().contains(patient)
    }

    fn registering_lock(&self) -> std::sync::MutexGuard<'_, std::collections::HashSet<String>> {
        self.registering
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn names_lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        self.names
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Vec<u8>, Arc<DataKey>>> {
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl ContentOpener for PatientKeys {
    fn open(
        &self,
        conn: &Connection,
        patient: &str,
        record_id: &str,
        bytes: &[u8],
    ) -> Option<RecordContent> {
        match StoredContent::parse(bytes) {
            StoredContent::Clear(c) => Some(c),
            StoredContent::Sealed {
                epoch, envelope, ..
            } => {
                let key = self.epoch_key(conn, patient, epoch).ok()??;
                open_record(&key, patient, record_id, envelope)
            }
            StoredContent::Unreadable => None,
        }
    }

    fn open_reason(&self, patient: &str, piece: &[u8]) -> Option<String> {
        let secrets: Vec<&OrgSecretKey> = self.secrets.iter().map(|(sk, _)| sk).collect();
        medchain_records::sealed::open_reason(piece, self.organisation, &secrets, patient)
    }
}
