//! `medchain bench` end to end: each test runs the real command, which starts its own
//! four-process cluster, and checks the JSON it writes against the external contract.
//! Every run is bounded in time (interrupted, then killed) and the runs go one at a time.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_medchain");

/// Clusters run one at a time: four replicas already share two cores.
static SERIAL: Mutex<()> = Mutex::new(());

/// A bench run should take warm-up + duration + a few seconds of start and stop.
const RUN_LIMIT: Duration = Duration::from_secs(150);

/// Run `medchain bench ARGS --json DIR/out.json`; (exit success, stdout+stderr, JSON).
fn bench(dir: &Path, args: &[&str]) -> (bool, String, serde_json::Value) {
    let json = dir.join("out.json");
    let out_path = dir.join("stdout.txt");
    let err_path = dir.join("stderr.txt");
    let mut child = Command::new(BIN)
        .arg("bench")
        .args(args)
        .arg("--json")
        .arg(&json)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).expect("stdout file"))
        .stderr(std::fs::File::create(&err_path).expect("stderr file"))
        .spawn()
        .expect("spawn medchain bench");
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("try_wait") {
            break Some(s);
        }
        if started.elapsed() > RUN_LIMIT {
            // SIGINT lets bench stop its replicas; SIGKILL if even that hangs.
            let _ = Command::new("kill")
                .arg("-INT")
                .arg(child.id().to_string())
                .status();
            let grace = Instant::now();
            while grace.elapsed() < Duration::from_secs(20) {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let text = format!(
        "{}{}",
        std::fs::read_to_string(&out_path).unwrap_or_default(),
        std::fs::read_to_string(&err_path).unwrap_or_default()
    );
    assert!(
        status.is_some(),
        "bench did not finish in {RUN_LIMIT:?}:\n{text}"
    );
    let v = std::fs::read_to_string(&json)
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or(serde_json::Value::Null);
    (status.is_some_and(|s| s.success()), text, v)
}

fn f(v: &serde_json::Value, key: &str) -> f64 {
    v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} is not a number in {v}"))
}

/// What every successful run must satisfy.
fn assert_sane(v: &serde_json::Value, text: &str) {
    assert!(v["committed"].as_u64().is_some_and(|c| c > 0), "{text}");
    assert!(f(v, "success_rate") > 0.9, "{text}");
    assert!(f(v, "throughput_rps") > 0.0, "{text}");
    let l = &v["latency_ms"];
    let (p50, p95, p99) = (f(l, "p50"), f(l, "p95"), f(l, "p99"));
    assert!(p50 > 0.0 && p50 <= p95 && p95 <= p99, "{l}");
    let rss: Vec<f64> = v["rss_peak_mb"]
        .as_array()
        .expect("rss_peak_mb")
        .iter()
        .filter_map(serde_json::Value::as_f64)
        .collect();
    assert_eq!(rss.len(), 4, "{}", v["rss_peak_mb"]);
    assert!(rss.iter().all(|m| *m > 0.0), "{rss:?}");
    // Energy may be unknown (null) but the fields are always there.
    for key in [
        "energy_joules",
        "records_per_joule",
        "cpu_seconds",
        "series",
    ] {
        assert!(v.get(key).is_some(), "{key} missing");
    }
    assert_eq!(
        v["series"].as_array().map(Vec::len),
        v["duration_s"].as_u64().map(|d| d as usize)
    );
}

#[test]
fn closed_loop_through_http_commits_records_and_writes_the_contract_json() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().expect("tempdir");
    let svg = dir.path().join("run.svg");
    let (ok, text, v) = bench(
        dir.path(),
        &[
            "--duration",
            "3",
            "--clients",
            "8",
            "--svg",
            svg.to_str().expect("utf-8 path"),
        ],
    );
    assert!(ok, "{text}");
    assert_sane(&v, &text);
    assert_eq!(v["mode"], "http");
    assert_eq!(v["clients"], 8);
    assert!(v["offered_rate"].is_null());
    assert!(text.contains("throughput"), "no summary table:\n{text}");
    assert!(std::fs::read_to_string(&svg).is_ok_and(|s| s.contains("<polyline")));

    // The chart can be redrawn from the saved JSON alone.
    let again = dir.path().join("again.svg");
    let out = Command::new(BIN)
        .args(["bench", "--chart-from"])
        .arg(dir.path().join("out.json"))
        .arg("--svg")
        .arg(&again)
        .output()
        .expect("chart-from");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(again.exists());
}

#[test]
fn consensus_mode_commits_accepted_ledger_transactions() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().expect("tempdir");
    let (ok, text, v) = bench(dir.path(), &["--mode", "consensus", "--duration", "3"]);
    assert!(ok, "{text}");
    assert_sane(&v, &text);
    assert_eq!(v["mode"], "consensus");
    // Execution accepted every transaction of the run (none forbidden or invalid).
    let outcomes = v["ledger_outcomes"].as_object().expect("ledger_outcomes");
    assert!(
        outcomes
            .get("ok")
            .and_then(|n| n.as_u64())
            .is_some_and(|n| n >= v["committed"].as_u64().unwrap_or(0)),
        "{outcomes:?}"
    );
    assert_eq!(outcomes.len(), 1, "{outcomes:?}");
}

#[test]
fn catch_up_mode_times_a_late_replica_to_the_head() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().expect("tempdir");
    let (ok, text, v) = bench(
        dir.path(),
        &[
            "--mode",
            "catch-up",
            "--behind",
            "3000",
            "--batch",
            "32",
            "--duration",
            "120",
        ],
    );
    assert!(ok, "{text}");
    assert_eq!(v["mode"], "catch-up");
    // 94 requests of 32 records.
    assert_eq!(v["records_behind"], 3008, "{v}");
    assert!(v["blocks_behind"].as_u64().is_some_and(|b| b > 0), "{v}");
    let (total, transfer) = (f(&v, "seconds"), f(&v, "seconds_after_first_block"));
    assert!(total > 0.0 && (0.0..=total).contains(&transfer), "{v}");
    assert!(f(&v, "records_per_s") > 0.0, "{v}");
    assert!(text.contains("from process start"), "{text}");
}

#[test]
fn open_loop_delivers_the_offered_rate() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().expect("tempdir");
    let (ok, text, v) = bench(dir.path(), &["--rate", "50", "--duration", "3"]);
    assert!(ok, "{text}");
    assert_sane(&v, &text);
    assert_eq!(v["offered_rate"], 50.0);
    let t = f(&v, "throughput_rps");
    assert!(
        (35.0..=65.0).contains(&t),
        "throughput {t} is not within 30% of 50:\n{text}"
    );
}

#[test]
fn bad_arguments_are_refused_before_anything_starts() {
    for (args, needle) in [
        (vec!["--duration", "0", "--json", "x.json"], "--duration"),
        (vec!["--duration", "3601", "--json", "x.json"], "--duration"),
        (vec!["--duration", "5"], "--json"),
        (
            vec!["--duration", "5", "--json", "x.json", "--rate", "0"],
            "--rate",
        ),
        (
            vec!["--duration", "5", "--json", "x.json", "--clients", "0"],
            "--clients",
        ),
        (
            vec![
                "--duration",
                "5",
                "--json",
                "x.json",
                "--target",
                "https://a:1",
            ],
            "http://",
        ),
        (
            vec![
                "--duration",
                "5",
                "--json",
                "x.json",
                "--mode",
                "consensus",
                "--target",
                "http://127.0.0.1:1",
            ],
            "--config",
        ),
        (vec!["--chart-from", "x.json"], "--svg"),
        (
            vec![
                "--duration",
                "5",
                "--json",
                "x.json",
                "--mode",
                "catch-up",
                "--rate",
                "10",
            ],
            "--rate",
        ),
    ] {
        let out = Command::new(BIN)
            .arg("bench")
            .args(&args)
            .output()
            .expect("run medchain bench");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} was accepted");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}
