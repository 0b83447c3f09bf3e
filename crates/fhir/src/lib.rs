//! FHIR R4 (4.0.1) export of one patient's ledger data, so that `GET
//! /fhir/Patient/{id}/$everything` hands other health systems a standard Bundle instead of
//! MedChain's own JSON. Pure data in, JSON out: the API layer gathers the data (and
//! enforces who may see it); this crate only maps it.
//!
//! The output is checked against an independent implementation of the R4 schema
//! (`fhir.resources` 6.4.0, see `tests-fhir/`), not just against our own reading of it.

mod bundle;
mod ids;
#[cfg(test)]
mod tests;
mod time;
/// A FHIR `instant` (RFC 3339, UTC, milliseconds) from Unix milliseconds.
pub use time::instant as format_instant;

use serde::Serialize;

/// Everything the ledger knows about one patient, already filtered by access rules.
#[derive(Serialize, Debug, Clone)]
pub struct PatientExport {
    pub patient: Person,
    /// Users the other parts refer to (record authors, pharmacies, readers); a reference to
    /// a user not listed here becomes an identifier-only reference.
    pub practitioners: Vec<Person>,
    pub organizations: Vec<Org>,
    pub records: Vec<Record>,
    pub dispenses: Vec<Dispense>,
    pub consents: Vec<ConsentEntry>,
    pub audits: Vec<AuditEntry>,
    /// When the export was made (Unix ms); decides whether a consent is still active.
    pub generated_at_ms: u64,
}

/// A registered user (patient, doctor, pharmacy, department account).
#[derive(Serialize, Debug, Clone)]
pub struct Person {
    pub user_id: String,
    pub display_name: String,
    /// Id of the user's organisation (an [`Org::id`]); empty when unknown.
    pub organisation: String,
    pub department: Option<String>,
    pub active: bool,
}

/// An organisation that runs a replica.
#[derive(Serialize, Debug, Clone)]
pub struct Org {
    pub id: String,
    pub name: String,
}

/// One structured prescription line; all fields are free text as the doctor typed them.
#[derive(Serialize, Debug, Clone)]
pub struct Medication {
    pub name: String,
    pub dose: String,
    pub route: String,
    pub frequency: String,
    pub duration: String,
    pub quantity: String,
}

/// A committed medical record.
#[derive(Serialize, Debug, Clone)]
pub struct Record {
    pub record_id: String,
    pub doctor_id: String,
    pub department: String,
    pub diagnosis: String,
    pub prescription: String,
    pub notes: String,
    pub medications: Vec<Medication>,
    pub created_at_ms: u64,
    pub block_height: u64,
    /// 64 hex digits.
    pub block_hash: String,
    /// The record this one corrects, if any.
    pub amends: Option<String>,
}

/// A pharmacy's one-time dispensing of a record's prescription.
#[derive(Serialize, Debug, Clone)]
pub struct Dispense {
    pub record_id: String,
    pub pharmacy_id: String,
    pub at_ms: u64,
    pub block_height: u64,
    pub block_hash: String,
}

/// A consent the patient granted (and possibly revoked).
#[derive(Serialize, Debug, Clone)]
pub struct ConsentEntry {
    /// `"doctor"`, `"department"` or `"pharmacy"`.
    pub grantee_kind: String,
    pub grantee_id: String,
    pub granted_at_ms: u64,
    pub expires_at_ms: Option<u64>,
    pub revoked_at_ms: Option<u64>,
    pub block_height: u64,
    pub block_hash: String,
}

/// A read of the patient's data, as logged on the ledger.
#[derive(Serialize, Debug, Clone)]
pub struct AuditEntry {
    pub reader_id: String,
    pub reader_role: String,
    /// e.g. `"get_chain"`, `"fhir_export"`, `"break_glass"`.
    pub action: String,
    pub reason: String,
    pub at_ms: u64,
    pub block_height: u64,
    pub block_hash: String,
}

/// The `Patient/$everything` Bundle for `export`. `base_url` is the server's absolute FHIR
/// base (e.g. `https://node1.example/fhir`); entries' `fullUrl`s are `{base_url}/Type/id`.
///
/// Deterministic: the same export always gives byte-identical JSON, so two replicas
/// answering the same request can be compared.
pub fn patient_everything(export: &PatientExport, base_url: &str) -> serde_json::Value {
    bundle::build(export, base_url, None)
}

/// One page of `Patient/$everything`: as [`patient_everything`], with a Bundle `link`
/// `next` to `next_url` when more pages follow (FHIR R4 paging, http.html#paging).
pub fn patient_everything_page(
    export: &PatientExport,
    base_url: &str,
    next_url: Option<&str>,
) -> serde_json::Value {
    bundle::build(export, base_url, next_url)
}
