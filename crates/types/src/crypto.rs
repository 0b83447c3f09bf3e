//! Ed25519 keys and signatures (via `ed25519-zebra`: ZIP-215 rules, so single and batch
//! verification agree on every input, and `curve25519-dalek` 4, which picks its AVX2
//! backend at run time), with an opt-in per-thread memo of verification results for the
//! simulator, which verifies the same signed bytes many times.

use borsh::{BorshDeserialize, BorshSerialize};
use ed25519_zebra::{SigningKey, VerificationKey, VerificationKeyBytes};
use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;

use crate::ids::Hash32;

/// An Ed25519 public key as stored on the ledger.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize)]
pub struct PublicKey(pub [u8; 32]);

impl PublicKey {
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parse 64 hex digits.
    pub fn from_hex(s: &str) -> Result<Self, String> {
        let bytes = hex::decode(s.trim()).map_err(|e| format!("public key: {e}"))?;
        let arr: [u8; 32] = bytes
            .try_into()
            .map_err(|_| "public key: expected 32 bytes".to_string())?;
        Ok(PublicKey(arr))
    }
}

// Keys appear in genesis files as hex strings.
impl serde::Serialize for PublicKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> serde::Deserialize<'de> for PublicKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <String as serde::Deserialize>::deserialize(d)?;
        PublicKey::from_hex(&s).map_err(serde::de::Error::custom)
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pk:{}", &hex::encode(self.0)[..12])
    }
}

/// An Ed25519 signature.
#[derive(Clone, Copy, PartialEq, Eq, Hash, BorshSerialize, BorshDeserialize)]
pub struct Signature(pub [u8; 64]);

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sig:{}", &hex::encode(self.0)[..12])
    }
}

/// A signing key. Its secret never leaves this type (no `Debug` of the secret, no
/// serialisation here: key files are the CLI's business).
pub struct KeyPair {
    signing: SigningKey,
    public: PublicKey,
}

impl fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyPair({:?})", self.public)
    }
}

impl Clone for KeyPair {
    fn clone(&self) -> Self {
        KeyPair::from_secret(self.signing.to_bytes())
    }
}

impl KeyPair {
    /// Build a key pair from 32 secret bytes (from a key file, or derived for tests).
    pub fn from_secret(secret: [u8; 32]) -> Self {
        let signing = SigningKey::from(secret);
        let public = PublicKey(VerificationKeyBytes::from(&signing).into());
        KeyPair { signing, public }
    }

    /// A deterministic key for tests and the simulator: never use in production.
    pub fn for_test(label: &str) -> Self {
        Self::from_secret(Hash32::tagged(b"medchain/test-key/", label.as_bytes()).0)
    }

    /// The public half.
    pub fn public(&self) -> PublicKey {
        self.public
    }

    /// The secret bytes, for writing a key file.
    pub fn secret_bytes(&self) -> [u8; 32] {
        self.signing.to_bytes()
    }

    /// Sign already domain-tagged bytes.
    pub fn sign(&self, tagged_bytes: &[u8]) -> Signature {
        Signature(self.signing.sign(tagged_bytes).to_bytes())
    }
}

/// Upper bound on memo entries per thread before it is cleared.
const MEMO_MAX_ENTRIES: usize = 1 << 20;

thread_local! {
    static MEMO: RefCell<Option<HashMap<Hash32, bool>>> = const { RefCell::new(None) };
}

/// Turn the verification memo on or off for the current thread. With it on, the same
/// (key, signature, bytes) triple is verified once per thread and the answer remembered;
/// the check itself is never skipped.
pub fn set_thread_verification_memo(enabled: bool) {
    MEMO.with(|m| *m.borrow_mut() = enabled.then(HashMap::new));
}

fn memo_enabled() -> bool {
    MEMO.with(|m| m.borrow().is_some())
}

/// Below this many signatures a batch is checked one by one. Measured on the bench
/// machine with distinct signers: a batch of 2 costs about what two single checks cost,
/// 3 about 20 % less, 16 less than half.
const MIN_BATCH: usize = 3;

/// Verify many signatures at once: true only if every one is valid. Batch verification
/// (random linear combination) is up to twice as fast per signature as one by one, and
/// ZIP-215 makes it accept exactly what single verification accepts, so replicas cannot
/// disagree on a batch.
pub fn verify_signatures<'a>(
    items: impl ExactSizeIterator<Item = (&'a PublicKey, &'a [u8], &'a Signature)>,
) -> bool {
    if items.len() < MIN_BATCH || memo_enabled() {
        // Small batches, and the simulator's memo (which remembers single checks).
        let mut items = items;
        return items.all(|(k, b, s)| verify_signature(k, b, s));
    }
    let mut batch = ed25519_zebra::batch::Verifier::new();
    for (key, bytes, sig) in items {
        batch.queue((
            VerificationKeyBytes::from(key.0),
            ed25519_zebra::Signature::from_bytes(&sig.0),
            bytes,
        ));
    }
    batch.verify(rand::rngs::OsRng).is_ok()
}

/// Verify `signature` over `tagged_bytes` with `key`.
pub fn verify_signature(key: &PublicKey, tagged_bytes: &[u8], signature: &Signature) -> bool {
    let memo_key = MEMO.with(|m| {
        m.borrow().as_ref().map(|_| {
            let mut buf = Vec::with_capacity(96 + tagged_bytes.len());
            buf.extend_from_slice(&key.0);
            buf.extend_from_slice(&signature.0);
            buf.extend_from_slice(tagged_bytes);
            Hash32::sha256(&buf)
        })
    });
    if let Some(k) = memo_key {
        if let Some(hit) = MEMO.with(|m| m.borrow().as_ref().and_then(|map| map.get(&k).copied())) {
            return hit;
        }
    }
    let ok = VerificationKey::try_from(key.0)
        .map(|vk| {
            vk.verify(
                &ed25519_zebra::Signature::from_bytes(&signature.0),
                tagged_bytes,
            )
            .is_ok()
        })
        .unwrap_or(false);
    if let Some(k) = memo_key {
        MEMO.with(|m| {
            if let Some(map) = m.borrow_mut().as_mut() {
                if map.len() >= MEMO_MAX_ENTRIES {
                    map.clear();
                }
                map.insert(k, ok);
            }
        });
    }
    ok
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex32(s: &str) -> [u8; 32] {
        hex::decode(s).expect("hex").try_into().expect("32 bytes")
    }

    /// RFC 8032, section 7.1, test 1: keys and signatures on disk stay valid whichever
    /// Ed25519 library signs and verifies them.
    #[test]
    fn rfc8032_test_vector_1() {
        let key = KeyPair::from_secret(hex32(
            "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        ));
        assert_eq!(
            key.public().to_hex(),
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
        );
        let sig = key.sign(b"");
        assert_eq!(
            hex::encode(sig.0),
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
        );
        assert!(verify_signature(&key.public(), b"", &sig));
        assert!(!verify_signature(&key.public(), b"x", &sig));
    }

    fn signed(n: usize) -> Vec<(PublicKey, Vec<u8>, Signature)> {
        (0..n)
            .map(|i| {
                let key = KeyPair::for_test(&format!("signer-{}", i % 3));
                let bytes = format!("message {i}").into_bytes();
                let sig = key.sign(&bytes);
                (key.public(), bytes, sig)
            })
            .collect()
    }

    fn check(items: &[(PublicKey, Vec<u8>, Signature)]) -> bool {
        verify_signatures(items.iter().map(|(k, b, s)| (k, b.as_slice(), s)))
    }

    #[test]
    fn a_batch_is_accepted_only_when_every_signature_is_valid() {
        // Sizes on both sides of MIN_BATCH, so the one-by-one path is covered too.
        for n in [1, MIN_BATCH - 1, MIN_BATCH, 16] {
            let good = signed(n);
            assert!(check(&good), "{n} valid signatures");
            for bad in 0..n {
                let mut items = good.clone();
                items[bad].1.push(b'!');
                assert!(!check(&items), "{n} signatures, bytes of {bad} changed");
                let mut items = good.clone();
                items[bad].2 .0[5] ^= 1;
                assert!(!check(&items), "{n} signatures, signature {bad} changed");
                let mut items = good.clone();
                items[bad].0 = KeyPair::for_test("someone else").public();
                assert!(!check(&items), "{n} signatures, key {bad} swapped");
            }
        }
    }

    #[test]
    fn a_key_that_is_not_a_curve_point_fails_the_batch() {
        let mut items = signed(MIN_BATCH + 1);
        // y = 2 is not the y coordinate of any point on the curve.
        let mut not_a_point = [0u8; 32];
        not_a_point[0] = 2;
        assert!(VerificationKey::try_from(not_a_point).is_err());
        items[1].0 = PublicKey(not_a_point);
        assert!(!check(&items));
        assert!(!verify_signature(&items[1].0, &items[1].1, &items[1].2));
    }
}
