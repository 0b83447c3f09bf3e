//! A replica's configuration file (`nodeI.toml`), overridable by `MEDCHAIN_*`
//! environment variables, and the files it points to (genesis, keys, data directory).

use std::path::{Path, PathBuf};

use medchain_pbft::Config;
use medchain_types::{Genesis, KeyPair, Limits, ReplicaId};
use serde::{Deserialize, Serialize};

/// What `nodeI.toml` holds. Paths are relative to the file's directory.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    pub id: u16,
    pub genesis: PathBuf,
    pub key: PathBuf,
    /// This node's gateway (client) key.
    pub client_key: PathBuf,
    pub client_id: u16,
    pub data_dir: PathBuf,
    pub http_listen: String,
    pub p2p_listen: String,
    #[serde(default)]
    pub pbft: PbftSettings,
    /// Hold records until `validate_block` (the original design's manual mode) instead of
    /// committing each one at once.
    #[serde(default)]
    pub manual_validation: bool,
    /// The organisation's operator key and client id, for command-line administration
    /// (`medchain user`, `medchain load`), separate from the gateway so that their
    /// request ids never collide.
    #[serde(default)]
    pub operator_key: Option<PathBuf>,
    #[serde(default)]
    pub operator_client_id: Option<u16>,
    /// Power of one busy core in watts, for the energy figure when the machine has no
    /// RAPL counters (see `energy::DEFAULT_WATTS_PER_CORE` for the default's source).
    #[serde(default = "default_watts_per_core")]
    pub energy_watts_per_core: f64,
}

fn default_watts_per_core() -> f64 {
    crate::energy::DEFAULT_WATTS_PER_CORE
}

/// PBFT timing and sizes (see `medchain_pbft::Config` for their meaning).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PbftSettings {
    pub checkpoint_interval: u64,
    pub window: u64,
    pub max_batch_requests: usize,
    pub max_batch_delay_ms: u64,
    pub request_timeout_ms: u64,
    pub view_change_timeout_ms: u64,
    pub resend_interval_ms: u64,
    pub status_interval_ms: u64,
}

/// The core's own defaults (`medchain_pbft::Config::new`), so that a setting left out of
/// the file means the same as a core built without a file.
impl Default for PbftSettings {
    fn default() -> Self {
        let c = Config::new(medchain_types::ReplicaId(0));
        PbftSettings {
            checkpoint_interval: c.checkpoint_interval,
            window: c.limits.window,
            max_batch_requests: c.limits.max_batch_requests,
            max_batch_delay_ms: c.max_batch_delay_ms,
            request_timeout_ms: c.request_timeout_ms,
            view_change_timeout_ms: c.view_change_timeout_ms,
            resend_interval_ms: c.resend_interval_ms,
            status_interval_ms: c.status_interval_ms,
        }
    }
}

/// The file name of the node-local sign-in database in a data directory.
pub const SIGN_IN_DB_FILE: &str = "sign-in.sqlite";
/// Its name before it was named for what it holds.
const LEGACY_SIGN_IN_DB_FILE: &str = "gateway.sqlite";

/// See [`NodeFiles::adopt_legacy_sign_in_db`].
pub fn adopt_legacy_sign_in_db(data_dir: &Path) -> std::io::Result<()> {
    let new = data_dir.join(SIGN_IN_DB_FILE);
    let old = data_dir.join(LEGACY_SIGN_IN_DB_FILE);
    if new.exists() || !old.exists() {
        return Ok(());
    }
    for suffix in ["-wal", "-shm"] {
        let from = data_dir.join(format!("{LEGACY_SIGN_IN_DB_FILE}{suffix}"));
        if from.exists() {
            std::fs::rename(from, data_dir.join(format!("{SIGN_IN_DB_FILE}{suffix}")))?;
        }
    }
    std::fs::rename(old, new)
}

/// Why a configuration could not be used. Names the file and the field.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

fn invalid(path: &Path, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

fn read(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Load a key file: 64 hex digits of secret.
pub fn load_key(path: &Path) -> Result<KeyPair, ConfigError> {
    let text = read(path)?;
    let bytes = hex::decode(text.trim()).map_err(|_| invalid(path, "not a hex key"))?;
    let secret: [u8; 32] = bytes
        .try_into()
        .map_err(|_| invalid(path, "a key is 32 bytes (64 hex digits)"))?;
    Ok(KeyPair::from_secret(secret))
}

pub fn load_genesis(path: &Path) -> Result<Genesis, ConfigError> {
    let g: Genesis = toml::from_str(&read(path)?).map_err(|e| invalid(path, e.to_string()))?;
    g.validate().map_err(|e| invalid(path, e.to_string()))?;
    Ok(g)
}

/// `nodeI.toml` with the `MEDCHAIN_*` overrides applied. The energy setting is checked
/// here, after its override, because the override may be what is out of range.
fn read_config(path: &Path) -> Result<NodeConfig, ConfigError> {
    let mut config: NodeConfig =
        toml::from_str(&read(path)?).map_err(|e| invalid(path, e.to_string()))?;
    if let Ok(v) = std::env::var("MEDCHAIN_HTTP_LISTEN") {
        config.http_listen = v;
    }
    if let Ok(v) = std::env::var("MEDCHAIN_P2P_LISTEN") {
        config.p2p_listen = v;
    }
    if let Ok(v) = std::env::var("MEDCHAIN_DATA_DIR") {
        config.data_dir = PathBuf::from(v);
    }
    if let Ok(v) = std::env::var("MEDCHAIN_ENERGY_WATTS_PER_CORE") {
        config.energy_watts_per_core = v.parse().map_err(|_| {
            invalid(
                path,
                "MEDCHAIN_ENERGY_WATTS_PER_CORE: expected a number of watts",
            )
        })?;
    }
    if !(config.energy_watts_per_core.is_finite()
        && config.energy_watts_per_core > 0.0
        && config.energy_watts_per_core <= 1_000.0)
    {
        return Err(invalid(
            path,
            "energy_watts_per_core: expected watts between 0 and 1000",
        ));
    }
    Ok(config)
}

/// The replica key and the gateway key must be the ones the genesis lists for this
/// replica and client: a node signing with any other key would be ignored by its peers.
fn check_keys(
    path: &Path,
    config: &NodeConfig,
    genesis: &Genesis,
    key: &KeyPair,
    client_key: &KeyPair,
) -> Result<(), ConfigError> {
    let me = genesis
        .replicas
        .get(usize::from(config.id))
        .ok_or_else(|| invalid(path, format!("id {} is not in the genesis", config.id)))?;
    if me.public_key != key.public() {
        return Err(invalid(
            path,
            "key does not match this replica's genesis key",
        ));
    }
    let client = genesis
        .clients
        .get(usize::from(config.client_id))
        .ok_or_else(|| invalid(path, "client_id is not in the genesis"))?;
    if client.public_key != client_key.public() {
        return Err(invalid(
            path,
            "client_key does not match the genesis client key",
        ));
    }
    Ok(())
}

fn check_pbft(path: &Path, p: &PbftSettings) -> Result<(), ConfigError> {
    if p.checkpoint_interval == 0 || p.window < 2 * p.checkpoint_interval {
        return Err(invalid(
            path,
            "pbft.window must be at least 2 x checkpoint_interval",
        ));
    }
    if p.max_batch_requests == 0 || p.max_batch_requests > 4096 {
        return Err(invalid(path, "pbft.max_batch_requests must be 1..=4096"));
    }
    Ok(())
}

/// Everything a node needs, loaded and checked.
#[derive(Debug)]
pub struct NodeFiles {
    pub config: NodeConfig,
    pub genesis: Genesis,
    pub key: KeyPair,
    pub client_key: KeyPair,
    pub data_dir: PathBuf,
    /// Where the configuration was read from (relative paths start at its directory).
    pub config_path: PathBuf,
    pub base_dir: PathBuf,
}

impl NodeFiles {
    /// Read `nodeI.toml`, apply `MEDCHAIN_HTTP_LISTEN`, `MEDCHAIN_P2P_LISTEN` and
    /// `MEDCHAIN_DATA_DIR`, `MEDCHAIN_ENERGY_WATTS_PER_CORE` overrides, load and cross-check the genesis and keys.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let config = read_config(path)?;
        let base = path.parent().unwrap_or(Path::new("."));
        let genesis = load_genesis(&base.join(&config.genesis))?;
        let key = load_key(&base.join(&config.key))?;
        let client_key = load_key(&base.join(&config.client_key))?;
        check_keys(path, &config, &genesis, &key, &client_key)?;
        check_pbft(path, &config.pbft)?;
        let data_dir = base.join(&config.data_dir);
        Ok(NodeFiles {
            config_path: path.to_path_buf(),
            base_dir: base.to_path_buf(),
            config,
            genesis,
            key,
            client_key,
            data_dir,
        })
    }

    pub fn id(&self) -> ReplicaId {
        ReplicaId(self.config.id)
    }

    pub fn db_path(&self) -> PathBuf {
        self.data_dir.join("medchain.sqlite")
    }

    /// The operator's client id and key, if configured.
    pub fn operator(&self) -> Result<(medchain_types::ClientId, KeyPair), ConfigError> {
        let (Some(path), Some(id)) = (&self.config.operator_key, self.config.operator_client_id)
        else {
            return Err(invalid(
                &self.config_path,
                "operator_key and operator_client_id are not configured",
            ));
        };
        let key = load_key(&self.base_dir.join(path))?;
        let listed = self.genesis.clients.get(usize::from(id));
        if listed.map(|c| c.public_key) != Some(key.public()) {
            return Err(invalid(
                &self.config_path,
                "operator_key does not match the genesis client it names",
            ));
        }
        Ok((medchain_types::ClientId(id), key))
    }

    /// The node-local sign-in database: password hashes, sessions and throttle state of
    /// this organisation's users, never replicated. Called `gateway.sqlite` before; a
    /// data directory that still has that file gets it renamed (see
    /// [`NodeFiles::adopt_legacy_sign_in_db`]).
    pub fn sign_in_db_path(&self) -> PathBuf {
        self.data_dir.join(SIGN_IN_DB_FILE)
    }

    /// Rename a data directory's `gateway.sqlite` (and its WAL files) to the sign-in
    /// database's name, once, when only the old one exists.
    pub fn adopt_legacy_sign_in_db(&self) -> std::io::Result<()> {
        adopt_legacy_sign_in_db(&self.data_dir)
    }

    pub fn limits(&self) -> Limits {
        Limits {
            window: self.config.pbft.window,
            max_batch_requests: self.config.pbft.max_batch_requests,
            ..Limits::default()
        }
    }

    /// The PBFT core configuration.
    pub fn pbft_config(&self) -> Config {
        let p = &self.config.pbft;
        let mut c = Config::new(self.id());
        c.checkpoint_interval = p.checkpoint_interval;
        c.limits = self.limits();
        c.max_in_flight = p.window.min(64);
        c.max_batch_delay_ms = p.max_batch_delay_ms;
        c.request_timeout_ms = p.request_timeout_ms;
        c.view_change_timeout_ms = p.view_change_timeout_ms;
        c.resend_interval_ms = p.resend_interval_ms;
        c.status_interval_ms = p.status_interval_ms;
        // Three resends without an answer: ask another peer.
        c.fetch_timeout_ms = p.resend_interval_ms * 3;
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A data directory written before the rename keeps its sign-in data; one that has
    /// both files keeps the new one untouched.
    #[test]
    fn a_legacy_gateway_database_is_adopted_once() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        std::fs::write(dir.path().join("gateway.sqlite"), b"old")?;
        std::fs::write(dir.path().join("gateway.sqlite-wal"), b"wal")?;
        adopt_legacy_sign_in_db(dir.path())?;
        assert_eq!(std::fs::read(dir.path().join(SIGN_IN_DB_FILE))?, b"old");
        assert_eq!(
            std::fs::read(dir.path().join("sign-in.sqlite-wal"))?,
            b"wal"
        );
        assert!(!dir.path().join("gateway.sqlite").exists());
        std::fs::write(dir.path().join("gateway.sqlite"), b"stray")?;
        adopt_legacy_sign_in_db(dir.path())?;
        assert_eq!(std::fs::read(dir.path().join(SIGN_IN_DB_FILE))?, b"old");
        Ok(())
    }
}
