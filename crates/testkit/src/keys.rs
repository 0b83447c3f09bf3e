//! Deterministic test identities, so a test's genesis, signatures and (in the simulator)
//! trace hashes are the same on every run and every machine.

use medchain_types::{ClientId, Hash32, KeyPair, Request, Signable, Signed, SignedRequest};

/// The keys of one test suite: replica `i` holds `KeyPair::for_test("{prefix}replica-{i}")`
/// and client `i` holds `KeyPair::for_test("{prefix}client-{i}")`.
///
/// The prefix is a parameter, not a constant, because each suite's fixtures (and the
/// simulator's pinned trace hashes) were made with its own keys: `""` for the types
/// tests, `"pbft-test-"` for the PBFT tests, `"sim-"` for the simulator, `"api-"` for the
/// API tests' replicas. A suite keeps its prefix and so keeps its exact bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TestKeys {
    prefix: &'static str,
}

impl TestKeys {
    pub const fn new(prefix: &'static str) -> Self {
        TestKeys { prefix }
    }

    pub fn replica(&self, i: usize) -> KeyPair {
        KeyPair::for_test(&format!("{}replica-{i}", self.prefix))
    }

    pub fn client(&self, i: usize) -> KeyPair {
        KeyPair::for_test(&format!("{}client-{i}", self.prefix))
    }

    /// Organisation `i`'s X25519 encryption secret (any 32 bytes are one).
    pub fn encryption(&self, i: usize) -> medchain_seal::OrgSecretKey {
        let label = format!("{}encryption-{i}", self.prefix);
        medchain_seal::OrgSecretKey::from_bytes(Hash32::sha256(label.as_bytes()).0)
    }

    /// Its public half, as a genesis lists it.
    pub fn encryption_public(&self, i: usize) -> medchain_types::EncryptionKey {
        let public = self
            .encryption(i)
            .public()
            .expect("every 32-byte string is an X25519 secret");
        medchain_types::EncryptionKey(public.0)
    }

    /// Sign a replica message with the key of the replica the body names, so a helper
    /// can never sign with the wrong key by accident (forgeries call `Signed::sign`).
    pub fn sign<T: Signable>(&self, body: T) -> Signed<T> {
        let key = self.replica(body.signer().index());
        Signed::sign(body, &key)
    }

    /// A request without content, signed by client `client`.
    pub fn request(&self, client: u16, request_id: u64, payload: &[u8]) -> SignedRequest {
        Request {
            client: ClientId(client),
            request_id,
            payload: payload.to_vec(),
            content_hashes: Vec::new(),
        }
        .sign(&self.client(usize::from(client)))
    }

    /// A request signed by client `client` over the hashes of `content`, carrying it.
    pub fn request_with_content(
        &self,
        client: u16,
        request_id: u64,
        payload: &[u8],
        content: Vec<Vec<u8>>,
    ) -> SignedRequest {
        Request {
            client: ClientId(client),
            request_id,
            payload: payload.to_vec(),
            content_hashes: content.iter().map(|c| Hash32::sha256(c)).collect(),
        }
        .sign_with_content(&self.client(usize::from(client)), content)
    }
}
