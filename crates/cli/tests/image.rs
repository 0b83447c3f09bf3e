//! The container image is built and run as part of the suite: `scripts/build-image.sh`
//! lays out the `FROM scratch` root filesystem and the `docker load` archive from the
//! binary under test, and `scripts/check-image.sh` checks the archive's digests and runs
//! a demo consortium from that root filesystem alone (chroot, uid 65534), up to a
//! committed record. The chroot needs root: with `MEDCHAIN_REQUIRE_NETNS=1` (CI, as root)
//! a skipped run fails the test.

mod common;

use std::path::Path;
use std::process::Command;

use common::{free_base, BIN, SERIAL};

fn script(name: &str, args: &[&str]) -> String {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = Command::new("bash")
        .arg(repo.join("scripts").join(name))
        .args(args)
        .output()
        .expect("bash runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{name} failed:\n{text}");
    text
}

#[test]
fn the_scratch_image_holds_everything_a_replica_needs() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("image");
    let out = out.to_str().expect("utf-8 path");

    let built = script("build-image.sh", &[BIN, out]);
    assert!(
        built.contains("medchain-image.tar: layer sha256:"),
        "{built}"
    );
    let containerfile = std::fs::read_to_string(Path::new(out).join("context/Containerfile"))
        .expect("Containerfile in the build context");
    assert!(containerfile.contains("FROM scratch"), "{containerfile}");

    let (http, p2p) = free_base();
    let checked = script(
        "check-image.sh",
        &[out, &http.to_string(), &p2p.to_string()],
    );
    assert!(checked.contains("archive: digests agree"), "{checked}");
    if checked.contains("chroot run skipped") {
        assert!(
            std::env::var_os("MEDCHAIN_REQUIRE_NETNS").is_none(),
            "CI must run the image, not skip it:\n{checked}"
        );
        eprintln!("skipped the chroot run (not root)");
        return;
    }
    assert!(
        checked.contains("chroot run: four replicas from the image committed record"),
        "{checked}"
    );
}
