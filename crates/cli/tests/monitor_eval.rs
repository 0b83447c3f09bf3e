//! `medchain monitor-eval` at a small size, through the records ledger, on seeds the
//! monitor's rules were not tuned on (they were tuned on 1..3): the goals are
//! asserted on what the command prints (overall recall and precision of injected
//! snooping at least 0.9, at least 95 % of normal reads explained by a ledger fact).

mod common;

use std::process::Command;

use common::BIN;

/// The number after `label` on the line that starts with it.
fn figure(out: &str, line_start: &str, column: usize) -> f64 {
    let line = out
        .lines()
        .find(|l| l.starts_with(line_start))
        .unwrap_or_else(|| panic!("no line {line_start:?} in:\n{out}"));
    line.split_whitespace()
        .nth(column)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no figure in column {column} of {line:?}"))
}

#[test]
fn the_goals_hold_through_the_ledger_on_untuned_seeds() {
    for seed in ["12", "13"] {
        let out = Command::new(BIN)
            .args([
                "monitor-eval",
                "--seed",
                seed,
                "--weeks",
                "6",
                "--doctors",
                "40",
            ])
            .output()
            .expect("run medchain monitor-eval");
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success(),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains("through the records ledger"), "{text}");
        // overall: alerts, true, precision, incidents, detected, by_rule, recall.
        let precision = figure(&text, "overall", 3);
        let incidents = figure(&text, "overall", 4);
        let recall = figure(&text, "overall", 7);
        let explained = figure(&text, "explained share of normal reads:", 5);
        eprintln!("seed {seed}: precision {precision}, recall {recall}, explained {explained}");
        assert!(incidents >= 20.0, "too few incidents to measure:\n{text}");
        assert!(recall >= 0.9, "seed {seed}: recall {recall}\n{text}");
        assert!(
            precision >= 0.9,
            "seed {seed}: precision {precision}\n{text}"
        );
        assert!(
            explained >= 0.95,
            "seed {seed}: explained {explained}\n{text}"
        );
    }
}
