//! Runs the monitor's synthetic evaluation and prints its report, so the figures the
//! issue asks for (precision, recall, explained share) come from one reproducible command:
//! `cargo run --release -p medchain-monitor --bin monitor-eval -- --seed 11 --weeks 6 --doctors 40`.

use std::process::ExitCode;

use medchain_monitor::eval::{evaluate, EvalConfig};

const USAGE: &str =
    "usage: monitor-eval [--seed N] [--weeks W] [--doctors D] [--rate R] [--threshold T]";

fn parse(args: &[String]) -> Result<EvalConfig, String> {
    let mut cfg = EvalConfig::default();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let bad = |e: &dyn std::fmt::Display| format!("{flag} {value}: {e}");
        match flag.as_str() {
            "--seed" => cfg.seed = value.parse().map_err(|e| bad(&e))?,
            "--weeks" => cfg.weeks = value.parse().map_err(|e| bad(&e))?,
            "--doctors" => cfg.doctors = value.parse().map_err(|e| bad(&e))?,
            "--rate" => cfg.snoop_rate = value.parse().map_err(|e| bad(&e))?,
            "--threshold" => cfg.score_threshold = value.parse().map_err(|e| bad(&e))?,
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    if cfg.weeks <= cfg.warmup_weeks {
        return Err(format!(
            "--weeks must exceed the {} warm-up weeks",
            cfg.warmup_weeks
        ));
    }
    Ok(cfg)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    match parse(&args) {
        Ok(cfg) => {
            print!("{}", evaluate(&cfg));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}\n{USAGE}");
            ExitCode::from(2)
        }
    }
}
