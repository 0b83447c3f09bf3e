//! Structural checks on the Bundle that a schema validator cannot make: counts,
//! self-contained references, block identifiers, and what must not leak where.

use crate::{
    patient_everything, AuditEntry, ConsentEntry, Dispense, Medication, Org, PatientExport, Person,
    Record,
};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

#[path = "../tests/common/fixtures.rs"]
mod fixtures;
use fixtures::*;

fn resources(b: &Value) -> Vec<&Value> {
    b["entry"]
        .as_array()
        .map(|a| a.iter().map(|e| &e["resource"]).collect())
        .unwrap_or_default()
}

fn of_type<'a>(b: &'a Value, t: &str) -> Vec<&'a Value> {
    resources(b)
        .into_iter()
        .filter(|r| r["resourceType"] == t)
        .collect()
}

fn counts(b: &Value) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for r in resources(b) {
        *m.entry(r["resourceType"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    m
}

/// Every `"reference"` string anywhere under `v`.
fn references<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::Object(o) => {
            for (k, x) in o {
                match (k.as_str(), x) {
                    ("reference", Value::String(s)) => out.push(s),
                    _ => references(x, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| references(x, out)),
        _ => {}
    }
}

/// Checks the bundle is self-contained and its entries are well formed.
fn check_integrity(b: &Value) {
    let mut keys = BTreeSet::new();
    for e in b["entry"].as_array().unwrap() {
        let r = &e["resource"];
        let key = format!(
            "{}/{}",
            r["resourceType"].as_str().unwrap(),
            r["id"].as_str().unwrap()
        );
        assert_eq!(e["fullUrl"], format!("{BASE}/{key}"));
        assert!(keys.insert(key.clone()), "duplicate entry {key}");
        let id = r["id"].as_str().unwrap();
        assert!((1..=64).contains(&id.len()), "{id}");
        assert!(
            id.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.'),
            "{id}"
        );
    }
    let mut refs = Vec::new();
    references(b, &mut refs);
    for r in refs {
        assert!(keys.contains(r), "dangling reference {r}");
    }
}

/// FHIR JSON forbids null, "", {} and [] anywhere.
fn assert_no_empties(v: &Value) {
    match v {
        Value::Null => panic!("null in bundle"),
        Value::String(s) => assert!(!s.is_empty(), "empty string in bundle"),
        Value::Array(a) => {
            assert!(!a.is_empty(), "[] in bundle");
            a.iter().for_each(assert_no_empties);
        }
        Value::Object(o) => {
            assert!(!o.is_empty(), "{{}} in bundle");
            o.values().for_each(assert_no_empties);
        }
        Value::Bool(_) | Value::Number(_) => {}
    }
}

#[test]
fn empty_patient_has_only_the_patient() {
    let b = patient_everything(&empty_export(), BASE);
    assert_eq!(b["type"], "searchset");
    assert_eq!(counts(&b), BTreeMap::from([("Patient".to_owned(), 1)]));
    assert_eq!(b["entry"][0]["search"]["mode"], "match");
    assert_eq!(b["timestamp"], "2025-01-01T00:00:00.000Z");
    check_integrity(&b);
}

#[test]
fn rich_export_counts_and_references() {
    let b = patient_everything(&rich_export(), BASE);
    let expected = [
        ("Patient", 1),
        ("Organization", 2),
        ("Practitioner", 2),
        ("Condition", 2),
        // r-1: two lines; r-2: free text only.
        ("MedicationRequest", 3),
        ("MedicationDispense", 1),
        ("Consent", 3),
        ("AuditEvent", 3),
        // One per ledger entry: 2 records + 1 dispense + 3 consents + 3 audits.
        ("Provenance", 9),
    ];
    let expected: BTreeMap<String, usize> =
        expected.iter().map(|(k, v)| (k.to_string(), *v)).collect();
    assert_eq!(counts(&b), expected);
    check_integrity(&b);
    let mut refs = Vec::new();
    references(&b, &mut refs);
    assert!(refs.len() > 40, "{}", refs.len());
    let statuses: Vec<&Value> = of_type(&b, "Consent")
        .iter()
        .map(|c| &c["status"])
        .collect();
    assert_eq!(statuses, ["active", "inactive", "inactive"]);
    let disp = &of_type(&b, "MedicationDispense")[0];
    assert_eq!(disp["authorizingPrescription"].as_array().unwrap().len(), 2);
    assert_eq!(
        disp["medicationCodeableConcept"]["text"],
        format!("Amoxicillin; {ZOE}")
    );
}

#[test]
fn provenance_carries_the_block() {
    let x = rich_export();
    let b = patient_everything(&x, BASE);
    let provs = of_type(&b, "Provenance");
    let block_of = |target: &str| -> String {
        let p = provs
            .iter()
            .find(|p| {
                p["target"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|t| t["reference"] == target)
            })
            .unwrap_or_else(|| panic!("no provenance for {target}"));
        let what = &p["entity"][0]["what"]["identifier"];
        assert_eq!(what["system"], "urn:medchain:block");
        what["value"].as_str().unwrap().to_owned()
    };
    let r = &x.records[0];
    assert_eq!(
        block_of("Condition/cond-r-1"),
        format!("{}:{}", r.block_height, r.block_hash)
    );
    assert_eq!(
        block_of("MedicationRequest/medreq-r-1-1"),
        format!("7:{}", r.block_hash)
    );
    let d = &x.dispenses[0];
    assert_eq!(
        block_of("MedicationDispense/disp-r-1"),
        format!("9:{}", d.block_hash)
    );
    // Every non-Provenance ledger resource is a target of exactly one Provenance.
    let mut targeted = BTreeMap::new();
    for p in &provs {
        for t in p["target"].as_array().unwrap() {
            *targeted
                .entry(t["reference"].as_str().unwrap().to_owned())
                .or_insert(0) += 1;
        }
    }
    assert_eq!(targeted.len(), 2 + 3 + 1 + 3 + 3);
    assert!(targeted.values().all(|n| *n == 1));
    // The amendment points back at the record it revises.
    let amend = provs
        .iter()
        .find(|p| p["target"][0]["reference"] == "Condition/cond-r-2")
        .unwrap();
    assert_eq!(amend["entity"][1]["role"], "revision");
    assert_eq!(
        amend["entity"][1]["what"]["reference"],
        "Condition/cond-r-1"
    );
    assert_eq!(amend["activity"]["coding"][0]["code"], "UPDATE");
}

#[test]
fn no_diagnosis_or_notes_in_medication_requests() {
    let x = rich_export();
    let b = patient_everything(&x, BASE);
    let requests = of_type(&b, "MedicationRequest");
    assert!(!requests.is_empty());
    for m in requests {
        let s = m.to_string();
        for r in &x.records {
            for secret in [&r.diagnosis, &r.notes] {
                assert!(!s.contains(secret.as_str()), "{secret:?} leaked into {s}");
            }
        }
        assert!(m.get("reasonReference").is_none() && m.get("reasonCode").is_none());
    }
}

#[test]
fn hostile_text_is_preserved_verbatim() {
    let b = patient_everything(&rich_export(), BASE);
    let conds = of_type(&b, "Condition");
    assert_eq!(conds[0]["code"]["text"], DIAGNOSIS_1);
    assert_eq!(conds[0]["note"][0]["text"], NOTES_1);
    assert_eq!(conds[1]["note"][0]["text"], NOTES_2);
    assert_eq!(of_type(&b, "Patient")[0]["name"][0]["text"], ZOE);
    assert_eq!(of_type(&b, "Practitioner")[1]["name"][0]["text"], SQL);
    let requests = of_type(&b, "MedicationRequest");
    assert_eq!(requests[1]["medicationCodeableConcept"]["text"], ZOE);
    assert_eq!(
        requests[0]["note"][0]["text"],
        "Quantity to dispense: 21 capsules"
    );
    assert_eq!(
        requests[0]["dosageInstruction"][0]["text"],
        "500 mg, oral, three times daily, for 7 days"
    );
    assert_eq!(
        requests[2]["medicationCodeableConcept"]["text"],
        "Continue amoxicillin 500 mg TDS"
    );
    let glass = &of_type(&b, "AuditEvent")[2];
    assert_eq!(
        glass["purposeOfEvent"][0]["text"],
        "Unconscious in A&E: Zoë 💊"
    );
    assert_eq!(glass["purposeOfEvent"][0]["coding"][0]["code"], "ETREAT");
    assert_eq!(glass["agent"][0]["requestor"], true);
    assert_eq!(glass["agent"][0]["who"]["identifier"]["value"], "d999");
}

#[test]
fn awkward_ids_stay_valid_and_self_contained() {
    let b = patient_everything(&awkward_export(), BASE);
    check_integrity(&b);
    // The duplicated record is emitted once; the blank diagnosis yields no code.
    assert_eq!(of_type(&b, "Condition").len(), 2);
    assert!(of_type(&b, "Condition")[1].get("code").is_none());
    // A dispense of a record outside the export still names a medication.
    let disp = &of_type(&b, "MedicationDispense")[0];
    assert!(disp["medicationCodeableConcept"]["text"]
        .as_str()
        .unwrap()
        .contains("r-elsewhere"));
    assert_eq!(
        of_type(&b, "AuditEvent")[0]["subtype"][0]["code"],
        "get chain"
    );
    assert!(of_type(&b, "AuditEvent")[1].get("subtype").is_none());
    assert_no_empties(&b);
}

#[test]
fn output_is_deterministic() {
    let x = rich_export();
    assert_eq!(
        patient_everything(&x, BASE),
        patient_everything(&x, &format!("{BASE}/"))
    );
}
