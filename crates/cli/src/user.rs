//! `medchain user`: user administration by an organisation's operator, for a real
//! deployment: register a department administrator (or any user) on the ledger through a
//! running replica, and set a password in that node's local database.

use std::io::BufRead;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use medchain_node::client::{ClientReply, LedgerClient};
use medchain_node::config::NodeFiles;
use medchain_records::{Actor, Batch, Envelope, Transaction};
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
        UserCmd::RotateTokenSecret { config } => run_rotate_token_secret(config),
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
    let (client_id, key) = files.operator()?;
    let pw = read_password()?;
    // Continue after the last request id this operator had executed.
    let reader = medchain_store::Reader::open(&files.db_path())?;
    let last: Option<i64> = reader.connection().query_row(
        "SELECT MAX(request_id) FROM outcomes WHERE client = ?1",
        [client_id.0],
        |r| r.get(0),
    )?;
    let request_id = last.map_or(1, |l| l as u64 + 1);
    let env = Envelope {
        actor: Actor::Operator,
        tx: Transaction::RegisterUser {
            user_id: user_id.to_owned(),
            role,
            department: department.to_owned(),
            display_name: display_name.to_owned(),
        },
    };
    let reply = submit(&files, client_id, key, request_id, &env)?;
    let outcome =
        medchain_records::query::outcome(reader.connection(), client_id.0, request_id, 0)?;
    match outcome {
        Some((medchain_records::Outcome::Ok, _)) => {}
        Some((o, m)) => bail!("the ledger refused the registration ({}): {m}", o.as_str()),
        None => bail!(
            "committed at height {} but no outcome recorded",
            reply.height
        ),
    }
    set_password(&files, user_id, &pw)?;
    println!(
        "registered {user_id} ({}, {department}) at height {}; password set on replica {}",
        role.as_str(),
        reply.height,
        files.id()
    );
    Ok(())
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
    env: &Envelope,
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
            client.submit(request_id, Batch::one(env)),
        )
        .await
        .context("no commit within 30 s")?
        .context("submitting")
    })
}
