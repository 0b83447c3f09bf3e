//! `medchain user`: user administration by an organisation's operator, for a real
//! deployment: register a department administrator (or any user) on the ledger through a
//! running replica, and set a password in that node's local database. Once the
//! organisation has an administrator, another one is a co-signed proposal: `user add`
//! proposes it and an administrator approves it (`POST /api/proposals/{id}/approve`);
//! `user approve` is the operator's signature on a proposal an administrator made.

use std::io::BufRead;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use medchain_node::client::{ClientReply, LedgerClient};
use medchain_node::config::NodeFiles;
use medchain_records::{Actor, Batch, Envelope, ProposedAction, Transaction};
use medchain_types::{ClientId, KeyPair, UserRole};

#[derive(clap::Subcommand, Debug)]
pub enum UserCmd {
    /// Register a user on the ledger (the replica must be running) and set their
    /// password on this node. The password is read from standard input.
    Add {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        user_id: String,
        /// doctor, patient, pharmacy or department.
        #[arg(long)]
        role: String,
        #[arg(long)]
        department: String,
        #[arg(long)]
        display_name: String,
    },
    /// Sign a proposal of this organisation as its operator (e.g. an administrator's
    /// proposal to deactivate another administrator).
    Approve {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        proposal_id: String,
    },
    /// Set a user's password on this node (read from standard input).
    SetPassword {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        user_id: String,
    },
    /// Start signing this node's sign-in tokens with a new secret (a new key id). Tokens
    /// signed with the previous secret stay valid until they expire; a running node uses
    /// the new secret from its next sign-in.
    RotateTokenSecret {
        #[arg(long)]
        config: PathBuf,
    },
    /// Replace this organisation's encryption key: writes the new secret beside the
    /// current one (`encryption_key` + `.next`, 0600) and proposes the new public key on
    /// the ledger; it takes effect once the operators of 2f+1 organisations have signed
    /// (`medchain user approve`). Restart this node so that it holds both keys; each
    /// patient's home organisation then seals the keys this organisation holds again.
    RotateEncryptionKey {
        #[arg(long)]
        config: PathBuf,
    },
}

fn read_password() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the password from standard input")?;
    let pw = line.trim_end_matches(['\r', '\n']).to_string();
    medchain_api::auth::check_password_rules(&pw).map_err(|e| anyhow::anyhow!(e.message))?;
    Ok(pw)
}

/// Set a password on this node, for a user of this node's own organisation only: a node
/// holds password hashes of its own users (users sign in only at their home
/// organisation's nodes, and another organisation's operator must not be able to sign in
/// as them).
fn set_password(files: &NodeFiles, user_id: &str, password: &str) -> anyhow::Result<()> {
    let reader = medchain_store::Reader::open(&files.db_path())
        .with_context(|| format!("opening {}", files.db_path().display()))?;
    let Some(user) = medchain_records::user(reader.connection(), user_id)? else {
        bail!("no user {user_id} on the ledger (register them first with `medchain user add`)");
    };
    if user.organisation != files.id().0 {
        bail!(
            "{user_id} belongs to organisation {}; only that organisation's nodes hold their \
             password (this is replica {})",
            user.organisation,
            files.id()
        );
    }
    let phc =
        medchain_api::auth::hash_password(password).map_err(|e| anyhow::anyhow!(e.message))?;
    files.adopt_legacy_sign_in_db()?;
    let conn = medchain_api::auth::open_local_db(&files.sign_in_db_path())?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    // Set by the operator, not chosen by the user: they choose their own at first
    // sign-in (and every session the old password opened ends).
    medchain_api::auth::store_password_hash(
        &conn,
        user_id,
        &phc,
        medchain_api::auth::PasswordOrigin::SetByAdministrator,
    )
    .map_err(|e| anyhow::anyhow!(e.message))
}

pub fn run(cmd: &UserCmd) -> anyhow::Result<()> {
    match cmd {
        UserCmd::SetPassword { config, user_id } => run_set_password(config, user_id),
        UserCmd::Approve {
            config,
            proposal_id,
        } => run_approve(config, proposal_id),
        UserCmd::RotateTokenSecret { config } => run_rotate_token_secret(config),
        UserCmd::RotateEncryptionKey { config } => run_rotate_encryption_key(config),
        UserCmd::Add {
            config,
            user_id,
            role,
            department,
            display_name,
        } => run_add(config, user_id, role, department, display_name),
    }
}

fn run_rotate_token_secret(config: &Path) -> anyhow::Result<()> {
    let files = NodeFiles::load(config)?;
    let path = medchain_api::auth::token_secret_path(&files.data_dir);
    if !path.exists() {
        bail!(
            "{} does not exist yet: the node creates its token secret when it first starts",
            path.display()
        );
    }
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let kid = medchain_api::auth::rotate_token_secret(&path, now_ms)
        .with_context(|| format!("rotating the token secret in {}", path.display()))?;
    // The key id only, never the secret.
    println!("replica {}: new token secret, key id {kid}", files.id());
    Ok(())
}

fn run_set_password(config: &Path, user_id: &str) -> anyhow::Result<()> {
    let files = NodeFiles::load(config)?;
    let pw = read_password()?;
    set_password(&files, user_id, &pw)?;
    println!("password of {user_id} set on replica {}", files.id());
    Ok(())
}

/// Everything is checked and the password read before the registration is submitted,
/// and the password is set only once the ledger has accepted the user.
fn run_add(
    config: &Path,
    user_id: &str,
    role: &str,
    department: &str,
    display_name: &str,
) -> anyhow::Result<()> {
    let role = parse_role(role)?;
    if !medchain_types::genesis::valid_user_id(user_id) {
        bail!("--user-id must be 1 to 64 letters, digits, '-', '_' or '.'");
    }
    // The ledger refuses these too; saying so before the password prompt is kinder.
    for (flag, value) in [
        ("--display-name", display_name),
        ("--department", department),
    ] {
        if let Some(problem) = medchain_records::names::name_problem(value) {
            bail!("{flag}: {problem}");
        }
    }
    let files = NodeFiles::load(config)?;
    let user = || {
        (
            user_id.to_owned(),
            department.to_owned(),
            display_name.to_owned(),
        )
    };
    if role == UserRole::Department && has_administrator(&files)? {
        // The operator's signature is the first of the two the ledger wants.
        let (user_id, department, display_name) = user();
        let proposal_id = format!("add-{}", &user_id[..user_id.len().min(40)]);
        let env = Envelope {
            actor: Actor::Operator,
            tx: Transaction::Propose {
                proposal_id: proposal_id.clone(),
                action: ProposedAction::RegisterAdministrator {
                    user_id: user_id.clone(),
                    department,
                    display_name,
                },
                ttl_ms: PROPOSAL_TTL_MS,
            },
        };
        let height = submit_as_operator(&files, &env, "the proposal")?;
        // No password yet: a node keeps passwords only of users the ledger has.
        println!(
            "proposed {user_id} as a department administrator (proposal {proposal_id}, height {height}); \
             it is registered once another administrator of this organisation approves it \
             (web UI: Department > Approvals) within 72 hours; then set their password with \
             `medchain user set-password --config {} --user-id {user_id}`",
            config.display()
        );
        return Ok(());
    }
    let pw = read_password()?;
    let (user_id, department, display_name) = user();
    let height = if role == UserRole::Patient && files.genesis.encrypts() {
        register_sealed_patient(&files, &user_id, &department, &display_name)?
    } else {
        let env = Envelope {
            actor: Actor::Operator,
            tx: Transaction::RegisterUser {
                user_id: user_id.clone(),
                role,
                department: department.clone(),
                display_name,
            },
        };
        submit_as_operator(&files, &env, "the registration")?
    };
    set_password(&files, &user_id, &pw)?;
    println!(
        "registered {user_id} ({}, {department}) at height {height}; password set on replica {}",
        role.as_str(),
        files.id()
    );
    Ok(())
}

/// Register a patient with their name sealed under a data key made here, and publish
/// that key's first copy (sealed to this organisation) in the same request: the ledger
/// executes both in order, so no other first key can come between.
fn register_sealed_patient(
    files: &NodeFiles,
    user_id: &str,
    department: &str,
    display_name: &str,
) -> anyhow::Result<u64> {
    let org = files.id().0;
    let reader = medchain_store::Reader::open(&files.db_path())?;
    let public = medchain_records::policy::organisation_key(
        reader.connection(),
        &files.genesis.encryption_keys,
        org,
    )?
    .map(medchain_types::EncryptionKey)
    .ok_or_else(|| anyhow::anyhow!("the genesis has no encryption key for this organisation"))?;
    let key = medchain_seal::DataKey::random();
    let sealed_name = medchain_records::sealed::seal_name(&key, 0, user_id, display_name)?;
    let sealed_key = medchain_seal::sealed::seal_key(
        &medchain_seal::OrgPublicKey(public.0),
        &medchain_records::sealed::key_aad(user_id, 0),
        &key,
    )?
    .0;
    let envs = [
        Envelope {
            actor: Actor::Operator,
            tx: Transaction::RegisterUser {
                user_id: user_id.to_owned(),
                role: UserRole::Patient,
                department: department.to_owned(),
                display_name: sealed_name,
            },
        },
        Envelope {
            actor: Actor::User(user_id.to_owned()),
            tx: Transaction::SharePatientKey {
                epoch: 0,
                organisation: org,
                sealed_hash: medchain_types::Hash32::sha256(&sealed_key),
            },
        },
    ];
    submit_batch_as_operator(files, &envs, vec![sealed_key], "the registration")
}

fn run_rotate_encryption_key(config: &Path) -> anyhow::Result<()> {
    let files = NodeFiles::load(config)?;
    let Some(current) = &files.config.encryption_key else {
        bail!("encryption_key is not configured in {}", config.display());
    };
    let next = files
        .base_dir
        .join(medchain_node::config::next_key_path(current));
    if next.exists() {
        bail!(
            "{} exists: a rotation is under way (move it into place once it has executed, \
             or delete it to start again)",
            next.display()
        );
    }
    let (secret, public) = medchain_seal::OrgSecretKey::generate();
    crate::ceremony::write_private(
        &next,
        &zeroize::Zeroizing::new(format!("{}\n", hex::encode(secret.as_bytes()))),
    )?;
    let org = files.id().0;
    let proposal_id = format!("key-{org}-{}", &hex::encode(public.0)[..12]);
    let env = Envelope {
        actor: Actor::Operator,
        tx: Transaction::Propose {
            proposal_id: proposal_id.clone(),
            action: ProposedAction::RotateEncryptionKey {
                organisation: org,
                public_key: hex::encode(public.0),
            },
            ttl_ms: PROPOSAL_TTL_MS,
        },
    };
    let height = submit_as_operator(&files, &env, "the key rotation")?;
    let f = files.genesis.f();
    println!(
        "proposed a new encryption key for organisation {org} (proposal {proposal_id}, height \
         {height}); the new secret is in {}.\n\
         It takes effect once the operators of {} organisations (this one has signed) run\n  \
         medchain user approve --config THEIR/node.toml --proposal-id {proposal_id}\n\
         Restart this node now so that it holds both keys; once every patient key has been \
         sealed to the new one, replace {} with it.",
        next.display(),
        2 * f + 1,
        files.base_dir.join(current).display()
    );
    Ok(())
}

/// How long an operator's proposal waits for its second signature.
const PROPOSAL_TTL_MS: u64 = 72 * 60 * 60 * 1000;

fn run_approve(config: &Path, proposal_id: &str) -> anyhow::Result<()> {
    if !medchain_types::genesis::valid_user_id(proposal_id) {
        bail!("--proposal-id must be 1 to 64 letters, digits, '-', '_' or '.'");
    }
    let files = NodeFiles::load(config)?;
    let env = Envelope {
        actor: Actor::Operator,
        tx: Transaction::ApproveProposal {
            proposal_id: proposal_id.to_owned(),
        },
    };
    let height = submit_as_operator(&files, &env, "the approval")?;
    let reader = medchain_store::Reader::open(&files.db_path())?;
    let executed = medchain_records::query::proposal_executed(reader.connection(), proposal_id)?;
    match executed.flatten() {
        Some(h) => println!("approved {proposal_id} at height {height}: it executed in block {h}"),
        None => println!(
            "approved {proposal_id} at height {height}; it still waits for more signatures"
        ),
    }
    Ok(())
}

/// Whether this organisation has an active department administrator (in this replica's
/// committed state).
fn has_administrator(files: &NodeFiles) -> anyhow::Result<bool> {
    let reader = medchain_store::Reader::open(&files.db_path())?;
    let n: i64 = reader.connection().query_row(
        "SELECT COUNT(*) FROM users WHERE role = 'department' AND active = 1 AND organisation = ?1",
        [files.id().0],
        |r| r.get(0),
    )?;
    Ok(n > 0)
}

/// Submit `env` signed with the operator key, after the last request id this operator
/// had executed, and return the block height once the ledger accepted it (or its reason).
fn submit_as_operator(files: &NodeFiles, env: &Envelope, what: &str) -> anyhow::Result<u64> {
    submit_batch_as_operator(files, std::slice::from_ref(env), Vec::new(), what)
}

/// Submit `envs` as one request (executed in order, each with its own outcome) with
/// `content`, signed with the operator key.
fn submit_batch_as_operator(
    files: &NodeFiles,
    envs: &[Envelope],
    content: Vec<Vec<u8>>,
    what: &str,
) -> anyhow::Result<u64> {
    let (client_id, key) = files.operator()?;
    let reader = medchain_store::Reader::open(&files.db_path())?;
    let last: Option<i64> = reader.connection().query_row(
        "SELECT MAX(request_id) FROM outcomes WHERE client = ?1",
        [client_id.0],
        |r| r.get(0),
    )?;
    let request_id = last.map_or(1, |l| l as u64 + 1);
    let payload = Batch(envs.to_vec()).encode();
    let reply = submit(files, client_id, key, request_id, payload, content)?;
    for index in 0..envs.len() {
        let outcome = medchain_records::query::outcome(
            reader.connection(),
            client_id.0,
            request_id,
            index as u32,
        )?;
        match outcome {
            Some((medchain_records::Outcome::Ok, _)) => {}
            Some((o, m)) => bail!("the ledger refused {what} ({}): {m}", o.as_str()),
            None => bail!(
                "committed at height {} but no outcome recorded",
                reply.height
            ),
        }
    }
    Ok(reply.height)
}

fn parse_role(role: &str) -> anyhow::Result<UserRole> {
    Ok(match role {
        "doctor" => UserRole::Doctor,
        "patient" => UserRole::Patient,
        "pharmacy" => UserRole::Pharmacy,
        "department" => UserRole::Department,
        other => bail!("--role must be doctor, patient, pharmacy or department (got {other:?})"),
    })
}

/// Submits `env` as the operator through the replica's client port and waits for its
/// commit.
fn submit(
    files: &NodeFiles,
    client_id: ClientId,
    key: KeyPair,
    request_id: u64,
    payload: Vec<u8>,
    content: Vec<Vec<u8>>,
) -> anyhow::Result<ClientReply> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let addr = files.config.p2p_listen.parse().context("p2p_listen")?;
        let client = LedgerClient::connect(addr, files.id(), client_id, key, &files.genesis)
            .await
            .context("connecting to the replica (is it running?)")?;
        tokio::time::timeout(
            std::time::Duration::from_secs(30),
            client.submit_with_content(request_id, payload, content),
        )
        .await
        .context("no commit within 30 s")?
        .context("submitting")
    })
}
