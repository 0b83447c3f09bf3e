//! The node runtime: everything around the sans-IO PBFT core that touches the outside
//! world, for any application. A dedicated thread runs the core (so its steps never wait
//! on the network); tokio tasks run the peer transport, the client port and HTTP; a
//! writer thread (medchain-store) makes votes and blocks durable before they are acted
//! on. The application (its state machine, payload format and HTTP surface) comes in
//! through the [`Application`] trait; the records service's wiring is `medchain-server`.
//!
//! Map: [`app`] (what the node needs of its application), [`run`] (start-up and
//! shutdown), [`core`] (the core thread's loop), [`core_input`] (what reaches the core
//! and what it publishes), [`config`] (TOML and environment), [`frame`] (length-prefixed
//! frames with a size limit), [`handshake`] (each side proves its key), [`http_server`] (HTTP(S) with
//! connection and header-time limits), [`transport`]
//! (connections, reconnect with backoff, bounded per-peer queues), [`peer_limits`] (one
//! live connection per identity, budgets for FETCH-BLOCKS and STATUS), [`batcher`] (the
//! node's in-process client that batches its users' transactions into one signed
//! request), [`client`] (the PBFT client protocol, used by tools, tests and benchmarks), [`reply`]
//! (what a replica answers a client),
//! [`metrics`] and [`energy`] (what the replica measures about itself), [`error`].

pub mod app;
pub mod batcher;
pub mod client;
pub mod config;
mod core;
pub mod core_input;
pub mod energy;
pub mod error;
pub mod frame;
pub mod handshake;
pub mod http_server;
pub mod metrics;
pub mod peer_limits;
pub mod reply;
pub mod run;
pub mod tls;
pub mod transport;

pub use app::{Application, NodeHandles};
pub use batcher::BatchFormat;
pub use config::{NodeConfig, NodeFiles};
pub use error::NodeError;
pub use run::{check_database, run_node};
