//! Validates exported Bundles with an independent FHIR R4 implementation (Python
//! `fhir.resources` 6.4.0 via `tests-fhir/validate.py`), so the crate is not only checked
//! against its author's reading of the spec. Needs `bash tests-fhir/setup.sh` once.
// clippy's allow-unwrap-in-tests covers #[test] fns but not their helpers; a panic in a
// helper is still just a failing test.
#![allow(clippy::unwrap_used)]

use medchain_fhir::{
    patient_everything, AuditEntry, ConsentEntry, Dispense, Medication, Org, PatientExport, Person,
    Record,
};
use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;

#[path = "common/fixtures.rs"]
mod fixtures;
use fixtures::*;

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Writes each bundle to its own temp file, runs the validator on all of them and returns
/// (success, combined output). Fails loudly, never skips, when the venv is missing.
fn run_validator(name: &str, bundles: &[Value]) -> (bool, String) {
    let ws = workspace();
    let python = ws.join(".venv-fhir/bin/python");
    assert!(
        python.exists(),
        "{} not found: run `bash tests-fhir/setup.sh` in the workspace first",
        python.display()
    );
    let dir = std::env::temp_dir().join(format!("medchain-fhir-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let files: Vec<PathBuf> = bundles
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let f = dir.join(format!("bundle-{i}.json"));
            std::fs::write(&f, serde_json::to_vec_pretty(b).unwrap()).unwrap();
            f
        })
        .collect();
    let out = Command::new(&python)
        .arg(ws.join("tests-fhir/validate.py"))
        .args(&files)
        .output()
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{text}");
    (out.status.success(), text)
}

#[test]
fn exported_bundles_are_valid_fhir_r4() {
    let bundles: Vec<Value> = [empty_export(), rich_export(), awkward_export()]
        .iter()
        .map(|x| patient_everything(x, BASE))
        .collect();
    let (ok, out) = run_validator("valid", &bundles);
    assert!(ok, "validator rejected an exported bundle:\n{out}");
    assert_eq!(out.matches(": OK").count(), bundles.len(), "{out}");
}

/// The validator must be able to say no, both where fhir.resources itself enforces the
/// schema (a missing mandatory element) and where only validate.py's own checks do (a
/// code outside a required value set; a reference to a type the element does not allow).
#[test]
fn validator_rejects_broken_bundles() {
    let good = patient_everything(&rich_export(), BASE);
    let entry_of = |b: &mut Value, t: &str| -> usize {
        let entries = b["entry"].as_array().unwrap();
        entries
            .iter()
            .position(|e| e["resource"]["resourceType"] == t)
            .unwrap()
    };
    let mut no_subject = good.clone();
    let i = entry_of(&mut no_subject, "Condition");
    no_subject["entry"][i]["resource"]
        .as_object_mut()
        .unwrap()
        .remove("subject");

    let mut bad_status = good.clone();
    let i = entry_of(&mut bad_status, "MedicationRequest");
    bad_status["entry"][i]["resource"]["status"] = "approved-ish".into();

    let mut bad_target = good.clone();
    let i = entry_of(&mut bad_target, "Condition");
    bad_target["entry"][i]["resource"]["subject"]["reference"] = "Organization/org-hosp".into();

    for (name, broken, expect) in [
        ("no-subject", no_subject, "field required"),
        ("bad-status", bad_status, "approved-ish"),
        ("bad-target", bad_target, "Organization"),
    ] {
        let (ok, out) = run_validator(name, &[broken]);
        assert!(!ok, "{name}: validator accepted a broken bundle:\n{out}");
        assert!(
            out.contains("INVALID") && out.contains(expect),
            "{name}:\n{out}"
        );
    }
}
