//! The API over HTTPS, as a hospital's users would reach it: a node given PEM files
//! serves TLS 1.3 with HSTS to an independent client (Python's OpenSSL-backed `ssl`,
//! verifying the certificate), plain HTTP to that port gets nothing, and a node asked to
//! serve plain HTTP on a non-loopback address refuses to start.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{Cluster, BIN, SERIAL};

/// A self-signed P-256 certificate for 127.0.0.1, made by openssl (not by our code).
fn certificate(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let (cert, key) = (dir.join("api.crt"), dir.join("api.key"));
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
        ])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl (installed by .ci/run)");
    assert!(
        out.status.success(),
        "openssl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (cert, key)
}

/// GET `url` with Python, trusting only `ca`: the status, the HSTS header and the body,
/// or the error.
fn python_get(url: &str, ca: &std::path::Path) -> String {
    let script = format!(
        r#"
import ssl, urllib.request
ctx = ssl.create_default_context(cafile={ca:?})
try:
    r = urllib.request.urlopen({url:?}, context=ctx, timeout=5)
    print(r.status, r.headers.get('Strict-Transport-Security'), r.read().decode())
except Exception as e:
    print('error', type(e).__name__, e)
"#,
        ca = ca.display().to_string(),
    );
    let out = Command::new("python3")
        .args(["-c", &script])
        .output()
        .expect("python3");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn a_node_with_pem_files_serves_tls13_with_hsts_and_plain_http_gets_nothing() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut c = Cluster::start();
    let certs = tempfile::tempdir().expect("tempdir");
    let (cert, key) = certificate(certs.path());
    c.kill9(0);
    c.start_node_with_env(
        0,
        &[
            ("MEDCHAIN_HTTPS_CERT", cert.as_path()),
            ("MEDCHAIN_HTTPS_KEY", key.as_path()),
        ],
    );
    let url = format!("https://127.0.0.1:{}/api/chain/head", c.http);
    let started = Instant::now();
    let answer = loop {
        let a = python_get(&url, &cert);
        if !a.starts_with("error") || started.elapsed() > Duration::from_secs(20) {
            break a;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        answer.starts_with("200 max-age=31536000 "),
        "{answer}\n{}",
        c.log(0)
    );
    assert!(answer.contains("\"height\""), "{answer}");
    // The TLS version the independent client negotiated.
    let version = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &format!("127.0.0.1:{}", c.http),
            "-CAfile",
        ])
        .arg(&cert)
        .args(["-verify_return_error", "-brief"])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("openssl s_client");
    let said = String::from_utf8_lossy(&version.stderr).to_string()
        + &String::from_utf8_lossy(&version.stdout);
    assert!(said.contains("TLSv1.3"), "{said}");
    assert!(said.contains("Verification: OK"), "{said}");
    // A client that does not trust the certificate gets an error, not the answer.
    let other = tempfile::tempdir().expect("tempdir");
    let (stranger_ca, _) = certificate(other.path());
    let refused = python_get(&url, &stranger_ca);
    assert!(refused.starts_with("error"), "{refused}");
    // Plain HTTP to the HTTPS port: no answer in clear.
    assert!(
        c.get(0, "/api/chain/head").is_none(),
        "plain HTTP was answered on the HTTPS port"
    );
}

#[test]
fn plain_http_off_loopback_is_refused_at_start() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().expect("tempdir");
    let (http, p2p) = common::free_base();
    let init = Command::new(BIN)
        .args(["init", "--replicas", "4", "--dir"])
        .arg(dir.path())
        .args([
            "--http-port",
            &http.to_string(),
            "--p2p-port",
            &p2p.to_string(),
        ])
        .output()
        .expect("init");
    assert!(init.status.success());
    let out = Command::new(BIN)
        .args(["node", "--config"])
        .arg(dir.path().join("node0.toml"))
        .env("MEDCHAIN_HTTP_LISTEN", format!("0.0.0.0:{http}"))
        .output()
        .expect("node");
    let stderr =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "a node served plain HTTP on 0.0.0.0");
    assert!(stderr.contains("refusing to serve plain HTTP"), "{stderr}");
    // Half a setting is an error too, naming both.
    let out = Command::new(BIN)
        .args(["node", "--config"])
        .arg(dir.path().join("node0.toml"))
        .env("MEDCHAIN_HTTPS_CERT", dir.path().join("missing.pem"))
        .output()
        .expect("node");
    let stderr =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(stderr.contains("https_cert and https_key"), "{stderr}");
}
