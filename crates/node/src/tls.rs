//! TLS 1.3 for every replica-to-replica and client-to-replica link, both ends pinned to
//! the Ed25519 keys in the genesis. Nothing here trusts a certificate authority: each
//! node presents a self-signed certificate made from its genesis key, and the verifiers
//! accept a peer only if the certificate's public key is, byte for byte, the genesis key
//! expected at that end, and the handshake is signed by it. Whoever answers at a peer's
//! address without that key, or replays a recorded handshake, gets no application data.
//!
//! rustls with the `ring` provider, TLS 1.3 only (the `tls12` feature is not compiled).

use std::sync::Arc;

use medchain_types::{Genesis, KeyPair, PublicKey};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::ResolvesClientCert;
use rustls::crypto::{verify_tls13_signature, CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, DistinguishedName, Error, ServerConfig,
    SignatureAlgorithm, SignatureScheme,
};
use tokio::net::TcpStream;

/// The name a dialer puts in its TLS handshake. Replicas are identified by their pinned
/// key, not by a DNS name; SNI is off, so this never leaves the process.
const SERVER_NAME: &str = "replica.medchain.invalid";

/// The only signature scheme either end offers or accepts: the genesis keys are Ed25519.
const SCHEMES: [SignatureScheme; 1] = [SignatureScheme::ED25519];

/// ring, restricted to TLS 1.3 suites.
fn provider() -> Arc<CryptoProvider> {
    let ring = rustls::crypto::ring::default_provider();
    Arc::new(CryptoProvider {
        cipher_suites: vec![
            rustls::crypto::ring::cipher_suite::TLS13_AES_128_GCM_SHA256,
            rustls::crypto::ring::cipher_suite::TLS13_CHACHA20_POLY1305_SHA256,
            rustls::crypto::ring::cipher_suite::TLS13_AES_256_GCM_SHA384,
        ],
        ..ring
    })
}

fn verify_algs() -> WebPkiSupportedAlgorithms {
    rustls::crypto::ring::default_provider().signature_verification_algorithms
}

/// An Ed25519 public key as rcgen needs to see it to write a certificate or an SPKI.
struct Ed25519Public<'a>(&'a [u8; 32]);

impl rcgen::PublicKeyData for Ed25519Public<'_> {
    fn der_bytes(&self) -> &[u8] {
        self.0
    }
    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        &rcgen::PKCS_ED25519
    }
}

/// The DER SubjectPublicKeyInfo of a genesis key: what a peer's certificate must hold.
pub fn spki_of_key(key: &PublicKey) -> Vec<u8> {
    rcgen::PublicKeyData::subject_public_key_info(&Ed25519Public(&key.0))
}

/// The node's own key, as the signer of its certificate and of its TLS handshakes.
#[derive(Debug, Clone)]
struct Ed25519Signer {
    key: Arc<KeyPair>,
    public: [u8; 32],
}

impl rcgen::PublicKeyData for Ed25519Signer {
    fn der_bytes(&self) -> &[u8] {
        &self.public
    }
    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        &rcgen::PKCS_ED25519
    }
}

impl rcgen::SigningKey for Ed25519Signer {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        Ok(self.key.sign(msg).0.to_vec())
    }
}

impl rustls::sign::SigningKey for Ed25519Signer {
    fn choose_scheme(&self, offered: &[SignatureScheme]) -> Option<Box<dyn rustls::sign::Signer>> {
        offered
            .contains(&SignatureScheme::ED25519)
            .then(|| Box::new(self.clone()) as Box<dyn rustls::sign::Signer>)
    }
    fn algorithm(&self) -> SignatureAlgorithm {
        SignatureAlgorithm::ED25519
    }
}

impl rustls::sign::Signer for Ed25519Signer {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, Error> {
        Ok(self.key.sign(message).0.to_vec())
    }
    fn scheme(&self) -> SignatureScheme {
        SignatureScheme::ED25519
    }
}

/// A self-signed certificate for `key` and the signer that proves it in handshakes.
fn certified_key(key: &KeyPair) -> std::io::Result<Arc<CertifiedKey>> {
    let signer = Ed25519Signer {
        key: Arc::new(key.clone()),
        public: key.public().0,
    };
    let mut params = rcgen::CertificateParams::new(vec![SERVER_NAME.to_string()])
        .map_err(|e| std::io::Error::other(format!("certificate parameters: {e}")))?;
    // Nothing checks the serial (the key is what is pinned); derived from the key, so a
    // node's certificate is the same at every start.
    let mut first = [0u8; 8];
    first.copy_from_slice(&signer.public[..8]);
    params.serial_number = Some(rcgen::SerialNumber::from(u64::from_be_bytes(first) >> 1));
    let cert = params
        .self_signed(&signer)
        .map_err(|e| std::io::Error::other(format!("self-signing: {e}")))?;
    Ok(Arc::new(CertifiedKey::new(
        vec![cert.der().clone()],
        Arc::new(signer),
    )))
}

/// The public key a certificate names, as DER SubjectPublicKeyInfo.
fn spki_of_cert(cert: &CertificateDer<'_>) -> Option<Vec<u8>> {
    use x509_cert::der::{Decode, Encode};
    let parsed = x509_cert::Certificate::from_der(cert.as_ref()).ok()?;
    parsed.tbs_certificate.subject_public_key_info.to_der().ok()
}

/// The genesis key a peer's certificate names, if it names one of `allowed`.
fn pinned_key(cert: &CertificateDer<'_>, allowed: &[(PublicKey, Vec<u8>)]) -> Option<PublicKey> {
    let spki = spki_of_cert(cert)?;
    allowed
        .iter()
        .find(|(_, expected)| *expected == spki)
        .map(|(k, _)| *k)
}

fn not_pinned() -> Error {
    Error::InvalidCertificate(CertificateError::ApplicationVerificationFailure)
}

/// The dialer's check of the listener: exactly the genesis key of the replica it dials.
#[derive(Debug)]
struct PinnedServer {
    expected: [(PublicKey, Vec<u8>); 1],
    algs: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for PinnedServer {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        match (
            intermediates.is_empty(),
            pinned_key(end_entity, &self.expected),
        ) {
            (true, Some(_)) => Ok(ServerCertVerified::assertion()),
            _ => Err(not_pinned()),
        }
    }
    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        Err(Error::General("TLS 1.2 is not offered".into()))
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls13_signature(message, cert, dss, &self.algs)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        SCHEMES.to_vec()
    }
}

/// The listener's check of a dialer: any key the genesis lists (a replica, a gateway or
/// an operator); which one it is decides what the connection may carry.
#[derive(Debug)]
struct PinnedClients {
    allowed: Vec<(PublicKey, Vec<u8>)>,
    algs: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for PinnedClients {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }
    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        match (
            intermediates.is_empty(),
            pinned_key(end_entity, &self.allowed),
        ) {
            (true, Some(_)) => Ok(ClientCertVerified::assertion()),
            _ => Err(not_pinned()),
        }
    }
    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        Err(Error::General("TLS 1.2 is not offered".into()))
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls13_signature(message, cert, dss, &self.algs)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        SCHEMES.to_vec()
    }
}

#[derive(Debug)]
struct OwnCert(Arc<CertifiedKey>);

impl ResolvesServerCert for OwnCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

impl ResolvesClientCert for OwnCert {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        sigschemes
            .contains(&SignatureScheme::ED25519)
            .then(|| self.0.clone())
    }
    fn has_certs(&self) -> bool {
        true
    }
}

fn config_error(e: Error) -> std::io::Error {
    std::io::Error::other(format!("TLS configuration: {e}"))
}

/// The listener's side of TLS, shared by every inbound connection.
#[derive(Clone)]
pub struct Acceptor(tokio_rustls::TlsAcceptor);

impl std::fmt::Debug for Acceptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Acceptor(TLS 1.3, genesis keys only)")
    }
}

impl Acceptor {
    /// Run the TLS handshake on an accepted connection.
    pub async fn accept(&self, tcp: TcpStream) -> std::io::Result<ServerStream> {
        self.0.accept(tcp).await
    }
}

/// The listener's side: presents `key`, requires a dialer with a genesis key.
pub fn acceptor(key: &KeyPair, genesis: &Genesis) -> std::io::Result<Acceptor> {
    let allowed = genesis
        .replica_keys()
        .into_iter()
        .chain(genesis.client_keys())
        .map(|k| (k, spki_of_key(&k)))
        .collect();
    let verifier = Arc::new(PinnedClients {
        allowed,
        algs: verify_algs(),
    });
    let config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(config_error)?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(Arc::new(OwnCert(certified_key(key)?)));
    Ok(Acceptor(tokio_rustls::TlsAcceptor::from(Arc::new(config))))
}

/// The dialer's side: presents `key`, accepts only a listener holding `peer`.
pub fn connector(key: &KeyPair, peer: PublicKey) -> std::io::Result<tokio_rustls::TlsConnector> {
    let verifier = Arc::new(PinnedServer {
        expected: [(peer, spki_of_key(&peer))],
        algs: verify_algs(),
    });
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(config_error)?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_client_cert_resolver(Arc::new(OwnCert(certified_key(key)?)));
    config.enable_sni = false;
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

/// A link to a replica, as the dialer sees it.
pub type ClientStream = tokio_rustls::client::TlsStream<TcpStream>;
/// A link from a dialer, as the listener sees it.
pub type ServerStream = tokio_rustls::server::TlsStream<TcpStream>;

/// Open TLS on a dialed connection.
pub async fn connect(
    connector: &tokio_rustls::TlsConnector,
    tcp: TcpStream,
) -> std::io::Result<ClientStream> {
    let name = ServerName::try_from(SERVER_NAME)
        .map_err(|_| std::io::Error::other("server name"))?
        .to_owned();
    connector.connect(name, tcp).await
}

/// The genesis key that the dialer of `stream` proved it holds.
pub fn dialer_key(stream: &ServerStream, genesis: &Genesis) -> Option<PublicKey> {
    let cert = stream.get_ref().1.peer_certificates()?.first()?;
    let spki = spki_of_cert(cert)?;
    genesis
        .replica_keys()
        .into_iter()
        .chain(genesis.client_keys())
        .find(|k| spki_of_key(k) == spki)
}
