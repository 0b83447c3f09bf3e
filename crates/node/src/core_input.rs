//! The types the core thread shares with the tasks around it: what reaches the core
//! (peer messages, client requests, shutdown), and the live figures it publishes (head,
//! view). In their own file so that the transport, the batcher and the core loop depend
//! on them rather than on each other.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use medchain_types::{Hash32, PeerMessage, SignedRequest, Verified};
use tokio::sync::mpsc;

use crate::reply::ClientReply;

/// The sending side of the core's input queue (bounded: senders see when it is full).
pub type CoreSender = std::sync::mpsc::SyncSender<CoreInput>;

/// Something that reaches the core thread.
#[derive(Debug)]
pub enum CoreInput {
    /// A verified peer message and the size of its frame (see `Inbound::queued_bytes`).
    Peer(Verified<PeerMessage>, usize),
    Client(Verified<SignedRequest>, mpsc::Sender<ClientReply>),
    Shutdown,
}

/// The last executed block as the core published it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Head {
    pub height: u64,
    pub hash: Hash32,
    pub view: u64,
}

/// Live figures the core publishes for HTTP. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct LiveStatus(Arc<Live>);

#[derive(Debug, Default)]
struct Live {
    view: AtomicU64,
    height: AtomicU64,
    in_view_change: AtomicBool,
    head_hash: Mutex<Hash32>,
}

impl LiveStatus {
    pub fn head(&self) -> Head {
        Head {
            height: self.0.height.load(Ordering::Relaxed),
            hash: self.0.head_hash.lock().map(|h| *h).unwrap_or_default(),
            view: self.0.view.load(Ordering::Relaxed),
        }
    }

    pub fn in_view_change(&self) -> bool {
        self.0.in_view_change.load(Ordering::Relaxed)
    }

    pub(crate) fn set_head(&self, height: u64, hash: Hash32) {
        self.0.height.store(height, Ordering::Relaxed);
        if let Ok(mut h) = self.0.head_hash.lock() {
            *h = hash;
        }
    }

    pub(crate) fn set_view(&self, view: u64, in_view_change: bool) {
        self.0.view.store(view, Ordering::Relaxed);
        self.0
            .in_view_change
            .store(in_view_change, Ordering::Relaxed);
    }
}
