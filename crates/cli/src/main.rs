//! The `medchain` binary. Today it only explains what exists: the replica processes,
//! `init`, `node`, `demo` and `verify` come with the replica-process issue.

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "medchain",
    about = "MedChain: a PBFT ledger of medical records"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Start a 4-replica demo cluster (not built yet: see the README).
    Demo,
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Demo => anyhow::bail!(
            "the demo cluster is not built yet: replica processes come with the next \
             milestone. What runs today is the PBFT core under the deterministic simulator: \
             cargo run --release -p medchain-sim -- --seeds 0..1000"
        ),
    }
}
