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
        text.replace("org0/keys/replica.key", "org1/keys/replica.key"),
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

fn mode_of(path: &std::path::Path) -> u32 {
    std::fs::metadata(path)
        .expect("exists")
        .permissions()
        .mode()
        & 0o777
}

#[test]
fn init_keeps_its_folders_owner_only() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("cluster");
    let out = Command::new(BIN)
        .args(["init", "--replicas", "4", "--demo", "--dir"])
        .arg(&dir)
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(mode_of(&dir), 0o700, "the cluster folder");
    for i in 0..4 {
        for folder in ["", "/keys", "/data"] {
            let path = dir.join(format!("org{i}{folder}"));
            assert_eq!(mode_of(&path), 0o700, "{}", path.display());
        }
        for key in ["replica", "gateway", "operator"] {
            let path = dir.join(format!("org{i}/keys/{key}.key"));
            assert_eq!(mode_of(&path), 0o600, "{}", path.display());
        }
    }
    assert_eq!(mode_of(&dir.join("org0/data/sign-in.sqlite")), 0o600);
}

#[test]
fn the_token_secret_rotates_from_the_command_line_and_keeps_the_old_key() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("cluster");
    let out = Command::new(BIN)
        .args(["init", "--replicas", "4", "--dir"])
        .arg(&dir)
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let config = dir.join("node0.toml");
    let rotate = || {
        Command::new(BIN)
            .args(["user", "rotate-token-secret", "--config"])
            .arg(&config)
            .output()
            .expect("run")
    };
    // Before the node ever ran there is no secret to rotate: said, not invented.
    let early = rotate();
    assert!(!early.status.success());
    assert!(String::from_utf8_lossy(&early.stderr).contains("first starts"));

    let key_file = medchain_api::auth::token_secret_path(&dir.join("org0/data"));
    let first = medchain_api::keyring::KeyRing::load_or_create(&key_file, None, 1_000)
        .expect("a key file as the node makes it");
    let old_kid = first.current().kid.clone();
    let out = rotate();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8_lossy(&out.stdout).to_string();
    let ring = medchain_api::keyring::KeyRing::load(&key_file).expect("rotated file");
    let new_kid = ring.current().kid.clone();
    assert_ne!(new_kid, old_kid);
    assert!(printed.contains(&new_kid), "{printed}");
    assert!(
        ring.get(&old_kid).is_some(),
        "tokens of the old key stay valid until they expire"
    );
    let secret_hex = std::fs::read_to_string(&key_file).expect("read");
    for line in secret_hex.lines() {
        if let Some(secret) = line.split_whitespace().last() {
            assert!(!printed.contains(secret), "the secret is never printed");
        }
    }
    assert_eq!(mode_of(&key_file), 0o600);
}
