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
    /// The replica id; when absent (configs made by `medchain org new`, which runs before
    /// the genesis exists), the genesis replica whose key is `key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<u16>,
    pub genesis: PathBuf,
    pub key: PathBuf,
    /// This node's gateway (client) key.
    pub client_key: PathBuf,
    /// The gateway's client id; when absent, the genesis client whose key is `client_key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<u16>,
    pub data_dir: PathBuf,
    pub http_listen: String,
    /// The API's TLS certificate chain and private key (PEM). Both or neither; without
    /// them the node serves plain HTTP, which it allows on a loopback address only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub https_cert: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub https_key: Option<PathBuf>,
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
    /// When absent, the genesis client whose key is `operator_key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator_client_id: Option<u16>,
    /// The organisation's X25519 encryption key (hex, owner-only), whose public half is
    /// in the genesis: patient data keys are sealed to it. `MEDCHAIN_ENCRYPTION_KEY`
    /// (64 hex digits) stands in for the file. Needed when the genesis names encryption
    /// keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption_key: Option<PathBuf>,
    /// Staff (doctors, pharmacies, departments) must set up two-step sign-in before they
    /// get a full session, and break-glass always needs a code. On unless the file says
    /// otherwise; `init` (demo and test clusters) writes `false`.
    #[serde(default = "default_true")]
    pub mfa_required_for_staff: bool,
    /// Power of one busy core in watts, for the energy figure when the machine has no
    /// RAPL counters (see `energy::DEFAULT_WATTS_PER_CORE` for the default's source).
    #[serde(default = "default_watts_per_core")]
    pub energy_watts_per_core: f64,
}

fn default_true() -> bool {
    true
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
/// An encryption secret from its hex text (read from `origin`), in zeroizing memory.
fn decode_secret(text: &str, origin: &Path) -> Result<zeroize::Zeroizing<[u8; 32]>, ConfigError> {
    let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
    hex::decode_to_slice(text.trim(), bytes.as_mut_slice())
        .map_err(|_| invalid(origin, "an encryption key is 32 bytes (64 hex digits)"))?;
    Ok(bytes)
}

/// Where the new encryption key of a rotation waits beside the current one.
/// In a node's data folder: the sealed first keys of its genesis patients, written by
/// `medchain init`, published by the node and then deleted (`PatientKeys`).
pub const FIRST_PATIENT_KEYS_FILE: &str = "first-patient-keys.toml";

pub fn next_key_path(current: &Path) -> PathBuf {
    let mut p = current.as_os_str().to_owned();
    p.push(".next");
    PathBuf::from(p)
}

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
    if let Ok(v) = std::env::var("MEDCHAIN_HTTPS_CERT") {
        config.https_cert = Some(PathBuf::from(v));
    }
    if let Ok(v) = std::env::var("MEDCHAIN_HTTPS_KEY") {
        config.https_key = Some(PathBuf::from(v));
    }
    if config.https_cert.is_some() != config.https_key.is_some() {
        return Err(invalid(
            path,
            "https_cert and https_key: set both (PEM files) to serve HTTPS, or neither",
        ));
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

/// The id under which the genesis lists `key` among `listed`: the configured id must
/// name that entry, and without one the key finds its own entry. A node signing with a
/// key the genesis does not list for it would be ignored by its peers.
fn resolve_id(
    path: &Path,
    what: &str,
    configured: Option<u16>,
    listed: &[medchain_types::PublicKey],
    key: &KeyPair,
) -> Result<u16, ConfigError> {
    let mine = key.public();
    match configured {
        Some(id) => match listed.get(usize::from(id)) {
            None => Err(invalid(
                path,
                format!("{what} id {id} is not in the genesis"),
            )),
            Some(k) if *k != mine => Err(invalid(
                path,
                format!("{what} key does not match the genesis key of {what} {id}"),
            )),
            Some(_) => Ok(id),
        },
        None => listed
            .iter()
            .position(|k| *k == mine)
            .map(|i| i as u16)
            .ok_or_else(|| {
                invalid(
                    path,
                    format!("{what} key does not match any {what} key in the genesis"),
                )
            }),
    }
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
    /// This replica's id and its gateway's client id, as the genesis lists their keys.
    pub id: ReplicaId,
    pub client_id: medchain_types::ClientId,
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
    /// `MEDCHAIN_DATA_DIR`, `MEDCHAIN_HTTPS_CERT`, `MEDCHAIN_HTTPS_KEY` and
    /// `MEDCHAIN_ENERGY_WATTS_PER_CORE` overrides, load and cross-check the genesis and keys.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let config = read_config(path)?;
        let base = path.parent().unwrap_or(Path::new("."));
        let genesis = load_genesis(&base.join(&config.genesis))?;
        let key = load_key(&base.join(&config.key))?;
        let client_key = load_key(&base.join(&config.client_key))?;
        let id = resolve_id(path, "replica", config.id, &genesis.replica_keys(), &key)?;
        let client_id = resolve_id(
            path,
            "client",
            config.client_id,
            &genesis.client_keys(),
            &client_key,
        )?;
        // Clients 0..n are the gateways of replicas 0..n (the ledger reads a request's
        // organisation from its client id), so a node's two keys are one organisation's.
        if usize::from(client_id) != usize::from(id) {
            return Err(invalid(
                path,
                format!(
                    "client_key does not match this replica's organisation: it is client \
                     {client_id}, the gateway of replica {id} is client {id}"
                ),
            ));
        }
        check_pbft(path, &config.pbft)?;
        let data_dir = base.join(&config.data_dir);
        Ok(NodeFiles {
            id: ReplicaId(id),
            client_id: medchain_types::ClientId(client_id),
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
        self.id
    }

    /// The API's certificate and key files, when HTTPS is configured.
    pub fn https_files(&self) -> Option<(PathBuf, PathBuf)> {
        match (&self.config.https_cert, &self.config.https_key) {
            (Some(c), Some(k)) => Some((self.base_dir.join(c), self.base_dir.join(k))),
            _ => None,
        }
    }

    pub fn db_path(&self) -> PathBuf {
        self.data_dir.join("medchain.sqlite")
    }

    /// The organisation's encryption secret: from `MEDCHAIN_ENCRYPTION_KEY`, else from
    /// the `encryption_key` file; `None` when neither is set. Zeroized when dropped.
    pub fn encryption_secret(&self) -> Result<Option<zeroize::Zeroizing<[u8; 32]>>, ConfigError> {
        let (text, origin) = match std::env::var("MEDCHAIN_ENCRYPTION_KEY") {
            Ok(v) => (
                zeroize::Zeroizing::new(v),
                PathBuf::from("MEDCHAIN_ENCRYPTION_KEY"),
            ),
            Err(_) => match &self.config.encryption_key {
                Some(p) => {
                    let path = self.base_dir.join(p);
                    (zeroize::Zeroizing::new(read(&path)?), path)
                }
                None => return Ok(None),
            },
        };
        decode_secret(&text, &origin).map(Some)
    }

    /// The encryption secrets this node may open patient keys with: `encryption_secret`,
    /// and during a key rotation the new one beside it (`encryption_key` with the
    /// suffix `.next`, written by `medchain user rotate-encryption-key`).
    pub fn encryption_secrets(&self) -> Result<Vec<zeroize::Zeroizing<[u8; 32]>>, ConfigError> {
        let mut out: Vec<_> = self.encryption_secret()?.into_iter().collect();
        if let Some(p) = &self.config.encryption_key {
            let next = self.base_dir.join(next_key_path(p));
            if next.exists() {
                out.push(decode_secret(
                    &zeroize::Zeroizing::new(read(&next)?),
                    &next,
                )?);
            }
        }
        Ok(out)
    }

    /// The operator's client id and key, if configured.
    pub fn operator(&self) -> Result<(medchain_types::ClientId, KeyPair), ConfigError> {
        let Some(path) = &self.config.operator_key else {
            return Err(invalid(&self.config_path, "operator_key is not configured"));
        };
        let key = load_key(&self.base_dir.join(path))?;
        let id = resolve_id(
            &self.config_path,
            "operator",
            self.config.operator_client_id,
            &self.genesis.client_keys(),
            &key,
        )?;
        let expected = self.genesis.replicas.len() + self.id.index();
        if usize::from(id) != expected {
            return Err(invalid(
                &self.config_path,
                format!(
                    "operator_key does not match this replica's organisation: it is client \
                     {id}, the operator of replica {} is client {expected}",
                    self.id.0
                ),
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
