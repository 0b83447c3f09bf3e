//! Why a node cannot run: each failure names what is wrong without internals.

/// Why a node cannot run.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("storage: {0}")]
    Store(#[from] medchain_store::StoreError),
    #[error("refusing to start: {0}")]
    Corrupt(String),
    #[error("network: {0}")]
    Io(#[from] std::io::Error),
    #[error("HTTP: {0}")]
    Http(String),
    #[error("API: {0}")]
    Api(String),
}
