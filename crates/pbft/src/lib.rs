//! The sans-IO PBFT replica (Castro & Liskov, "Practical Byzantine Fault Tolerance",
//! OSDI 1999; TOCS 2002): a pure state machine, `step(now, input) -> outputs`.
//!
//! No sockets, no threads, no clock and no disk inside: the caller feeds verified
//! messages, client requests and ticks with the current time, and carries out the
//! outputs in order (persist before send, commit blocks in height order). That is what
//! lets the same code run under the deterministic simulator and in the node runtime.
//!
//! Map of the crate:
//! - [`config`]: timeouts, batch and window sizes;
//! - [`io`]: what goes in and out of `step`;
//! - [`durable`]: the vote state a replica must persist to restart safely;
//! - [`clients`]: per-client deduplication of requests;
//! - [`replica`]: the state machine and the normal case (section 4.2);
//! - [`checkpoint`]: checkpoints and garbage collection (section 4.3);
//! - [`view_change`]: view change and new view (section 4.4);
//! - [`state_transfer`]: catching up from peers' certified blocks (section 4.3 / TOCS 6.2).

pub mod checkpoint;
pub mod clients;
pub mod config;
pub mod durable;
pub mod io;
mod log;
pub mod replica;
pub mod state_transfer;
pub mod view_change;

pub use clients::ClientTable;
pub use config::Config;
#[cfg(feature = "planted-bugs")]
pub use config::PlantedBug;
pub use durable::{DurableRecord, DurableState};
pub use io::{Input, Output, Reply};
pub use replica::{ChainState, Mode, Replica};
