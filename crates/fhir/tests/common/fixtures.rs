//! Sample exports shared by the unit tests (`src/tests.rs`) and the validator test
//! (`tests/validate.rs`), so both check the very same bundles.
// Each includer uses a different subset of these helpers.
#![allow(dead_code)]

use super::{AuditEntry, ConsentEntry, Dispense, Medication, Org, PatientExport, Person, Record};

pub const BASE: &str = "https://node1.medchain.example/fhir";
/// 2025-01-01T00:00:00Z.
pub const NOW: u64 = 1_735_689_600_000;
const DAY: u64 = 86_400_000;
pub const SQL: &str = "Robert'); DROP TABLE records;--";
pub const ZOE: &str = "Zoë 💊";
pub const DIAGNOSIS_1: &str = "Community-acquired pneumonia <b>&amp;</b> \"quoted\"";
pub const NOTES_1: &str = "Review in 7 days; patient said: Robert'); DROP TABLE records;--";
pub const DIAGNOSIS_2: &str = "Pneumonia, right lower lobe (corrected)";
pub const NOTES_2: &str = "Amended after X-ray — Zoë 💊";

fn hash(c: char) -> String {
    c.to_string().repeat(64)
}

fn person(id: &str, name: &str, org: &str) -> Person {
    Person {
        user_id: id.into(),
        display_name: name.into(),
        organisation: org.into(),
        department: Some("cardiology".into()),
        active: true,
    }
}

pub fn empty_export() -> PatientExport {
    PatientExport {
        patient: person("p001", "Alice Example", ""),
        practitioners: vec![],
        organizations: vec![],
        records: vec![],
        dispenses: vec![],
        consents: vec![],
        audits: vec![],
        generated_at_ms: NOW,
    }
}

fn med(name: &str, quantity: &str) -> Medication {
    Medication {
        name: name.into(),
        dose: "500 mg".into(),
        route: "oral".into(),
        frequency: "three times daily".into(),
        duration: "7 days".into(),
        quantity: quantity.into(),
    }
}

fn consent(kind: &str, id: &str, exp: Option<u64>, rev: Option<u64>, h: u64) -> ConsentEntry {
    ConsentEntry {
        grantee_kind: kind.into(),
        grantee_id: id.into(),
        granted_at_ms: NOW - 30 * DAY,
        expires_at_ms: exp,
        revoked_at_ms: rev,
        block_height: h,
        block_hash: hash('c'),
    }
}

fn audit(reader: &str, role: &str, action: &str, reason: &str, h: u64) -> AuditEntry {
    AuditEntry {
        reader_id: reader.into(),
        reader_role: role.into(),
        action: action.into(),
        reason: reason.into(),
        at_ms: NOW - DAY + h,
        block_height: h,
        block_hash: hash('d'),
    }
}

/// Two records (the second amends the first), medication lines and a free-text-only
/// prescription, a dispense, active/expired/revoked consents, audits incl. break-glass,
/// and hostile text that must come out verbatim.
pub fn rich_export() -> PatientExport {
    let mut patient = person("p002", ZOE, "org-hosp");
    patient.department = None;
    PatientExport {
        patient,
        practitioners: vec![
            person("d001", "Dr. Grace Hopper", "org-hosp"),
            person("ph001", SQL, "org-pharm"),
        ],
        organizations: vec![
            Org {
                id: "org-hosp".into(),
                name: "St. Example Hospital".into(),
            },
            Org {
                id: "org-pharm".into(),
                name: "Corner Pharmacy".into(),
            },
        ],
        records: vec![
            Record {
                record_id: "r-1".into(),
                doctor_id: "d001".into(),
                department: "pulmonology".into(),
                diagnosis: DIAGNOSIS_1.into(),
                prescription: "Amoxicillin + paracetamol".into(),
                notes: NOTES_1.into(),
                medications: vec![med("Amoxicillin", "21 capsules"), med(ZOE, "")],
                created_at_ms: NOW - 10 * DAY,
                block_height: 7,
                block_hash: hash('a'),
                amends: None,
            },
            Record {
                record_id: "r-2".into(),
                doctor_id: "d001".into(),
                department: "pulmonology".into(),
                diagnosis: DIAGNOSIS_2.into(),
                prescription: "Continue amoxicillin 500 mg TDS".into(),
                notes: NOTES_2.into(),
                medications: vec![],
                created_at_ms: NOW - 9 * DAY,
                block_height: 8,
                block_hash: hash('b'),
                amends: Some("r-1".into()),
            },
        ],
        dispenses: vec![Dispense {
            record_id: "r-1".into(),
            pharmacy_id: "ph001".into(),
            at_ms: NOW - 9 * DAY,
            block_height: 9,
            block_hash: hash('e'),
        }],
        consents: vec![
            consent("doctor", "d001", None, None, 3),
            consent("department", "cardiology", Some(NOW - DAY), None, 4),
            consent("pharmacy", "ph001", Some(NOW + DAY), Some(NOW - 2 * DAY), 5),
        ],
        audits: vec![
            audit("d001", "doctor", "get_chain", "Follow-up visit", 10),
            audit("p002", "patient", "fhir_export", "", 11),
            audit(
                "d999",
                "doctor",
                "break_glass",
                "Unconscious in A&E: Zoë 💊",
                12,
            ),
        ],
        generated_at_ms: NOW,
    }
}

/// Ids FHIR would reject as they are (too long, odd characters, empty), references to
/// users and records missing from the export, and a duplicated record.
pub fn awkward_export() -> PatientExport {
    let long = "x".repeat(80);
    let mut x = rich_export();
    x.patient.user_id = "patient@clinic/42".into();
    x.patient.organisation = "org-unknown".into();
    x.practitioners[0].user_id = format!("doc_{long}");
    x.records[0].doctor_id = format!("doc_{long}");
    x.records[0].record_id = long.clone();
    x.records[1].amends = Some("r-missing".into());
    x.records[1].diagnosis = "   ".into();
    x.records[1].notes = String::new();
    x.records[1].prescription = String::new();
    x.records.push(x.records[0].clone());
    x.dispenses[0].record_id = "r-elsewhere".into();
    x.audits[0].action = "  get  chain ".into();
    x.audits[1].action = String::new();
    x.consents.push(consent("department", "", None, None, 6));
    x.consents.push(consent("insurer", "ins-1", None, None, 7));
    x.audits.push(audit(
        "ph-unknown",
        "pharmacy",
        "get_chain",
        "dispensing check",
        13,
    ));
    x
}
