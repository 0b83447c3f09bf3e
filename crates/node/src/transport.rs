//! Peer transport: one outbound connection per peer (reconnecting with exponential
//! backoff, fed by a bounded queue so that a slow or dead peer costs at most the queue),
//! and a listener that accepts authenticated replicas and clients. Every link is TLS 1.3
//! with both ends pinned to their genesis keys (see `tls`); inside it, the handshake
//! binds the link to this chain and a role, and the role must be the one whose key the
//! TLS layer proved. Incoming messages are decoded and signature-checked on tokio's
//! worker threads, off the core's thread.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::Arc;
use std::time::{Duration, Instant};

use medchain_types::{
    decode, encode, ClientId, Genesis, KeyPair, ReplicaId, ReplicaInfo, SignedRequest,
    VerifiedFrames, Verifier,
};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Notify};

use crate::core_input::CoreInput;
use crate::frame::{read_frame_within, write_frame, write_frame_unflushed};
use crate::handshake::{accept, dial, Role};
use crate::peer_limits::{frame_deadline, LiveLinks, PeerBudgets};
use crate::reply::ClientReply;
use crate::tls;

/// Frames queued per peer before new ones are dropped (PBFT retransmits what matters).
pub const PEER_QUEUE_FRAMES: usize = 8192;
/// Bytes queued per peer before new frames are dropped. Counting frames alone is not a
/// bound: view changes and batches of clinical content make frames of megabytes, and a
/// peer that reads slowly during a view-change storm once let a replica grow to 9 GB.
/// A frame larger than this still goes out when nothing else is queued.
pub const PEER_QUEUE_BYTES: usize = 64 << 20;
/// Frames older than this are dropped instead of sent. A peer that was down for a while
/// would otherwise get the whole queue of stale votes and proposals on reconnecting
/// (up to `PEER_QUEUE_BYTES` of them, all to be verified and mostly ignored); by now
/// PBFT's retransmission or state transfer has taken over from any of them that
/// still matter.
pub const STALE_FRAME_AGE: Duration = Duration::from_secs(2);
/// Client requests queued per connection.
pub const CLIENT_QUEUE_FRAMES: usize = 4096;
/// Largest client request frame.
pub const CLIENT_FRAME_MAX_BYTES: usize = 128 << 10;

/// Counters for metrics and tests.
#[derive(Debug, Default)]
pub struct TransportStats {
    pub rejected_frames: AtomicU64,
    pub dropped_sends: AtomicU64,
    /// FETCH-BLOCKS and STATUS dropped because the peer was over its budget.
    pub rate_limited_frames: AtomicU64,
}

/// A frame shared by every peer queue it is broadcast to.
pub type Frame = Arc<Vec<u8>>;

/// A frame and when it was queued.
type Queued = (Instant, Frame);

/// One peer's send queue and the bytes waiting in it.
type PeerQueue = (mpsc::Sender<Queued>, Arc<AtomicUsize>);

/// Wakes a peer's writer out of its reconnect backoff.
#[derive(Debug, Clone, Default)]
pub struct Redial(Arc<Vec<Arc<Notify>>>);

impl Redial {
    /// Replica `peer` just proved itself on an inbound connection, so it is up: dial it
    /// now. Its writer may be in a backoff of up to two seconds from while it was down,
    /// and everything we send it (the answer to its STATUS, the blocks it fetches)
    /// would wait that long.
    pub fn wake(&self, peer: ReplicaId) {
        if let Some(n) = self.0.get(peer.index()) {
            n.notify_one();
        }
    }
}

/// Sending side of the transport, used by the core thread.
#[derive(Debug, Clone)]
pub struct Outbound {
    me: ReplicaId,
    peers: Arc<Vec<Option<PeerQueue>>>,
    redial: Redial,
    pub isolated: Arc<AtomicBool>,
    pub stats: Arc<TransportStats>,
}

impl Outbound {
    pub fn send(&self, to: ReplicaId, bytes: Arc<Vec<u8>>) {
        if to == self.me || self.isolated.load(Ordering::Relaxed) {
            return;
        }
        if let Some(Some((tx, queued))) = self.peers.get(to.index()) {
            let len = bytes.len();
            let before = queued.fetch_add(len, Ordering::Relaxed);
            if (before > 0 && before + len > PEER_QUEUE_BYTES)
                || tx.try_send((Instant::now(), bytes)).is_err()
            {
                queued.fetch_sub(len, Ordering::Relaxed);
                self.stats.dropped_sends.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// The handle the listener uses to cut a peer's reconnect backoff short.
    pub fn redial(&self) -> Redial {
        self.redial.clone()
    }

    pub fn broadcast(&self, bytes: Arc<Vec<u8>>) {
        for i in 0..self.peers.len() {
            self.send(ReplicaId(i as u16), bytes.clone());
        }
    }
}

/// Start one writer task per peer; returns the handle the core uses to send.
pub fn start_outbound(
    me: ReplicaId,
    genesis: &Genesis,
    key: &KeyPair,
    isolated: Arc<AtomicBool>,
    stats: Arc<TransportStats>,
) -> std::io::Result<Outbound> {
    let genesis_hash = genesis.hash();
    let mut peers = Vec::new();
    let wakers: Vec<Arc<Notify>> = genesis
        .replicas
        .iter()
        .map(|_| Arc::new(Notify::new()))
        .collect();
    for info in &genesis.replicas {
        if info.id == me {
            peers.push(None);
            continue;
        }
        let redial = wakers[info.id.index()].clone();
        let (tx, rx) = mpsc::channel(PEER_QUEUE_FRAMES);
        let queued = Arc::new(AtomicUsize::new(0));
        peers.push(Some((tx, queued.clone())));
        tokio::spawn(peer_writer(
            PeerLink {
                me,
                peer: info.clone(),
                tls: tls::connector(key, info.public_key)?,
                key: key.clone(),
                genesis: genesis_hash,
                stats: stats.clone(),
                redial,
            },
            rx,
            queued,
        ));
    }
    Ok(Outbound {
        me,
        peers: Arc::new(peers),
        redial: Redial(Arc::new(wakers)),
        isolated,
        stats,
    })
}

/// Who a peer writer dials and how it proves itself.
struct PeerLink {
    me: ReplicaId,
    peer: ReplicaInfo,
    /// Accepts only the listener that holds this peer's genesis key.
    tls: tokio_rustls::TlsConnector,
    key: KeyPair,
    genesis: medchain_types::Hash32,
    stats: Arc<TransportStats>,
    redial: Arc<Notify>,
}

async fn peer_writer(link: PeerLink, mut rx: mpsc::Receiver<Queued>, queued: Arc<AtomicUsize>) {
    let PeerLink {
        me,
        peer:
            ReplicaInfo {
                id: peer,
                peer_addr: addr,
                ..
            },
        tls,
        key,
        genesis,
        stats,
        redial,
    } = link;
    let mut backoff_ms = 50u64;
    loop {
        let connected = dial_replica(&addr, &tls, Role::Replica(me), &key, genesis, peer).await;
        match connected {
            Ok(s) => {
                backoff_ms = 50;
                tracing::debug!(%peer, "connected");
                // Ok: the queue closed (the node is stopping). An error: redial.
                if send_queued(s, &mut rx, &queued, &stats).await.is_ok() || rx.is_closed() {
                    return;
                }
            }
            Err(e) => {
                tracing::trace!(%peer, error = %e, "connect failed");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(backoff_ms)) => {
                        backoff_ms = (backoff_ms * 2).min(2_000);
                    }
                    _ = redial.notified() => backoff_ms = 50,
                }
            }
        }
    }
}

/// Longest a connection may take from TCP connect to a proven role (TLS and handshake).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// Connect to the replica `listener` at `addr`: TCP, TLS pinned to its genesis key, then
/// the handshake in `role`, all within [`HANDSHAKE_TIMEOUT`].
pub async fn dial_replica(
    addr: &str,
    connector: &tokio_rustls::TlsConnector,
    role: Role,
    key: &KeyPair,
    genesis: medchain_types::Hash32,
    listener: ReplicaId,
) -> std::io::Result<tls::ClientStream> {
    tokio::time::timeout(HANDSHAKE_TIMEOUT, async {
        let tcp = TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        let mut s = tls::connect(connector, tcp).await?;
        dial(&mut s, role, key, genesis, listener).await?;
        Ok(s)
    })
    .await
    .unwrap_or_else(|_| {
        Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "handshake",
        ))
    })
}

/// Send the peer's queued frames until the link fails or the queue closes. Frames are
/// written into a buffer and flushed when the queue runs dry, so that a burst of small
/// votes becomes a few TLS records and system calls instead of one each.
async fn send_queued<S: AsyncWrite + Unpin>(
    s: S,
    rx: &mut mpsc::Receiver<Queued>,
    queued: &AtomicUsize,
    stats: &TransportStats,
) -> std::io::Result<()> {
    let mut w = BufWriter::with_capacity(64 << 10, s);
    while let Some((at, frame)) = rx.recv().await {
        let mut next = Some((at, frame));
        while let Some((at, frame)) = next.take() {
            queued.fetch_sub(frame.len(), Ordering::Relaxed);
            if at.elapsed() > STALE_FRAME_AGE {
                stats.dropped_sends.fetch_add(1, Ordering::Relaxed);
            } else {
                write_frame_unflushed(&mut w, &frame).await?;
            }
            next = rx.try_recv().ok();
        }
        w.flush().await?;
    }
    Ok(())
}

/// What every inbound connection needs, shared by all of them.
#[derive(Debug)]
pub struct Inbound {
    pub genesis: Genesis,
    /// Presents this replica's genesis key; admits only dialers with a genesis key.
    pub tls: tls::Acceptor,
    pub me: ReplicaId,
    pub verifier: Verifier,
    pub core: SyncSender<CoreInput>,
    pub isolated: Arc<AtomicBool>,
    pub stats: Arc<TransportStats>,
    /// Wakes our writer to a peer that has just connected to us.
    pub redial: Redial,
    /// Retransmitted frames that already passed verification.
    pub seen: VerifiedFrames,
    /// Bytes of peer frames waiting for the core: a core busy with a slow disk must not
    /// let peers' retransmissions pile up in memory (the queue's count bound alone
    /// allows gigabytes of megabyte frames).
    pub queued_bytes: Arc<AtomicUsize>,
    /// Each identity's one live connection.
    pub live: LiveLinks,
    /// Each peer's budget of FETCH-BLOCKS and STATUS.
    pub budgets: PeerBudgets,
    /// Connections still proving who they are; at the cap the listener stops accepting
    /// until one finishes (each has [`HANDSHAKE_TIMEOUT`] to do so).
    pub handshakes: Arc<tokio::sync::Semaphore>,
}

impl Inbound {
    /// Everything but the channels, from the genesis.
    pub fn limits_for(genesis: &Genesis) -> (LiveLinks, PeerBudgets, Arc<tokio::sync::Semaphore>) {
        (
            LiveLinks::new(genesis),
            PeerBudgets::new(genesis, Instant::now()),
            Arc::new(tokio::sync::Semaphore::new(HANDSHAKES_MAX)),
        )
    }
}

/// Connections in their TLS handshake or role proof at once.
pub const HANDSHAKES_MAX: usize = 64;

/// Bytes of peer frames queued for the core before new ones are dropped.
pub const CORE_QUEUE_BYTES: usize = 256 << 20;

/// Frames remembered as verified (32 bytes each, about 1 MB in all).
pub const SEEN_FRAMES: usize = 16_384;

/// Longest pause of the accept loop after repeated accept errors (out of file
/// descriptors, typically): retrying at once would spin a core.
pub const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Accept connections on the peer port until the process stops.
pub async fn serve(listener: TcpListener, ctx: Arc<Inbound>) {
    let mut backoff = Duration::ZERO;
    loop {
        let Ok(permit) = ctx.handshakes.clone().acquire_owned().await else {
            return;
        };
        let (stream, addr) = match listener.accept().await {
            Ok(c) => {
                backoff = Duration::ZERO;
                c
            }
            Err(e) => {
                backoff = (backoff * 2).clamp(Duration::from_millis(5), ACCEPT_BACKOFF_MAX);
                tracing::warn!(error = %e, pause_ms = backoff.as_millis() as u64, "peer accept failed");
                tokio::time::sleep(backoff).await;
                continue;
            }
        };
        let ctx = ctx.clone();
        tokio::spawn(async move {
            if let Err(e) = handle_connection(stream, &ctx, permit).await {
                tracing::debug!(%addr, error = %e, "connection closed");
            }
        });
    }
}

async fn handle_connection(
    stream: TcpStream,
    ctx: &Inbound,
    handshake_permit: tokio::sync::OwnedSemaphorePermit,
) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let (stream, role) = tokio::time::timeout(HANDSHAKE_TIMEOUT, prove_dialer(stream, ctx))
        .await
        .unwrap_or_else(|_| {
            Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "handshake",
            ))
        })?;
    drop(handshake_permit);
    let claim = ctx.live.claim(role).ok_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::PermissionDenied, "not in the genesis")
    })?;
    let served = async {
        match role {
            Role::Replica(peer) => serve_replica(stream, ctx, peer).await,
            Role::Client(client) => serve_client(stream, ctx, client).await,
        }
    };
    tokio::select! {
        r = served => r,
        () = claim.superseded() => Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            "superseded by a newer connection with the same key",
        )),
    }
}

/// TLS with a dialer holding a genesis key, then the handshake inside it; the role the
/// dialer claims must be the one the genesis lists under the key TLS proved, so that a
/// gateway's key never opens a replica's link (or the other way round).
async fn prove_dialer(
    stream: TcpStream,
    ctx: &Inbound,
) -> std::io::Result<(tls::ServerStream, Role)> {
    let mut stream = ctx.tls.accept(stream).await?;
    let proven = tls::dialer_key(&stream, &ctx.genesis).ok_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::PermissionDenied, "no genesis key")
    })?;
    let role = accept(&mut stream, &ctx.genesis, ctx.me).await?;
    let claimed = match role {
        Role::Replica(r) => ctx.genesis.replicas.get(r.index()).map(|i| i.public_key),
        Role::Client(c) => ctx
            .genesis
            .clients
            .get(usize::from(c.0))
            .map(|i| i.public_key),
    };
    if claimed != Some(proven) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            "the handshake's role is not the TLS key's",
        ));
    }
    Ok((stream, role))
}

/// Reads an authenticated replica's frames until the connection fails, passing those
/// that verify to the core.
async fn serve_replica<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    ctx: &Inbound,
    peer: ReplicaId,
) -> std::io::Result<()> {
    let Inbound {
        verifier,
        core,
        isolated,
        stats,
        redial,
        seen,
        queued_bytes,
        budgets,
        ..
    } = ctx;
    let max = verifier.limits().max_message_bytes;
    redial.wake(peer);
    loop {
        let frame = read_frame_within(&mut stream, max, frame_deadline).await?;
        if isolated.load(Ordering::Relaxed) {
            continue;
        }
        match verifier.decode_message_cached(&frame, seen) {
            Ok(m) if !budgets.admit(peer, m.get(), Instant::now()) => {
                stats.rate_limited_frames.fetch_add(1, Ordering::Relaxed);
            }
            Ok(m) => {
                let len = frame.len();
                let before = queued_bytes.fetch_add(len, Ordering::Relaxed);
                if (before > 0 && before + len > CORE_QUEUE_BYTES)
                    || core.try_send(CoreInput::Peer(m, len)).is_err()
                {
                    queued_bytes.fetch_sub(len, Ordering::Relaxed);
                    stats.dropped_sends.fetch_add(1, Ordering::Relaxed);
                }
            }
            Err(e) => {
                stats.rejected_frames.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(error = %e, "rejected a peer frame");
            }
        }
    }
}

/// Reads an authenticated client's requests until the connection fails, passing those
/// that verify to the core; replies go back through a writer task of their own.
async fn serve_client<S: AsyncRead + AsyncWrite + Send + 'static>(
    stream: S,
    ctx: &Inbound,
    client: ClientId,
) -> std::io::Result<()> {
    let Inbound {
        verifier,
        core,
        stats,
        ..
    } = ctx;
    let (mut rd, mut wr) = tokio::io::split(stream);
    let (tx, mut rx) = mpsc::channel::<ClientReply>(CLIENT_QUEUE_FRAMES);
    let writer = tokio::spawn(async move {
        while let Some(reply) = rx.recv().await {
            if write_frame(&mut wr, &encode(&reply)).await.is_err() {
                break;
            }
        }
    });
    // The writer holds the other half of the stream: when reading ends (an error, or a
    // newer connection of this client drops this future), so does the connection.
    let _writer = AbortOnDrop(writer);
    loop {
        let frame = read_frame_within(&mut rd, CLIENT_FRAME_MAX_BYTES, frame_deadline).await?;
        let request: SignedRequest = match decode(&frame, CLIENT_FRAME_MAX_BYTES) {
            Ok(r) => r,
            Err(_) => {
                stats.rejected_frames.fetch_add(1, Ordering::Relaxed);
                continue;
            }
        };
        // A client may only submit requests in its own name.
        if request.request.client != client {
            stats.rejected_frames.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        match verifier.verify_request(request) {
            Ok(v) => {
                let _ = core.try_send(CoreInput::Client(v, tx.clone()));
            }
            Err(_) => {
                stats.rejected_frames.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Bind the peer port.
pub async fn bind(addr: &str) -> std::io::Result<(TcpListener, SocketAddr)> {
    let l = TcpListener::bind(addr).await?;
    let a = l.local_addr()?;
    Ok((l, a))
}

#[cfg(test)]
mod tests {
    use super::*;
    use medchain_testkit::{GenesisBuilder, TestKeys};

    const KEYS: TestKeys = TestKeys::new("transport-test-");

    fn inbound(genesis: &Genesis) -> Inbound {
        let (core, _rx) = std::sync::mpsc::sync_channel(16);
        let (live, budgets, handshakes) = Inbound::limits_for(genesis);
        Inbound {
            genesis: genesis.clone(),
            tls: tls::acceptor(&KEYS.replica(0), genesis).expect("acceptor"),
            me: ReplicaId(0),
            verifier: Verifier::new(genesis, medchain_types::Limits::default()),
            core,
            isolated: Arc::default(),
            stats: Arc::default(),
            redial: Redial::default(),
            seen: VerifiedFrames::new(16),
            queued_bytes: Arc::default(),
            live,
            budgets,
            handshakes,
        }
    }

    /// Dial replica 0 over TLS as `tls_key` and claim `role`, signed with `role_key`;
    /// returns what replica 0 decided.
    async fn claim(tls_key: &KeyPair, role: Role, role_key: &KeyPair) -> std::io::Result<Role> {
        let genesis = GenesisBuilder::new("transport-test", KEYS).build();
        let ctx = inbound(&genesis);
        let l = TcpListener::bind("127.0.0.1:0").await?;
        let addr = l.local_addr()?;
        let connector = tls::connector(tls_key, KEYS.replica(0).public())?;
        let hash = genesis.hash();
        let role_key = role_key.clone();
        let dialer = tokio::spawn(async move {
            let tcp = TcpStream::connect(addr).await?;
            let mut s = tls::connect(&connector, tcp).await?;
            dial(&mut s, role, &role_key, hash, ReplicaId(0)).await?;
            // Hold the link until the listener has decided.
            tokio::time::sleep(Duration::from_millis(200)).await;
            Ok::<_, std::io::Error>(())
        });
        let (tcp, _) = l.accept().await?;
        let decided = prove_dialer(tcp, &ctx).await.map(|(_, r)| r);
        let _ = dialer.await;
        decided
    }

    /// An organisation holds both its replica key and its gateway key. TLS with one and
    /// a handshake in the name of the other is refused: a link is exactly what its TLS
    /// key is, so a leaked gateway key never opens a replica's link.
    #[tokio::test]
    async fn the_role_must_be_the_one_whose_key_tls_proved() {
        let ok = claim(
            &KEYS.replica(1),
            Role::Replica(ReplicaId(1)),
            &KEYS.replica(1),
        )
        .await;
        assert_eq!(ok.expect("own key, own role"), Role::Replica(ReplicaId(1)));
        let ok = claim(&KEYS.client(1), Role::Client(ClientId(1)), &KEYS.client(1)).await;
        assert_eq!(ok.expect("own key, own role"), Role::Client(ClientId(1)));
        let mixed = claim(
            &KEYS.client(1),
            Role::Replica(ReplicaId(1)),
            &KEYS.replica(1),
        )
        .await;
        assert!(mixed.is_err(), "{mixed:?}");
        let mixed = claim(&KEYS.replica(1), Role::Client(ClientId(1)), &KEYS.client(1)).await;
        assert!(mixed.is_err(), "{mixed:?}");
    }
}
