//! The node runtime: everything around the sans-IO PBFT core that touches the outside
//! world. A dedicated thread runs the core (so its steps never wait on the network);
//! tokio tasks run the peer transport, the client port and HTTP; a writer thread
//! (medchain-store) makes votes and blocks durable before they are acted on.
//!
//! Map: [`config`] (TOML and environment), [`frame`] (length-prefixed frames with a
//! size limit), [`handshake`] (each side proves its key), [`transport`] (connections,
//! reconnect with backoff, bounded per-peer queues), [`runtime`] (the core thread),
//! [`client`] (the PBFT client protocol, used by gateways, tests and benchmarks),
//! [`http`] (the records API wired to this replica), [`metrics`] and [`energy`] (what
//! the replica measures about itself).

pub mod client;
pub mod config;
pub mod energy;
pub mod frame;
pub mod gateway;
pub mod handshake;
pub mod http;
pub mod metrics;
pub mod runtime;
pub mod transport;

pub use config::{NodeConfig, NodeFiles};
pub use runtime::{run_node, NodeError};
