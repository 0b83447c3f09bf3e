//! Patient data readable only by those entitled. Clinical content, names and free-text
//! reasons are encrypted by the patient's home organisation before they reach consensus,
//! under a per-patient data key; the data key is sealed to each organisation entitled to
//! read (its X25519 key from the genesis), and a prescription's medication lines are also
//! sealed under a key derived from its prescription code. Erasure is then the deletion of
//! the sealed keys (crypto-shredding).
//!
//! Map: [`envelope`] is the AEAD format for content (XChaCha20-Poly1305, random nonces,
//! bound to where it belongs by associated data); [`keys`] the data keys and their
//! derivation (HKDF-SHA256), zeroized on drop; [`sealed`] sealing a data key to an
//! organisation (HPKE, RFC 9180: DHKEM-X25519, HKDF-SHA256, ChaCha20-Poly1305);
//! [`prescription`] the key a prescription code opens and the proof it gives the ledger
//! (HKDF-SHA256 over a 125-bit code, the key salted by the record id). No primitive here is hand-made: this crate only composes RustCrypto and `hpke`.

pub mod envelope;
pub mod keys;
pub mod prescription;
pub mod sealed;

pub use envelope::{open, seal};
pub use keys::DataKey;
pub use sealed::{OrgPublicKey, OrgSecretKey, SealedKey};

/// Why something could not be opened. Deliberately uninformative: a wrong key, a wrong
/// place, a flipped bit and a truncated blob all look the same to whoever tries.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("cannot open: wrong key, wrong context or damaged data")]
    CannotOpen,
    #[error("not a MedChain envelope of a version this build reads")]
    Format,
    #[error("key material: {0}")]
    Key(&'static str),
}
