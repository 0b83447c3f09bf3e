//! The `medchain` binary: set up a cluster (`init`, or `org new` and `genesis` across
//! organisations), run a replica (`node`), run a local
//! four-replica demo (`demo`), check a chain offline (`verify`), drive records through
//! the PBFT client protocol (`load`), measure a cluster end to end (`bench`), and measure
//! the access monitor on injected snooping (`monitor-eval`).

mod backup;
mod bench;
mod ceremony;
mod demo;
mod init;
mod load;
mod monitor_eval;
mod replicas;
mod user;
mod verify;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "medchain",
    version,
    about = "MedChain: a PBFT ledger of medical records"
)]
struct Cli {
    /// Log as JSON lines instead of readable text.
    #[arg(long, global = true)]
    log_json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create a whole consortium on this machine (demo, tests): one folder per
    /// organisation with only its own keys, a genesis, and one config per replica.
    Init(init::InitArgs),
    /// One organisation's side of the key ceremony.
    #[command(subcommand)]
    Org(OrgCmd),
    /// Assemble the genesis from the organisations' public org.toml files.
    Genesis(ceremony::GenesisArgs),
    /// Run one replica.
    Node {
        /// The replica's config file (DIR/nodeI.toml).
        #[arg(long)]
        config: PathBuf,
    },
    /// Start a local 4-replica cluster under ./medchain-demo (created if absent).
    Demo,
    /// Verify a replica's whole chain offline against the genesis keys.
    Verify {
        #[arg(long)]
        config: PathBuf,
    },
    /// Copy a replica's ledger database while it runs (SQLite's online backup API).
    Backup(backup::BackupArgs),
    /// Put a backup in place of a stopped replica's database, re-applying every erasure
    /// committed since the backup was taken.
    Restore(backup::RestoreArgs),
    /// Submit records through a replica's client port and wait for their commits.
    Load(load::LoadArgs),
    /// Measure throughput, commit latency, success rate, CPU, energy and memory of a
    /// cluster (a fresh local one, or --target URLs) under closed- or open-loop load.
    Bench(bench::BenchArgs),
    /// Generate a new Ed25519 key file (mode 0600) and print its public key, for an
    /// organisation joining a cluster: the public key goes into the genesis.
    Keygen {
        /// Where to write the secret key; an existing file is never overwritten.
        #[arg(long)]
        out: PathBuf,
    },
    /// Measure the access monitor on a synthetic consortium with injected snooping,
    /// executed through the records ledger: precision and recall per rule and overall,
    /// the learned score's, and the share of normal reads a ledger fact explains.
    MonitorEval(monitor_eval::MonitorEvalArgs),
    /// User administration by the organisation's operator (e.g. add a department
    /// administrator).
    #[command(subcommand)]
    User(user::UserCmd),
}

#[derive(Subcommand, Debug)]
enum OrgCmd {
    /// Create this organisation's private keys (DIR/keys, 0600), its public DIR/org.toml
    /// and its DIR/node.toml.
    New(ceremony::OrgNewArgs),
}

fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("MEDCHAIN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        b.json().init();
    } else {
        b.init();
    }
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_json);
    let result = match cli.command {
        Command::Init(a) => init::run(&a),
        Command::Org(OrgCmd::New(a)) => ceremony::org_new(&a),
        Command::Genesis(a) => ceremony::genesis(&a),
        Command::Node { config } => run_node(config),
        Command::Demo => demo::run(),
        Command::Verify { config } => verify::run(&config),
        Command::Backup(a) => backup::backup(&a),
        Command::Restore(a) => backup::restore(&a),
        Command::Load(a) => load::run(&a),
        Command::Bench(a) => bench::run(&a),
        Command::Keygen { out } => init::keygen(&out),
        Command::User(cmd) => user::run(&cmd),
        Command::MonitorEval(a) => monitor_eval::run(&a),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run_node(config: PathBuf) -> anyhow::Result<()> {
    let files = medchain_node::NodeFiles::load(&config)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let shutdown = async {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
            }
        };
        medchain_server::run(files, shutdown).await
    })?;
    Ok(())
}
