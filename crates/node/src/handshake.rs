//! Connection handshake: the dialer names its role (replica i or client c), the listener
//! answers with a fresh random nonce, and the dialer signs (genesis hash, role, nonce,
//! listener) with the key the genesis lists for that role. A connection is only used
//! after the listener has verified that signature, and the nonce makes a recorded
//! handshake useless for a replay.

use borsh::{BorshDeserialize, BorshSerialize};
use medchain_types::codec::tagged_bytes;
use medchain_types::crypto::verify_signature;
use medchain_types::{decode, encode, ClientId, Genesis, Hash32, KeyPair, ReplicaId, Signature};
use rand::RngCore;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::frame::{read_frame, write_frame};

pub const HANDSHAKE_DOMAIN: &[u8] = b"medchain/v1/handshake";
const HANDSHAKE_FRAME_MAX_BYTES: usize = 1024;

/// Who is dialing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum Role {
    Replica(ReplicaId),
    Client(ClientId),
}

#[derive(Debug, BorshSerialize, BorshDeserialize)]
struct Hello {
    role: Role,
    genesis: Hash32,
}

#[derive(Debug, BorshSerialize, BorshDeserialize)]
struct Challenge {
    nonce: [u8; 32],
}

#[derive(Debug, BorshSerialize, BorshDeserialize)]
struct Proof {
    signature: Signature,
}

#[derive(Debug, BorshSerialize)]
struct Signed<'a> {
    genesis: &'a Hash32,
    role: &'a Role,
    nonce: &'a [u8; 32],
    listener: ReplicaId,
}

fn err(msg: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::PermissionDenied, msg.to_string())
}

/// Dialer side.
pub async fn dial<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    role: Role,
    key: &KeyPair,
    genesis: Hash32,
    listener: ReplicaId,
) -> std::io::Result<()> {
    write_frame(s, &encode(&Hello { role, genesis })).await?;
    let ch: Challenge = decode(
        &read_frame(s, HANDSHAKE_FRAME_MAX_BYTES).await?,
        HANDSHAKE_FRAME_MAX_BYTES,
    )
    .map_err(|_| err("bad challenge"))?;
    let bytes = tagged_bytes(
        HANDSHAKE_DOMAIN,
        &Signed {
            genesis: &genesis,
            role: &role,
            nonce: &ch.nonce,
            listener,
        },
    );
    write_frame(
        s,
        &encode(&Proof {
            signature: key.sign(&bytes),
        }),
    )
    .await
}

/// Listener side: returns the proven role of the dialer.
pub async fn accept<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    genesis: &Genesis,
    me: ReplicaId,
) -> std::io::Result<Role> {
    let hello: Hello = decode(
        &read_frame(s, HANDSHAKE_FRAME_MAX_BYTES).await?,
        HANDSHAKE_FRAME_MAX_BYTES,
    )
    .map_err(|_| err("bad hello"))?;
    let genesis_hash = genesis.hash();
    if hello.genesis != genesis_hash {
        return Err(err("peer is on another chain"));
    }
    let key = match hello.role {
        Role::Replica(r) => genesis.replicas.get(r.index()).map(|i| i.public_key),
        Role::Client(c) => genesis.clients.get(usize::from(c.0)).map(|i| i.public_key),
    }
    .ok_or_else(|| err("unknown peer"))?;
    let mut nonce = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    write_frame(s, &encode(&Challenge { nonce })).await?;
    let proof: Proof = decode(
        &read_frame(s, HANDSHAKE_FRAME_MAX_BYTES).await?,
        HANDSHAKE_FRAME_MAX_BYTES,
    )
    .map_err(|_| err("bad proof"))?;
    let bytes = tagged_bytes(
        HANDSHAKE_DOMAIN,
        &Signed {
            genesis: &genesis_hash,
            role: &hello.role,
            nonce: &nonce,
            listener: me,
        },
    );
    if !verify_signature(&key, &bytes, &proof.signature) {
        return Err(err("handshake signature does not verify"));
    }
    Ok(hello.role)
}
