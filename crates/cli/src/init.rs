//! `medchain init`: the key ceremony of a whole consortium on one machine (demo and
//! tests): one folder per organisation, a genesis, and one config per replica.

use medchain_node::config::NodeConfig;
use std::path::{Path, PathBuf};

use anyhow::bail;
use medchain_types::genesis::{GenesisConsent, GenesisUser, UserRole};
use medchain_types::ReplicaId;

use crate::ceremony::{
    assemble, create_org, fresh_key, node_config, private_dir, write_new, write_private,
    write_secret, OrgNewArgs, GENESIS_FILE,
};

#[derive(clap::Args, Debug)]
pub struct InitArgs {
    /// Number of replicas (3f+1: 4, 7, ...).
    #[arg(long, default_value_t = 4)]
    pub replicas: usize,
    /// Directory to create the cluster in.
    #[arg(long)]
    pub dir: PathBuf,
    /// Replica i serves HTTP on this port + i.
    #[arg(long, default_value_t = 5000)]
    pub http_port: u16,
    /// Replica i listens for peers on this port + i.
    #[arg(long, default_value_t = 7000)]
    pub p2p_port: u16,
    /// Add the demo accounts and consents.
    #[arg(long)]
    pub demo: bool,
    /// With --demo: also a doctor at each other organisation (`bench-d1`, `bench-d2`,
    /// ...), to whom p001 and p002 consented, so that `medchain bench` can send records
    /// through every replica's gateway (users sign in only at their home organisation).
    #[arg(long, hide = true, requires = "demo")]
    pub bench_accounts: bool,
}

const ORGANISATIONS: [&str; 4] = [
    "St Mary's Hospital",
    "Riverside Clinic",
    "City Pharmacy",
    "Northwind Health Insurance",
];

/// `medchain keygen`: a fresh key in a new file, its public key on stdout.
pub fn keygen(out: &Path) -> anyhow::Result<()> {
    let key = fresh_key();
    write_secret(out, &key)?;
    println!("{}", key.public().to_hex());
    Ok(())
}

/// Organisation `i`'s folder: what `medchain org new --dir` would make for it.
pub fn org_dir(dir: &Path, i: usize) -> PathBuf {
    dir.join(format!("org{i}"))
}

/// The ceremony run on one machine: each organisation gets its own folder `DIR/orgI`
/// (its private keys, `org.toml`, `node.toml`, its copy of the genesis and its data),
/// the genesis is assembled from the public `org.toml` files alone, and `DIR/nodeI.toml`
/// is organisation I's `node.toml` seen from `DIR` (the command-line contract's path).
pub fn run(a: &InitArgs) -> anyhow::Result<()> {
    check_args(a)?;
    // The cluster's folder is tightened only when init makes it: `--dir` may name a
    // folder the user keeps other things in. Its subfolders are init's own.
    if !a.dir.exists() {
        private_dir(&a.dir)?;
    }
    let mut orgs = Vec::new();
    let mut org_args = Vec::new();
    for i in 0..a.replicas {
        let args = OrgNewArgs {
            dir: org_dir(&a.dir, i),
            name: ORGANISATIONS
                .get(i)
                .map_or_else(|| format!("Organisation {i}"), |s| s.to_string()),
            p2p: format!("127.0.0.1:{}", u32::from(a.p2p_port) + i as u32),
            http: format!("127.0.0.1:{}", u32::from(a.http_port) + i as u32),
        };
        orgs.push(create_org(&args)?);
        org_args.push(args);
    }
    let (mut users, mut consents) = if a.demo {
        demo_users()
    } else {
        (Vec::new(), Vec::new())
    };
    if a.bench_accounts {
        let (u, c) = bench_users(a.replicas);
        users.extend(u);
        consents.extend(c);
    }
    let first_keys = seal_patient_names(&orgs, &mut users)?;
    let genesis = assemble(&orgs, users, consents)?;
    let text = toml::to_string_pretty(&genesis)?;
    write_new(&a.dir.join(GENESIS_FILE), &text)?;
    for (i, args) in org_args.iter().enumerate() {
        write_new(&org_dir(&a.dir, i).join(GENESIS_FILE), &text)?;
        let prefix = PathBuf::from(format!("org{i}"));
        // One machine, demo and tests: two-step sign-in is offered, not required, so that
        // the demo accounts sign in with their passwords.
        let config = NodeConfig {
            mfa_required_for_staff: false,
            ..node_config(args, &prefix)
        };
        std::fs::write(
            a.dir.join(format!("node{i}.toml")),
            toml::to_string_pretty(&config)?,
        )?;
    }
    for (org, keys) in first_keys {
        let data = org_dir(&a.dir, usize::from(org)).join("data");
        private_dir(&data)?;
        write_private(
            &data.join(medchain_node::config::FIRST_PATIENT_KEYS_FILE),
            &toml::to_string_pretty(&keys)?,
        )?;
    }
    if a.demo {
        seed_demo_passwords(&a.dir, a.replicas)?;
    }
    if a.bench_accounts {
        seed_bench_passwords(&a.dir, a.replicas)?;
    }
    println!(
        "initialised {} replicas in {} (genesis {}; organisation i's keys are in only its own folder org{{i}})",
        a.replicas,
        a.dir.display(),
        genesis.hash()
    );
    Ok(())
}

/// The patients of a genesis are in a public file that every replica keeps: their names
/// go in sealed, under a data key made here for each, and that key goes, sealed to the
/// patient's home organisation, into that organisation's own data folder only. Its node
/// publishes it as the patient's first key (`SharePatientKey`) once it runs, and then
/// deletes the file, so that an erasure leaves no copy behind. Returns each
/// organisation's sealed keys by patient (none for a chain without encryption keys).
fn seal_patient_names(
    orgs: &[crate::ceremony::OrgFile],
    users: &mut [GenesisUser],
) -> anyhow::Result<std::collections::BTreeMap<u16, std::collections::BTreeMap<String, String>>> {
    let mut out: std::collections::BTreeMap<u16, std::collections::BTreeMap<String, String>> =
        Default::default();
    for u in users.iter_mut().filter(|u| u.role == UserRole::Patient) {
        let org = u.organisation.0;
        let Some(public) = orgs.get(usize::from(org)).and_then(|o| o.encryption_key) else {
            continue;
        };
        let key = medchain_seal::DataKey::random();
        u.display_name = medchain_records::sealed::seal_name(&key, 0, &u.user_id, &u.display_name)
            .map_err(|e| anyhow::anyhow!("sealing {}'s name: {e}", u.user_id))?;
        let sealed = medchain_seal::sealed::seal_key(
            &medchain_seal::OrgPublicKey(public.0),
            &medchain_records::sealed::key_aad(&u.user_id, 0),
            &key,
        )
        .map_err(|e| anyhow::anyhow!("sealing {}'s key: {e}", u.user_id))?;
        out.entry(org)
            .or_default()
            .insert(u.user_id.clone(), hex::encode(sealed.0));
    }
    Ok(out)
}

/// Refuses before anything is written: a bad size or port range, or a directory that
/// already holds a cluster whose keys would be lost.
fn check_args(a: &InitArgs) -> anyhow::Result<()> {
    if a.replicas < 4 || !(a.replicas - 1).is_multiple_of(3) || a.replicas > 64 {
        bail!(
            "--replicas must be 3f+1 between 4 and 64 (got {})",
            a.replicas
        );
    }
    let last_http = u32::from(a.http_port) + a.replicas as u32;
    let last_p2p = u32::from(a.p2p_port) + a.replicas as u32;
    if last_http > 65_535 || last_p2p > 65_535 {
        bail!("port range runs past 65535");
    }
    if a.dir.join("genesis.toml").exists() || org_dir(&a.dir, 0).exists() {
        bail!(
            "{} already holds a cluster (genesis.toml or org0 exists); refusing to overwrite its keys",
            a.dir.display()
        );
    }
    Ok(())
}

/// The demo accounts of the external contract: (user id, password, role, organisation,
/// department, display name).
pub const DEMO_ACCOUNTS: [(&str, &str, UserRole, u16, &str, &str); 6] = [
    (
        "d001",
        "doctor123",
        UserRole::Doctor,
        0,
        "cardiology",
        "Dr. Amara Okafor",
    ),
    (
        "d002",
        "doctor456",
        UserRole::Doctor,
        0,
        "cardiology",
        "Dr. Lukas Brandt",
    ),
    (
        "p001",
        "patient123",
        UserRole::Patient,
        0,
        "cardiology",
        "Maria Santos",
    ),
    (
        "p002",
        "patient456",
        UserRole::Patient,
        0,
        "cardiology",
        "James Chen",
    ),
    (
        "ph001",
        "pharmacy123",
        UserRole::Pharmacy,
        0,
        "pharmacy",
        "St Mary's outpatient pharmacy",
    ),
    (
        "dep001",
        "department123",
        UserRole::Department,
        0,
        "cardiology",
        "Cardiology administration",
    ),
];

/// Standing demo consents: p001 and p002 to d001, p002 to d002.
const DEMO_CONSENTS: [(&str, &str); 3] = [("p001", "d001"), ("p002", "d001"), ("p002", "d002")];

fn demo_users() -> (Vec<GenesisUser>, Vec<GenesisConsent>) {
    let users = DEMO_ACCOUNTS
        .iter()
        .map(|&(id, _, role, org, dept, name)| GenesisUser {
            user_id: id.into(),
            role,
            organisation: ReplicaId(org),
            department: dept.into(),
            display_name: name.into(),
        })
        .collect();
    let consents = DEMO_CONSENTS
        .iter()
        .map(|&(patient, doctor)| GenesisConsent {
            patient: patient.into(),
            doctor: doctor.into(),
        })
        .collect();
    (users, consents)
}

/// Each demo account's password goes to its home organisation's node only (users sign
/// in only at their home organisation's nodes; a node holds password hashes of its own
/// users alone). The demo's accounts are all St Mary's, so they sign in at replica 0.
fn seed_demo_passwords(dir: &Path, replicas: usize) -> anyhow::Result<()> {
    for (id, pw, _, org, ..) in DEMO_ACCOUNTS {
        let org = usize::from(org);
        if org >= replicas {
            bail!("demo account {id} belongs to organisation {org}, beyond the replicas");
        }
        let data = org_dir(dir, org).join("data");
        private_dir(&data)?;
        let conn = medchain_api::auth::open_local_db(&data.join(SIGN_IN_DB))?;
        let phc = medchain_api::auth::hash_password(pw).map_err(|e| anyhow::anyhow!(e.message))?;
        medchain_api::auth::set_password_hash(&conn, id, &phc)
            .map_err(|e| anyhow::anyhow!(e.message))?;
    }
    Ok(())
}

/// The password of the bench accounts (`bench-d1`, ...; test clusters only).
pub const BENCH_PASSWORD: &str = "bench-doctor";

/// The bench doctor of organisation `org` (St Mary's is d001 itself).
pub fn bench_doctor(org: usize) -> String {
    if org == 0 {
        "d001".to_string()
    } else {
        format!("bench-d{org}")
    }
}

/// One doctor per organisation beyond St Mary's, consented to by both demo patients.
fn bench_users(replicas: usize) -> (Vec<GenesisUser>, Vec<GenesisConsent>) {
    let mut users = Vec::new();
    let mut consents = Vec::new();
    for org in 1..replicas {
        let id = bench_doctor(org);
        users.push(GenesisUser {
            user_id: id.clone(),
            role: UserRole::Doctor,
            organisation: ReplicaId(org as u16),
            department: "cardiology".into(),
            display_name: format!("Bench doctor {org}"),
        });
        for patient in ["p001", "p002"] {
            consents.push(GenesisConsent {
                patient: patient.into(),
                doctor: id.clone(),
            });
        }
    }
    (users, consents)
}

fn seed_bench_passwords(dir: &Path, replicas: usize) -> anyhow::Result<()> {
    let phc = medchain_api::auth::hash_password(BENCH_PASSWORD)
        .map_err(|e| anyhow::anyhow!(e.message))?;
    for org in 1..replicas {
        let data = org_dir(dir, org).join("data");
        private_dir(&data)?;
        let conn = medchain_api::auth::open_local_db(&data.join(SIGN_IN_DB))?;
        medchain_api::auth::set_password_hash(&conn, &bench_doctor(org), &phc)
            .map_err(|e| anyhow::anyhow!(e.message))?;
    }
    Ok(())
}

/// The node-local database of the API gateway (passwords, sessions), in each data dir.
pub const SIGN_IN_DB: &str = medchain_node::config::SIGN_IN_DB_FILE;
