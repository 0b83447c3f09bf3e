//! Serving the application's HTTP surface with limits a hostile client cannot outgrow: a
//! cap on open connections, a deadline for a request's headers, TLS from the
//! organisation's PEM files (with HSTS), and an accept loop that backs off when the
//! process runs out of file descriptors instead of spinning. `axum::serve` offers none of
//! these; hyper's connection builder does, so the loop is ours and the router is axum's.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;

/// Open HTTP connections at most; at the cap the loop stops accepting and new
/// connections wait in the kernel's backlog until one closes.
pub const HTTP_MAX_CONNECTIONS: usize = 1024;
/// A request's headers must arrive within this after the connection is ready for them
/// (a slow-headers client holds a connection at most this long).
pub const HTTP_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// The TLS handshake must complete within this.
pub const HTTP_TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest pause of the accept loop after repeated accept errors.
pub const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);
/// The HSTS policy sent with every HTTPS answer: a year, as browsers' preload lists ask.
pub const HSTS: &str = "max-age=31536000";

/// Why HTTPS could not be set up from the configured files.
#[derive(Debug, thiserror::Error)]
pub enum HttpsError {
    #[error("{path}: {message}")]
    File { path: String, message: String },
    #[error("the certificate and key do not form a TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

/// A TLS 1.3 server configuration from a PEM certificate chain and a PEM private key.
pub fn https_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, HttpsError> {
    let file_error = |path: &Path, message: String| HttpsError::File {
        path: path.display().to_string(),
        message,
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|e| file_error(cert, e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(cert, e.to_string()))?;
    if chain.is_empty() {
        return Err(file_error(cert, "no PEM certificate in the file".into()));
    }
    // The error names the file only: a PEM parser's message could quote key material.
    let key_der = PrivateKeyDer::from_pem_file(key)
        .map_err(|_| file_error(key, "no readable PEM private key in the file".into()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_no_client_auth()
        .with_single_cert(chain, key_der)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Plain HTTP is for loopback only: anywhere else the network between the user and the
/// node is not ours, and sign-in tokens and clinical data would cross it in clear.
pub fn plain_http_allowed(addr: &SocketAddr) -> bool {
    addr.ip().is_loopback()
}

/// Serve `router` on `listener` until the process stops, over TLS when `tls` is given.
pub async fn serve(
    listener: TcpListener,
    router: axum::Router,
    tls: Option<Arc<rustls::ServerConfig>>,
) {
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let slots = Arc::new(Semaphore::new(HTTP_MAX_CONNECTIONS));
    let mut backoff = Duration::ZERO;
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let (tcp, peer) = match listener.accept().await {
            Ok(c) => {
                backoff = Duration::ZERO;
                c
            }
            Err(e) => {
                // Typically EMFILE/ENFILE: retrying at once would spin a core while
                // nothing can be accepted anyway.
                backoff = (backoff * 2).clamp(Duration::from_millis(5), ACCEPT_BACKOFF_MAX);
                tracing::warn!(error = %e, pause_ms = backoff.as_millis() as u64, "accept failed");
                tokio::time::sleep(backoff).await;
                continue;
            }
        };
        let router = router.clone();
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let _ = tcp.set_nodelay(true);
            match acceptor {
                None => serve_connection(TokioIo::new(tcp), peer, router, false).await,
                Some(acceptor) => {
                    let tls =
                        tokio::time::timeout(HTTP_TLS_HANDSHAKE_TIMEOUT, acceptor.accept(tcp))
                            .await;
                    if let Ok(Ok(stream)) = tls {
                        serve_connection(TokioIo::new(stream), peer, router, true).await;
                    }
                }
            }
        });
    }
}

/// One HTTP/1.1 connection: the router sees the peer address (`ConnectInfo`, used for
/// throttling sign-ins) and, over TLS, every answer carries HSTS.
async fn serve_connection<I>(io: I, peer: SocketAddr, router: axum::Router, https: bool)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        let router = router.clone();
        async move {
            let mut res = router
                .oneshot(req.map(axum::body::Body::new))
                .await
                .unwrap_or_else(|e: Infallible| match e {});
            if https {
                res.headers_mut().insert(
                    hyper::header::STRICT_TRANSPORT_SECURITY,
                    hyper::header::HeaderValue::from_static(HSTS),
                );
            }
            Ok::<_, Infallible>(res)
        }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HTTP_HEADER_READ_TIMEOUT)
        .serve_connection(io, service)
        .with_upgrades();
    if let Err(e) = conn.await {
        tracing::trace!(%peer, error = %e, "http connection ended");
    }
}
