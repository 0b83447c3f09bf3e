//! The key a prescription code opens: Argon2id (RFC 9106) over the normalised code, salted
//! with the record id, so that a pharmacy given the code decrypts that prescription's
//! medication lines and nothing else, and a stolen database cannot be searched for codes
//! cheaply. The code never reaches the ledger; only the envelope sealed under this key
//! does. A wrong code derives a key that opens nothing, so a pharmacy learns nothing
//! from a guess, not even whether the prescription exists (the API answers alike).

use argon2::{Algorithm, Argon2, Params, Version};
use zeroize::Zeroizing;

use crate::{DataKey, SealError};

/// OWASP's recommended Argon2id minimum (19 MiB, 2 passes, 1 lane): about 20 ms here,
/// once per dispense.
const MEMORY_KIB: u32 = 19 * 1024;
const PASSES: u32 = 2;
const LANES: u32 = 1;

/// The key of prescription `record_id` under the (already normalised) `code`.
pub fn prescription_key(code: &str, record_id: &str) -> Result<DataKey, SealError> {
    let params = Params::new(MEMORY_KIB, PASSES, LANES, Some(32))
        .map_err(|_| SealError::Key("argon2 parameters"))?;
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    // Argon2 wants at least 8 bytes of salt; the prefix also separates this use.
    let salt = format!("medchain/v1/prescription/{record_id}");
    let mut out = Zeroizing::new([0u8; 32]);
    argon
        .hash_password_into(code.as_bytes(), salt.as_bytes(), out.as_mut())
        .map_err(|_| SealError::Key("argon2"))?;
    Ok(DataKey::from_bytes(*out))
}
