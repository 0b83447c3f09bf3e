//! What a prescription code opens and proves. The code is random and long (25 symbols of a
//! 32-symbol alphabet: 125 bits), so a fast KDF (HKDF-SHA256) is enough: the ledger holds
//! only ciphertext under the code's key and the hash of the code's proof, and 2^125 guesses
//! are out of anyone's reach however cheap each is. A slow KDF (Argon2id) is what a short
//! code would need, and it would cost every prescribing write about 29 ms of CPU
//! (`seal_cost` example), about 70 prescriptions a second on two cores; the long code keeps
//! the guessing bound and the write path's microseconds.
//!
//! Two independent values come from one code: the *key* (salted by the record id) that
//! opens that prescription's medication lines and nothing else, and the *proof* a pharmacy
//! hands the ledger to find and dispense it. Dispensing reveals the proof on the ledger;
//! the proof says nothing of the key, so the lines stay sealed. The code itself never
//! reaches the ledger.

use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::DataKey;

/// Symbols in a prescription code (of a 32-symbol alphabet): 125 bits.
pub const CODE_SYMBOLS: usize = 25;

/// The key of prescription `record_id` under the (already normalised) `code`.
pub fn prescription_key(code: &str, record_id: &str) -> DataKey {
    let salt = format!("medchain/v1/prescription/{record_id}");
    let hk = Hkdf::<Sha256>::new(Some(salt.as_bytes()), code.as_bytes());
    let mut out = Zeroizing::new([0u8; 32]);
    // 32 bytes is far below HKDF-SHA256's 8160-byte limit: expand cannot fail, and if it
    // did the all-zero key opens nothing sealed under a real one.
    let _ = hk.expand(b"medication-lines", out.as_mut());
    DataKey::from_bytes(*out)
}

/// The proof of the (already normalised) `code`: 32 hex digits, what the ledger sees of
/// the code (hashed when the prescription is written, in clear when it is dispensed).
pub fn prescription_proof(code: &str) -> String {
    let hk = Hkdf::<Sha256>::new(Some(b"medchain/v1/prescription-proof"), code.as_bytes());
    let mut out = [0u8; 16];
    let _ = hk.expand(b"proof", &mut out);
    hex::encode_upper(out)
}
