//! The PBFT client protocol over TLS (section 4.1): a client (a node's API gateway, a
//! test, the benchmark) connects to a replica's peer port as a genesis-listed client,
//! sends signed requests, and gets a reply once its request is committed and durable.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use medchain_types::{decode, encode, ClientId, Genesis, Hash32, KeyPair, ReplicaId, Request};
use tokio::sync::{oneshot, Mutex};

use crate::frame::{read_frame, write_frame};
use crate::handshake::Role;
pub use crate::reply::ClientReply;

type Waiters = Arc<Mutex<HashMap<u64, oneshot::Sender<ClientReply>>>>;

/// A connected client. Cheap to clone; requests may be submitted concurrently.
#[derive(Debug, Clone)]
pub struct LedgerClient {
    id: ClientId,
    key: Arc<KeyPair>,
    tx: tokio::sync::mpsc::Sender<Vec<u8>>,
    waiters: Waiters,
}

impl LedgerClient {
    /// Connect to `replica` at `addr` as client `id`, over TLS pinned to the replica's
    /// genesis key.
    pub async fn connect(
        addr: SocketAddr,
        replica: ReplicaId,
        id: ClientId,
        key: KeyPair,
        genesis: &Genesis,
    ) -> std::io::Result<Self> {
        let replica_key = genesis
            .replicas
            .get(replica.index())
            .map(|r| r.public_key)
            .ok_or_else(|| std::io::Error::other("replica is not in the genesis"))?;
        let connector = crate::tls::connector(&key, replica_key)?;
        let stream = crate::transport::dial_replica(
            &addr.to_string(),
            &connector,
            Role::Client(id),
            &key,
            genesis.hash(),
            replica,
        )
        .await?;
        let (mut rd, mut wr) = tokio::io::split(stream);
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(4096);
        tokio::spawn(async move {
            while let Some(frame) = rx.recv().await {
                if write_frame(&mut wr, &frame).await.is_err() {
                    break;
                }
            }
        });
        let waiters: Waiters = Arc::default();
        let w = waiters.clone();
        tokio::spawn(async move {
            while let Ok(frame) = read_frame(&mut rd, 1024).await {
                if let Ok(reply) = decode::<ClientReply>(&frame, 1024) {
                    if let Some(done) = w.lock().await.remove(&reply.request_id) {
                        let _ = done.send(reply);
                    }
                }
            }
            // Connection gone: dropping the waiters tells every caller.
            w.lock().await.clear();
        });
        Ok(LedgerClient {
            id,
            key: Arc::new(key),
            tx,
            waiters,
        })
    }

    /// Submit a request and wait for its commit.
    pub async fn submit(&self, request_id: u64, payload: Vec<u8>) -> std::io::Result<ClientReply> {
        self.submit_with_content(request_id, payload, Vec::new())
            .await
    }

    /// Submit a request whose payload refers to `content` by hash, and wait for its
    /// commit. The content travels with the request; only its hashes are signed.
    pub async fn submit_with_content(
        &self,
        request_id: u64,
        payload: Vec<u8>,
        content: Vec<Vec<u8>>,
    ) -> std::io::Result<ClientReply> {
        let signed = Request {
            client: self.id,
            request_id,
            payload,
            content_hashes: content.iter().map(|c| Hash32::sha256(c)).collect(),
        }
        .sign_with_content(&self.key, content);
        let (done_tx, done_rx) = oneshot::channel();
        self.waiters.lock().await.insert(request_id, done_tx);
        self.tx
            .send(encode(&signed))
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "disconnected"))?;
        done_rx
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "disconnected"))
    }
}
