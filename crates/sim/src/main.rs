//! Command line of the simulator: run a range of seeds on all cores, show progress on
//! stderr, print one line per seed (its trace hash: same seed, same trace) and a summary
//! last, and on a violation the command that replays the failing seed with a trace.

use std::io::Write;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use clap::Parser;
use medchain_sim::{run_scenario, Scenario, SeedOutcome};

#[derive(Parser, Debug)]
#[command(
    name = "medchain-sim",
    about = "Deterministic simulation of the MedChain PBFT core under faults"
)]
struct Args {
    /// Seeds to run, A..B (A inclusive, B exclusive).
    #[arg(long, value_parser = parse_range)]
    seeds: (u64, u64),
    /// Number of replicas (3f+1; 4 and 7 are the tested sizes).
    #[arg(long, default_value_t = 4)]
    replicas: usize,
    /// Print a readable trace of every event (use with one seed).
    #[arg(long)]
    trace: bool,
    /// Worker threads (default: all cores).
    #[arg(long)]
    jobs: Option<usize>,
    /// Print only violating seeds and the summary, not one line per seed.
    #[arg(long)]
    quiet: bool,
}

fn parse_range(s: &str) -> Result<(u64, u64), String> {
    let (a, b) = s
        .split_once("..")
        .ok_or_else(|| format!("expected A..B, got {s:?}"))?;
    let a: u64 = a
        .trim()
        .parse()
        .map_err(|e| format!("bad start {a:?}: {e}"))?;
    let b: u64 = b
        .trim()
        .parse()
        .map_err(|e| format!("bad end {b:?}: {e}"))?;
    if b <= a {
        return Err(format!("empty range {a}..{b}"));
    }
    Ok((a, b))
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.replicas < 4 || !(args.replicas - 1).is_multiple_of(3) || args.replicas > 64 {
        eprintln!(
            "--replicas must be 3f+1 between 4 and 64 (got {})",
            args.replicas
        );
        return ExitCode::from(2);
    }
    let began = Instant::now();
    let results = run_seeds(&args, began);
    let violations = report(&args, &results, began);
    if violations > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Run every seed of `args.seeds` on `args.jobs` threads; the outcomes in seed order.
fn run_seeds(args: &Args, began: Instant) -> Vec<SeedOutcome> {
    let (start, end) = args.seeds;
    let total = end - start;
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let next = AtomicU64::new(start);
    let done = AtomicU64::new(0);
    let results: Mutex<Vec<SeedOutcome>> = Mutex::new(Vec::with_capacity(total as usize));
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| {
                medchain_types::crypto::set_thread_verification_memo(true);
                loop {
                    let seed = next.fetch_add(1, Ordering::Relaxed);
                    if seed >= end {
                        break;
                    }
                    let scenario = Scenario::from_seed(seed, args.replicas);
                    let (outcome, trace) = run_scenario(&scenario, args.trace);
                    if args.trace {
                        print!("{trace}");
                        println!("scenario: {scenario:?}");
                    }
                    let finished = done.fetch_add(1, Ordering::Relaxed) + 1;
                    if !args.trace && (finished.is_multiple_of(500) || finished == total) {
                        show_progress(finished, total, began);
                    }
                    if let Ok(mut r) = results.lock() {
                        r.push(outcome);
                    }
                }
            });
        }
    });
    if !args.trace {
        eprintln!();
    }
    let mut results = results.into_inner().unwrap_or_default();
    results.sort_by_key(|o| o.seed);
    results
}

fn show_progress(finished: u64, total: u64, began: Instant) {
    let secs = began.elapsed().as_secs_f64();
    eprint!(
        "\r{finished}/{total} seeds, {:.0} seeds/s, {:.0}s elapsed   ",
        finished as f64 / secs.max(1e-9),
        secs
    );
    let _ = std::io::stderr().flush();
}

/// Print one line per seed (or per violating seed with `--quiet`), each violation with
/// its replay command, and the summary; returns the number of violations.
fn report(args: &Args, results: &[SeedOutcome], began: Instant) -> u64 {
    let mut violations = 0u64;
    let (mut faults, mut view_changes, mut blocks, mut requests) = (0u64, 0u64, 0u64, 0u64);
    for o in results {
        faults += o.faults;
        view_changes += o.view_changes;
        blocks += o.committed_blocks;
        requests += o.requests;
        if !args.quiet || !o.violations.is_empty() {
            println!(
                "seed={} trace={} committed_blocks={} view_changes={} faults={} end_ms={}",
                o.seed,
                &o.trace_hash.to_hex()[..16],
                o.committed_blocks,
                o.view_changes,
                o.faults,
                o.end_ms
            );
        }
        violations += o.violations.len() as u64;
        for v in &o.violations {
            println!("  violation: {v}");
        }
        if !o.violations.is_empty() {
            println!(
                "  replay: cargo run --release -p medchain-sim -- --seeds {}..{} --replicas {} --trace",
                o.seed,
                o.seed + 1,
                args.replicas
            );
        }
    }
    println!(
        "seeds={} violations={violations} faults={faults} view_changes={view_changes} committed_blocks={blocks} requests={requests} replicas={} elapsed_s={:.1}",
        results.len(),
        args.replicas,
        began.elapsed().as_secs_f64()
    );
    violations
}
