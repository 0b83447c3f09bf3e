//! Data keys: 32 random bytes per patient and key epoch, held in memory only as long as
//! needed and zeroized when dropped. Sub-keys for each use (record content, names,
//! reasons) are derived with HKDF-SHA256 so that one key never encrypts two kinds of
//! data under the same label.

use hkdf::Hkdf;
use rand::RngCore;
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// A symmetric key for [`crate::envelope`]. Not `Clone` by accident: copies are
/// explicit ([`DataKey::duplicate`]) so that every copy is one more thing to zeroize.
#[derive(Zeroize, ZeroizeOnDrop, PartialEq, Eq)]
pub struct DataKey([u8; 32]);

impl std::fmt::Debug for DataKey {
    // Never the bytes, not even in a debug log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(..)")
    }
}

impl DataKey {
    /// A fresh random key from the operating system's generator.
    pub fn random() -> DataKey {
        let mut k = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut k);
        DataKey(k)
    }

    /// The key of these bytes (read from a sealed key or a key file).
    pub fn from_bytes(bytes: [u8; 32]) -> DataKey {
        DataKey(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// An explicit copy.
    pub fn duplicate(&self) -> DataKey {
        DataKey(self.0)
    }

    /// The sub-key for one use, e.g. `b"record-content"` or `b"display-name"`.
    pub fn derive(&self, purpose: &[u8]) -> DataKey {
        let hk = Hkdf::<Sha256>::new(Some(b"medchain/v1/data-key"), &self.0);
        let mut out = [0u8; 32];
        // 32 bytes is far below HKDF-SHA256's 8160-byte limit, so expand cannot fail.
        if hk.expand(purpose, &mut out).is_err() {
            out.zeroize();
        }
        DataKey(out)
    }
}
