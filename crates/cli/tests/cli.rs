//! The command line without a running cluster: key generation, init, and clear errors
//! for bad input.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_medchain");

#[test]
fn keygen_writes_a_private_key_file_and_never_overwrites_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("org.key");
    let out = Command::new(BIN)
        .args(["keygen", "--out"])
        .arg(&path)
        .output()
        .expect("run");
    assert!(out.status.success());
    let public = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert_eq!(
        public.len(),
        64,
        "a public key is 32 bytes of hex: {public}"
    );
    let mode = std::fs::metadata(&path)
        .expect("key file")
        .permissions()
        .mode();
    assert_eq!(
        mode & 0o777,
        0o600,
        "the secret is readable by its owner only"
    );
    let before = std::fs::read(&path).expect("read");
    let again = Command::new(BIN)
        .args(["keygen", "--out"])
        .arg(&path)
        .output()
        .expect("run");
    assert!(!again.status.success());
    assert_eq!(
        std::fs::read(&path).expect("read"),
        before,
        "the key must survive"
    );
}

#[test]
fn init_refuses_to_overwrite_a_cluster_and_rejects_bad_sizes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let init = |replicas: &str| {
        Command::new(BIN)
            .args(["init", "--replicas", replicas, "--dir"])
            .arg(dir.path())
            .output()
            .expect("run")
    };
    let bad = init("5");
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("3f+1"));
    assert!(init("4").status.success());
    for i in 0..4 {
        assert!(dir.path().join(format!("node{i}.toml")).exists());
    }
    let again = init("4");
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("refusing to overwrite"));
}

#[test]
fn verify_of_a_replica_that_never_ran_says_so() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ok = Command::new(BIN)
        .args(["init", "--dir"])
        .arg(dir.path())
        .output()
        .expect("run");
    assert!(ok.status.success());
    let out = Command::new(BIN)
        .args(["verify", "--config"])
        .arg(dir.path().join("node0.toml"))
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("never run"));
}

#[test]
fn a_config_naming_the_wrong_key_is_refused_with_the_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    assert!(Command::new(BIN)
        .args(["init", "--dir"])
        .arg(dir.path())
        .output()
        .expect("run")
        .status
        .success());
    let cfg = dir.path().join("node0.toml");
    let text = std::fs::read_to_string(&cfg).expect("config");
    std::fs::write(
        &cfg,
        text.replace("keys/replica-0.key", "keys/replica-1.key"),
    )
    .expect("write");
    let out = Command::new(BIN)
        .args(["node", "--config"])
        .arg(&cfg)
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("does not match"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
