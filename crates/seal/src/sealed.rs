//! Sealing a data key to an organisation: HPKE (RFC 9180) base mode with DHKEM(X25519,
//! HKDF-SHA256), HKDF-SHA256 and ChaCha20-Poly1305, from the `hpke` crate. Each
//! organisation has an X25519 key pair: the public half goes in the genesis, the secret
//! half stays in its own key folder. A sealed key is `enc (32 bytes) || ciphertext`; the
//! associated data names the patient and key epoch, so a sealed key cannot be passed off
//! as another patient's.

use hpke::aead::ChaCha20Poly1305;
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable, Kem, OpModeR, OpModeS, Serializable};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::{DataKey, SealError};

type Suite = X25519HkdfSha256;
const INFO: &[u8] = b"medchain/v1/sealed-data-key";
const ENC_LEN: usize = 32;

/// An organisation's public encryption key (as the genesis lists it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OrgPublicKey(pub [u8; 32]);

/// An organisation's secret encryption key; zeroized on drop, never printed.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct OrgSecretKey([u8; 32]);

impl std::fmt::Debug for OrgSecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OrgSecretKey(..)")
    }
}

impl OrgSecretKey {
    /// A new key pair from the operating system's generator.
    pub fn generate() -> (OrgSecretKey, OrgPublicKey) {
        let (sk, pk) = Suite::gen_keypair(&mut rand::rngs::OsRng);
        let mut bytes = [0u8; 32];
        bytes.copy_from_slice(&sk.to_bytes());
        (OrgSecretKey(bytes), public_of(&pk))
    }

    /// The key stored in a key file.
    pub fn from_bytes(bytes: [u8; 32]) -> OrgSecretKey {
        OrgSecretKey(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The matching public key.
    pub fn public(&self) -> Result<OrgPublicKey, SealError> {
        let sk = <Suite as Kem>::PrivateKey::from_bytes(&self.0)
            .map_err(|_| SealError::Key("not an X25519 secret key"))?;
        Ok(public_of(&Suite::sk_to_pk(&sk)))
    }
}

fn public_of(pk: &<Suite as Kem>::PublicKey) -> OrgPublicKey {
    let mut out = [0u8; 32];
    out.copy_from_slice(&pk.to_bytes());
    OrgPublicKey(out)
}

/// A data key sealed to one organisation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealedKey(pub Vec<u8>);

/// Seal `key` to the organisation `to`, for the place `aad` names (patient and epoch).
pub fn seal_key(to: &OrgPublicKey, aad: &[u8], key: &DataKey) -> Result<SealedKey, SealError> {
    let pk = <Suite as Kem>::PublicKey::from_bytes(&to.0)
        .map_err(|_| SealError::Key("not an X25519 public key"))?;
    let (enc, ct) = hpke::single_shot_seal::<ChaCha20Poly1305, HkdfSha256, Suite, _>(
        &OpModeS::Base,
        &pk,
        INFO,
        key.as_bytes(),
        aad,
        &mut rand::rngs::OsRng,
    )
    .map_err(|_| SealError::Key("sealing failed"))?;
    let mut out = enc.to_bytes().to_vec();
    out.extend_from_slice(&ct);
    Ok(SealedKey(out))
}

/// Open a sealed key with the organisation's secret key.
pub fn open_key(sk: &OrgSecretKey, aad: &[u8], sealed: &SealedKey) -> Result<DataKey, SealError> {
    if sealed.0.len() != ENC_LEN + 32 + 16 {
        return Err(SealError::Format);
    }
    let (enc, ct) = sealed.0.split_at(ENC_LEN);
    let enc = <Suite as Kem>::EncappedKey::from_bytes(enc).map_err(|_| SealError::CannotOpen)?;
    let sk = <Suite as Kem>::PrivateKey::from_bytes(sk.as_bytes())
        .map_err(|_| SealError::Key("not an X25519 secret key"))?;
    let mut plain = hpke::single_shot_open::<ChaCha20Poly1305, HkdfSha256, Suite>(
        &OpModeR::Base,
        &sk,
        &enc,
        INFO,
        ct,
        aad,
    )
    .map_err(|_| SealError::CannotOpen)?;
    let out = <[u8; 32]>::try_from(plain.as_slice()).map_err(|_| SealError::Format);
    plain.zeroize();
    out.map(DataKey::from_bytes)
}
