//! The key ceremony: each organisation makes its own keys (`medchain org new`) and
//! publishes only `org.toml`; anyone assembles the genesis from those public files
//! (`medchain genesis`). No step ever sees another organisation's private key, so no
//! folder anywhere can forge a commit certificate on its own.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use medchain_node::config::{NodeConfig, PbftSettings};
use medchain_types::codec::FORMAT_VERSION;
use medchain_types::genesis::{ClientInfo, GenesisConsent, GenesisUser};
use medchain_types::{EncryptionKey, Genesis, KeyPair, PublicKey, ReplicaId, ReplicaInfo};
use rand::RngCore;
use serde::{Deserialize, Serialize};

/// What an organisation publishes about itself: its name, where its node answers, and the
/// public halves of its keys. Safe to mail around; the genesis is built from these.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrgFile {
    pub name: String,
    /// Where the other replicas reach this organisation's replica (host:port).
    pub peer_addr: String,
    /// Where this organisation's users reach its API and web UI (host:port).
    pub http_addr: String,
    /// Signs consensus messages.
    pub replica_key: PublicKey,
    /// Signs the requests of this organisation's API gateway.
    pub gateway_key: PublicKey,
    /// Signs the organisation's command-line administration (`medchain user`).
    pub operator_key: PublicKey,
    /// X25519: patient data keys are sealed to it, so that only this organisation's
    /// node can read what it is entitled to. Absent from files made before encryption;
    /// a genesis of such files keeps content in clear.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption_key: Option<EncryptionKey>,
}

/// Names of the files in an organisation's folder.
pub const ORG_FILE: &str = "org.toml";
pub const NODE_FILE: &str = "node.toml";
pub const GENESIS_FILE: &str = "genesis.toml";
const REPLICA_KEY: &str = "keys/replica.key";
const GATEWAY_KEY: &str = "keys/gateway.key";
const OPERATOR_KEY: &str = "keys/operator.key";
const ENCRYPTION_KEY: &str = "keys/encryption.key";
/// The API's TLS certificate (public) and its private key, made by `org new` for an API
/// address that is not loopback; replace both with CA-issued PEM files for real users.
const API_CERT: &str = "tls/api.crt";
const API_TLS_KEY: &str = "keys/api-tls.key";
const DATA_DIR: &str = "data";

#[derive(clap::Args, Debug)]
pub struct OrgNewArgs {
    /// The organisation's folder (created, owner-only); it must not hold an organisation.
    #[arg(long)]
    pub dir: PathBuf,
    /// The organisation's name as users and other organisations see it.
    #[arg(long)]
    pub name: String,
    /// host:port where the replica listens for, and is reached by, its peers.
    #[arg(long)]
    pub p2p: String,
    /// host:port of the API and web UI.
    #[arg(long)]
    pub http: String,
}

#[derive(clap::Args, Debug)]
pub struct GenesisArgs {
    /// Where to write the genesis; an existing file is never overwritten.
    #[arg(long)]
    pub out: PathBuf,
    /// Each organisation's public `org.toml`; replica i is the i-th file.
    #[arg(required = true, num_args = 1..)]
    pub orgs: Vec<PathBuf>,
}

pub(crate) fn fresh_key() -> KeyPair {
    let mut secret = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut secret);
    KeyPair::from_secret(secret)
}

/// A new key file, owner-only from its first byte; an existing file is never replaced.
pub(crate) fn write_secret(path: &Path, key: &KeyPair) -> anyhow::Result<()> {
    write_private(path, &format!("{}\n", hex::encode(key.secret_bytes())))
}

/// A new owner-only (0600) file; an existing file is never replaced.
pub(crate) fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(text.as_bytes())?;
    Ok(())
}

/// Whether users reach the API on this machine only (plain HTTP is allowed there).
fn is_loopback_host(addr: &str) -> bool {
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// A self-signed ECDSA P-256 certificate for the API's host name or address (browsers
/// do not take Ed25519 server certificates), so that a node made by `org new` serves
/// HTTPS from its first start. PEM certificate and PEM private key.
fn api_certificate(http_addr: &str) -> anyhow::Result<(String, String)> {
    let host = http_addr.rsplit_once(':').map_or(http_addr, |(h, _)| h);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .context("generating the API's TLS key")?;
    let mut params = rcgen::CertificateParams::new(vec![host.to_string()])
        .context("the --http host is not a valid certificate name")?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, host);
    let cert = params
        .self_signed(&key)
        .context("self-signing the API certificate")?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// Create `path` (and its parents) and make it owner-only (0700): these folders hold
/// private keys and, once a node runs, password hashes and the ledger.
pub(crate) fn private_dir(path: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(path).with_context(|| format!("creating {}", path.display()))?;
    medchain_api::private_files::secure_dir(path)
        .with_context(|| format!("making {} owner-only", path.display()))
}

/// A name is shown to users and written into the genesis: printable, one line, bounded.
fn check_org_args(a: &OrgNewArgs) -> anyhow::Result<()> {
    let name = a.name.trim();
    if name.is_empty() || name.len() > 100 || name.chars().any(char::is_control) {
        bail!("--name must be 1 to 100 printable characters");
    }
    for (flag, addr) in [("--p2p", &a.p2p), ("--http", &a.http)] {
        check_host_port(flag, addr)?;
    }
    if a.dir.join(ORG_FILE).exists() || a.dir.join("keys").exists() {
        bail!(
            "{} already holds an organisation; refusing to overwrite its keys",
            a.dir.display()
        );
    }
    Ok(())
}

/// `host:port` with a port in 1..=65535 and a host without spaces or a scheme.
fn check_host_port(flag: &str, addr: &str) -> anyhow::Result<()> {
    let bad = || anyhow::anyhow!("{flag} expects host:port (e.g. 10.0.0.1:7000), got {addr:?}");
    let (host, port) = addr.rsplit_once(':').ok_or_else(bad)?;
    let port: u16 = port.parse().map_err(|_| bad())?;
    if port == 0 || host.is_empty() || host.len() > 253 || host.contains(['/', ' ']) {
        return Err(bad());
    }
    Ok(())
}

/// `medchain org new`: the organisation's private keys, its public `org.toml` and its
/// `node.toml`. The node learns its replica and client ids from the genesis, by its keys.
pub fn org_new(a: &OrgNewArgs) -> anyhow::Result<()> {
    let org = create_org(a)?;
    println!(
        "created {} in {}\n  send {} to whoever assembles the genesis (`medchain genesis`);\n  \
         put the genesis in {} and run `medchain node --config {}`",
        org.name,
        a.dir.display(),
        a.dir.join(ORG_FILE).display(),
        a.dir.join(GENESIS_FILE).display(),
        a.dir.join(NODE_FILE).display(),
    );
    Ok(())
}

/// The work of `org new`, also used by `init` for each of its organisations.
pub(crate) fn create_org(a: &OrgNewArgs) -> anyhow::Result<OrgFile> {
    check_org_args(a)?;
    private_dir(&a.dir)?;
    private_dir(&a.dir.join("keys"))?;
    private_dir(&a.dir.join(DATA_DIR))?;
    let (replica, gateway, operator) = (fresh_key(), fresh_key(), fresh_key());
    write_secret(&a.dir.join(REPLICA_KEY), &replica)?;
    write_secret(&a.dir.join(GATEWAY_KEY), &gateway)?;
    write_secret(&a.dir.join(OPERATOR_KEY), &operator)?;
    let (encryption, encryption_public) = medchain_seal::OrgSecretKey::generate();
    write_private(
        &a.dir.join(ENCRYPTION_KEY),
        &zeroize::Zeroizing::new(format!("{}\n", hex::encode(encryption.as_bytes()))),
    )?;
    let org = OrgFile {
        name: a.name.trim().to_string(),
        peer_addr: a.p2p.clone(),
        http_addr: a.http.clone(),
        replica_key: replica.public(),
        gateway_key: gateway.public(),
        operator_key: operator.public(),
        encryption_key: Some(EncryptionKey(encryption_public.0)),
    };
    if !is_loopback_host(&a.http) {
        let (cert, key) = api_certificate(&a.http)?;
        std::fs::create_dir_all(a.dir.join("tls"))?;
        std::fs::write(a.dir.join(API_CERT), cert)?;
        write_private(&a.dir.join(API_TLS_KEY), &key)?;
    }
    std::fs::write(a.dir.join(ORG_FILE), toml::to_string_pretty(&org)?)?;
    std::fs::write(
        a.dir.join(NODE_FILE),
        toml::to_string_pretty(&node_config(a, Path::new("")))?,
    )?;
    Ok(org)
}

/// The node's config with its paths relative to `prefix` (empty inside the organisation's
/// own folder; `orgI/` for the copy that `init` writes beside the folders).
pub(crate) fn node_config(a: &OrgNewArgs, prefix: &Path) -> NodeConfig {
    NodeConfig {
        id: None,
        genesis: GENESIS_FILE.into(),
        key: prefix.join(REPLICA_KEY),
        client_key: prefix.join(GATEWAY_KEY),
        client_id: None,
        data_dir: prefix.join(DATA_DIR),
        http_listen: a.http.clone(),
        https_cert: (!is_loopback_host(&a.http)).then(|| prefix.join(API_CERT)),
        https_key: (!is_loopback_host(&a.http)).then(|| prefix.join(API_TLS_KEY)),
        p2p_listen: a.p2p.clone(),
        pbft: PbftSettings::default(),
        manual_validation: false,
        operator_key: Some(prefix.join(OPERATOR_KEY)),
        operator_client_id: None,
        encryption_key: Some(prefix.join(ENCRYPTION_KEY)),
        mfa_required_for_staff: true,
        energy_watts_per_core: medchain_node::energy::DEFAULT_WATTS_PER_CORE,
    }
}

fn read_org(path: &Path) -> anyhow::Result<OrgFile> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("{}: not an organisation file", path.display()))
}

/// The genesis of a consortium of `orgs` (replica i is `orgs[i]`): clients 0..n are the
/// gateways and n..2n the operators, which is how the ledger tells whose request it is.
pub(crate) fn assemble(
    orgs: &[OrgFile],
    users: Vec<GenesisUser>,
    consents: Vec<GenesisConsent>,
) -> anyhow::Result<Genesis> {
    let mut chain_id = [0u8; 8];
    rand::rngs::OsRng.fill_bytes(&mut chain_id);
    let replicas = orgs
        .iter()
        .enumerate()
        .map(|(i, o)| ReplicaInfo {
            id: ReplicaId(i as u16),
            organisation: o.name.clone(),
            public_key: o.replica_key,
            peer_addr: o.peer_addr.clone(),
            http_addr: o.http_addr.clone(),
        })
        .collect();
    let gateways = orgs.iter().map(|o| ClientInfo {
        name: format!("gateway of {}", o.name),
        public_key: o.gateway_key,
    });
    let operators = orgs.iter().map(|o| ClientInfo {
        name: format!("operator of {}", o.name),
        public_key: o.operator_key,
    });
    let genesis = Genesis {
        format_version: FORMAT_VERSION,
        chain_id: format!("medchain-{}", hex::encode(chain_id)),
        replicas,
        clients: gateways.chain(operators).collect(),
        users,
        consents,
        policy: Default::default(),
        encryption_keys: encryption_keys(orgs)?,
    };
    genesis
        .validate()
        .context("the organisation files do not make a valid genesis")?;
    Ok(genesis)
}

/// Every organisation's encryption key, or none when no file has one (files made
/// before encryption: the chain keeps content in clear). Some but not all is refused.
fn encryption_keys(orgs: &[OrgFile]) -> anyhow::Result<Vec<EncryptionKey>> {
    let keys: Vec<EncryptionKey> = orgs.iter().filter_map(|o| o.encryption_key).collect();
    if !keys.is_empty() && keys.len() != orgs.len() {
        bail!(
            "{} of {} organisation files have an encryption key; make the others again \
             with this version's `medchain org new`",
            keys.len(),
            orgs.len()
        );
    }
    Ok(keys)
}

/// `medchain genesis`: read the public files, check them, write the genesis.
pub fn genesis(a: &GenesisArgs) -> anyhow::Result<()> {
    let n = a.orgs.len();
    if n < 4 || !(n - 1).is_multiple_of(3) || n > 64 {
        bail!("a consortium has 3f+1 organisations between 4 and 64 (got {n})");
    }
    if a.out.exists() {
        bail!("{} exists; refusing to overwrite it", a.out.display());
    }
    let orgs = a
        .orgs
        .iter()
        .map(|p| read_org(p))
        .collect::<anyhow::Result<Vec<_>>>()?;
    for (i, o) in orgs.iter().enumerate() {
        if let Some(j) = orgs[..i].iter().position(|p| p.peer_addr == o.peer_addr) {
            bail!(
                "{} and {} give the same peer address {}",
                a.orgs[j].display(),
                a.orgs[i].display(),
                o.peer_addr
            );
        }
    }
    let genesis = assemble(&orgs, Vec::new(), Vec::new())?;
    write_new(&a.out, &toml::to_string_pretty(&genesis)?)?;
    println!(
        "genesis {} of {} organisations written to {}",
        genesis.hash(),
        n,
        a.out.display()
    );
    for r in &genesis.replicas {
        println!(
            "  replica {}: {} at {}",
            r.id.0, r.organisation, r.peer_addr
        );
    }
    Ok(())
}

/// Write a file that must not exist yet.
pub(crate) fn write_new(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(text.as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_ports_are_checked() {
        assert!(check_host_port("--p2p", "10.0.0.1:7000").is_ok());
        assert!(check_host_port("--p2p", "node.example:443").is_ok());
        for bad in [
            "10.0.0.1",
            "10.0.0.1:0",
            ":7000",
            "http://x:1",
            "a b:1",
            "x:70000",
        ] {
            assert!(check_host_port("--p2p", bad).is_err(), "{bad}");
        }
    }
}
