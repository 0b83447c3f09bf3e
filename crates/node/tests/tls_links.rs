//! Attacks on the TLS links, made as a faulty organisation or an eavesdropper would make
//! them: its own key at a peer's address, its own key dialing in, a recorded handshake
//! played again, a flipped byte on the wire, a gateway's key claiming a replica's link.
//! Each is shown to get no application data, against the real listener of the node.

use std::sync::Arc;
use std::time::Duration;

use medchain_node::tls;
use medchain_testkit::{GenesisBuilder, TestKeys};
use medchain_types::{Genesis, KeyPair};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const KEYS: TestKeys = TestKeys::new("tls-test-");
const SECRET: &[u8] = b"diagnosis: rare-condition-4711";

fn genesis() -> Genesis {
    GenesisBuilder::new("tls-test", KEYS).build()
}

/// A listener that presents replica 0's key, admits only genesis keys, and for each
/// connection reports what the TLS layer said and what it read before the first error.
async fn listener(
    genesis: &Genesis,
) -> (
    std::net::SocketAddr,
    tokio::sync::mpsc::Receiver<Result<Vec<u8>, String>>,
) {
    let acceptor = tls::acceptor(&KEYS.replica(0), genesis).expect("acceptor");
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = l.accept().await {
            let acceptor = acceptor.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                let result = match acceptor.accept(tcp).await {
                    Err(e) => Err(format!("handshake: {e}")),
                    Ok(mut s) => {
                        // Proven: tell the dialer something only a genesis member may read.
                        let _ = s.write_all(SECRET).await;
                        let _ = s.flush().await;
                        let mut got = Vec::new();
                        match tokio::time::timeout(Duration::from_secs(2), s.read_to_end(&mut got))
                            .await
                        {
                            Ok(Ok(_)) => Ok(got),
                            Ok(Err(e)) => Err(format!("read after {} bytes: {e}", got.len())),
                            Err(_) => Ok(got),
                        }
                    }
                };
                let _ = tx.send(result).await;
            });
        }
    });
    (addr, rx)
}

/// Dial `addr` as `key`, expecting the listener to hold `expected`; send `payload`,
/// then read what comes back until the link ends.
async fn dial(
    addr: std::net::SocketAddr,
    key: &KeyPair,
    expected: medchain_types::PublicKey,
    payload: &[u8],
) -> Result<Vec<u8>, String> {
    let connector = tls::connector(key, expected).map_err(|e| e.to_string())?;
    let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let mut s = tls::connect(&connector, tcp)
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    s.write_all(payload).await.map_err(|e| e.to_string())?;
    s.shutdown().await.map_err(|e| e.to_string())?;
    let mut got = Vec::new();
    match tokio::time::timeout(Duration::from_secs(2), s.read_to_end(&mut got)).await {
        Ok(Ok(_)) => Ok(got),
        Ok(Err(e)) if got.is_empty() => Err(format!("read: {e}")),
        Ok(Err(_)) | Err(_) => Ok(got),
    }
}

async fn report(
    rx: &mut tokio::sync::mpsc::Receiver<Result<Vec<u8>, String>>,
) -> Result<Vec<u8>, String> {
    tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("the listener reports every connection")
        .expect("listener alive")
}

/// The positive control: a replica with its genesis key reaches a replica with its own,
/// and data flows both ways.
#[tokio::test]
async fn genesis_keys_at_both_ends_exchange_data() {
    let g = genesis();
    let (addr, mut rx) = listener(&g).await;
    let got = dial(addr, &KEYS.replica(1), KEYS.replica(0).public(), b"prepare").await;
    assert_eq!(got.as_deref(), Ok(SECRET));
    assert_eq!(report(&mut rx).await.as_deref(), Ok(&b"prepare"[..]));
    // A gateway's (client's) genesis key is admitted at the TLS layer too; the
    // handshake inside decides what it may do (see the role test in transport).
    let got = dial(addr, &KEYS.client(0), KEYS.replica(0).public(), b"request").await;
    assert_eq!(got.as_deref(), Ok(SECRET));
    assert_eq!(report(&mut rx).await.as_deref(), Ok(&b"request"[..]));
}

/// An organisation's own key, not in the genesis, dialing a replica: the listener ends
/// the handshake and reads nothing; the dialer reads nothing.
#[tokio::test]
async fn a_dialer_whose_key_is_not_in_the_genesis_gets_nothing() {
    let g = genesis();
    let (addr, mut rx) = listener(&g).await;
    let stranger = KeyPair::for_test("not-in-the-genesis");
    let got = dial(addr, &stranger, KEYS.replica(0).public(), b"prepare").await;
    assert!(
        !matches!(&got, Ok(b) if !b.is_empty()),
        "the stranger read {got:?}"
    );
    let seen = report(&mut rx).await;
    assert!(
        seen.is_err(),
        "the listener accepted the stranger: {seen:?}"
    );
}

/// A man in the middle at replica 0's address, answering with its own key (or with
/// another replica's genuine key): the dialer refuses before sending anything, and the
/// impostor reads nothing.
#[tokio::test]
async fn a_listener_without_the_expected_key_gets_nothing_from_the_dialer() {
    let g = genesis();
    for impostor in [KeyPair::for_test("man-in-the-middle"), KEYS.replica(2)] {
        let acceptor = tls::acceptor(&impostor, &g).expect("acceptor");
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = l.local_addr().expect("addr");
        let server = tokio::spawn(async move {
            let (tcp, _) = l.accept().await.expect("accept");
            match acceptor.accept(tcp).await {
                Err(_) => Vec::new(),
                Ok(mut s) => {
                    let mut got = Vec::new();
                    let _ =
                        tokio::time::timeout(Duration::from_secs(2), s.read_to_end(&mut got)).await;
                    got
                }
            }
        });
        let got = dial(addr, &KEYS.replica(1), KEYS.replica(0).public(), SECRET).await;
        assert!(got.is_err(), "the dialer went on with an impostor: {got:?}");
        let read = server.await.expect("server task");
        assert!(read.is_empty(), "the impostor read {} bytes", read.len());
    }
}

/// Copies bytes between a dialer and `to`, recording what the dialer sent and, when
/// `flip_after` is set, flipping one byte of the dialer's stream past that offset.
async fn relay(
    to: std::net::SocketAddr,
    flip_after: Option<usize>,
) -> (std::net::SocketAddr, Arc<std::sync::Mutex<Vec<u8>>>) {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    let recorded = Arc::new(std::sync::Mutex::new(Vec::new()));
    let rec = recorded.clone();
    tokio::spawn(async move {
        let (client, _) = l.accept().await.expect("accept");
        let server = TcpStream::connect(to).await.expect("connect");
        let (mut cr, mut cw) = client.into_split();
        let (mut sr, mut sw) = server.into_split();
        let up = async move {
            let mut buf = [0u8; 4096];
            let mut total = 0usize;
            loop {
                let n = match cr.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                rec.lock().expect("lock").extend_from_slice(&buf[..n]);
                if let Some(at) = flip_after {
                    if (total..total + n).contains(&at) {
                        buf[at - total] ^= 0x01;
                    }
                }
                total += n;
                if sw.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
            let _ = sw.shutdown().await;
        };
        let down = async move {
            let _ = tokio::io::copy(&mut sr, &mut cw).await;
        };
        tokio::join!(up, down);
    });
    (addr, recorded)
}

/// A recorded handshake (and the data after it) played again on a new connection: TLS
/// 1.3's fresh randoms and key exchange make it fail, and the listener reads nothing.
#[tokio::test]
async fn a_replayed_handshake_gets_no_application_data() {
    let g = genesis();
    let (addr, mut rx) = listener(&g).await;
    let (via, recorded) = relay(addr, None).await;
    let got = dial(via, &KEYS.replica(1), KEYS.replica(0).public(), b"commit").await;
    assert_eq!(got.as_deref(), Ok(SECRET));
    assert_eq!(report(&mut rx).await.as_deref(), Ok(&b"commit"[..]));
    let bytes = recorded.lock().expect("lock").clone();
    assert!(bytes.len() > 100, "the relay recorded the session");

    let mut replay = TcpStream::connect(addr).await.expect("connect");
    replay.write_all(&bytes).await.expect("replay");
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(2), replay.read_to_end(&mut answer)).await;
    let seen = report(&mut rx).await;
    assert!(seen.is_err(), "the listener accepted a replay: {seen:?}");
    assert!(
        !answer.windows(SECRET.len()).any(|w| w == SECRET),
        "the secret crossed in clear"
    );
}

/// One flipped bit in the application data on the wire: the listener's read fails
/// instead of handing over altered bytes.
#[tokio::test]
async fn a_flipped_byte_on_the_wire_is_refused() {
    let g = genesis();
    let (addr, mut rx) = listener(&g).await;
    // The handshake is a few hundred bytes to a couple of kilobytes; send enough data
    // that the flip lands in it.
    let (via, _) = relay(addr, Some(4_000)).await;
    let payload = vec![b'x'; 16_000];
    let _ = dial(via, &KEYS.replica(1), KEYS.replica(0).public(), &payload).await;
    // The listener fails (during the handshake, if the altered record arrived with the
    // client's Finished, or on reading) and hands over no byte of the altered stream.
    let seen = report(&mut rx).await;
    assert!(
        matches!(&seen, Err(e) if e.contains("decrypt") || e.starts_with("read after 0")),
        "altered data was taken: {:?}",
        seen.map(|b| b.len())
    );
}

/// `openssl s_client -tls1_3` against a replica's port, without a genesis key:
/// TLS 1.3 is negotiated with the replica's pinned certificate, and nothing else.
#[tokio::test]
async fn openssl_completes_tls13_but_receives_nothing_without_a_genesis_key() {
    let g = genesis();
    let (addr, mut rx) = listener(&g).await;
    let out = tokio::process::Command::new("openssl")
        .args(["s_client", "-tls1_3", "-connect"])
        .arg(addr.to_string())
        .stdin(std::process::Stdio::piped())
        .output();
    let out = tokio::time::timeout(Duration::from_secs(20), out)
        .await
        .expect("openssl ends")
        .expect("openssl is installed (.ci/run installs it)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("TLSv1.3"), "{text}");
    assert!(!text.contains("rare-condition"), "{text}");
    assert!(report(&mut rx).await.is_err());
}
