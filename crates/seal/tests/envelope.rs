//! Property tests of the envelope and sealed-key formats: what is sealed opens with the
//! same key and place, and a flipped bit anywhere, a truncation, another key or another
//! place is refused.

use medchain_seal::envelope::{is_envelope, OVERHEAD};
use medchain_seal::prescription::{prescription_key, prescription_proof};
use medchain_seal::sealed::{open_key, seal_key};
use medchain_seal::{open, seal, DataKey, OrgSecretKey, SealError};
use proptest::prelude::*;

fn key(b: u8) -> DataKey {
    DataKey::from_bytes([b; 32])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn an_envelope_opens_with_its_key_and_place(
        plain in proptest::collection::vec(any::<u8>(), 0..2048),
        aad in proptest::collection::vec(any::<u8>(), 0..64),
        k in any::<u8>(),
    ) {
        let env = seal(&key(k), &aad, &plain).expect("seal");
        prop_assert!(is_envelope(&env));
        prop_assert_eq!(env.len(), plain.len() + OVERHEAD);
        let back = open(&key(k), &aad, &env).expect("open");
        prop_assert_eq!(back.as_slice(), plain.as_slice());
    }

    #[test]
    fn a_flipped_bit_anywhere_is_refused(
        plain in proptest::collection::vec(any::<u8>(), 0..512),
        at in any::<prop::sample::Index>(),
        bit in 0u8..8,
    ) {
        let mut env = seal(&key(7), b"rec-1/diagnosis", &plain).expect("seal");
        let i = at.index(env.len());
        env[i] ^= 1 << bit;
        prop_assert!(open(&key(7), b"rec-1/diagnosis", &env).is_err());
    }

    #[test]
    fn another_key_place_or_length_is_refused(
        plain in proptest::collection::vec(any::<u8>(), 1..512),
        cut in 1usize..40,
    ) {
        let env = seal(&key(1), b"rec-1/notes", &plain).expect("seal");
        prop_assert_eq!(open(&key(2), b"rec-1/notes", &env), Err(SealError::CannotOpen));
        prop_assert_eq!(open(&key(1), b"rec-2/notes", &env), Err(SealError::CannotOpen));
        let short = &env[..env.len().saturating_sub(cut)];
        prop_assert!(open(&key(1), b"rec-1/notes", short).is_err());
    }

    #[test]
    fn a_sealed_key_opens_only_for_its_organisation_and_patient(
        k in any::<[u8; 32]>(),
        at in any::<prop::sample::Index>(),
    ) {
        let (sk, pk) = OrgSecretKey::generate();
        let (other, _) = OrgSecretKey::generate();
        let data = DataKey::from_bytes(k);
        let sealed = seal_key(&pk, b"p001/epoch-1", &data).expect("seal key");
        prop_assert_eq!(open_key(&sk, b"p001/epoch-1", &sealed).expect("open key"), data.duplicate());
        prop_assert!(open_key(&other, b"p001/epoch-1", &sealed).is_err());
        prop_assert!(open_key(&sk, b"p002/epoch-1", &sealed).is_err());
        let mut bad = sealed.clone();
        let i = at.index(bad.0.len());
        bad.0[i] ^= 0x01;
        prop_assert!(open_key(&sk, b"p001/epoch-1", &bad).is_err());
    }
}

#[test]
fn the_same_plaintext_seals_to_different_bytes() {
    // Random nonces: equal diagnoses do not give equal ciphertexts (or equal hashes).
    let a = seal(&key(3), b"x", b"hypertension").expect("seal");
    let b = seal(&key(3), b"x", b"hypertension").expect("seal");
    assert_ne!(a, b);
}

#[test]
fn derived_keys_differ_by_purpose_and_are_stable() {
    let k = key(9);
    assert_eq!(k.derive(b"record-content"), k.derive(b"record-content"));
    assert_ne!(k.derive(b"record-content"), k.derive(b"display-name"));
    assert_ne!(k.derive(b"record-content"), k.duplicate());
}

#[test]
fn a_prescription_code_opens_its_prescription_only() {
    let rx = prescription_key("K7QM2XR4PA", "rec-1");
    let env = seal(&rx, b"rec-1/medications", b"amlodipine 5 mg").expect("seal");
    let again = prescription_key("K7QM2XR4PA", "rec-1");
    assert_eq!(
        open(&again, b"rec-1/medications", &env)
            .expect("open")
            .as_slice(),
        b"amlodipine 5 mg"
    );
    let wrong = prescription_key("K7QM2XR4PB", "rec-1");
    assert_eq!(
        open(&wrong, b"rec-1/medications", &env),
        Err(SealError::CannotOpen)
    );
    // The same code for another record is another key.
    let other = prescription_key("K7QM2XR4PA", "rec-2");
    assert_ne!(other, again);
}

#[test]
fn a_prescription_proof_is_stable_and_says_nothing_of_the_key() {
    let proof = prescription_proof("K7QM2XR4PA");
    assert_eq!(proof, prescription_proof("K7QM2XR4PA"));
    assert_ne!(proof, prescription_proof("K7QM2XR4PB"));
    assert_eq!(proof.len(), 32);
    let key = prescription_key("K7QM2XR4PA", "rec-1");
    assert!(!hex::encode_upper(key.as_bytes()).contains(&proof));
    // The proof used as if it were the code opens nothing.
    let env = seal(&key, b"aad", b"amlodipine 5 mg").expect("seal");
    assert!(open(&prescription_key(&proof, "rec-1"), b"aad", &env).is_err());
}

#[test]
fn secrets_never_print() {
    let (sk, _) = OrgSecretKey::generate();
    assert_eq!(format!("{sk:?}"), "OrgSecretKey(..)");
    assert_eq!(format!("{:?}", key(1)), "DataKey(..)");
    assert_eq!(sk.public().expect("public"), sk.public().expect("public"));
}
