//! `GET /fhir/Patient/{id}/$everything`: the patient's ledger data as a FHIR R4 Bundle,
//! under the same access rules as `get_chain`, and audited like it.

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::IntoResponse;
use medchain_fhir as fhir;
use medchain_records::limits::USER_ID_MAX_CHARS;
use medchain_records::query::{self, Page, RecordView};
use medchain_store::rusqlite::Connection;

use crate::audit::audited_read;
use crate::error::{check_text, ApiError, ApiResult, ErrorBody};
use crate::extract::RecordReader;
use crate::state::AppState;

fn block_hex(conn: &Connection, height: u64) -> ApiResult<String> {
    Ok(query::block_hash(conn, height)?
        .map(|h| h.to_hex())
        .unwrap_or_default())
}

fn person(conn: &Connection, id: &str) -> ApiResult<Option<fhir::Person>> {
    Ok(medchain_records::user(conn, id)?.map(|u| fhir::Person {
        organisation: format!("org-{}", u.organisation),
        department: Some(u.department),
        display_name: u.display_name,
        active: u.active,
        user_id: u.user_id,
    }))
}

fn export(conn: &Connection, s: &AppState, pid: &str, now: u64) -> ApiResult<fhir::PatientExport> {
    let all = Page {
        offset: 0,
        limit: query::MAX_PAGE,
    };
    let patient = person(conn, pid)?.ok_or_else(|| ApiError::not_found("no such patient"))?;
    let records = query::records_of_patient(conn, pid, all)?;
    let practitioners = practitioners(conn, &records)?;
    let organizations = organizations(s);
    let (records, dispenses) = records_and_dispenses(conn, records)?;
    let consents = consents(conn, pid, now)?;
    let audits = audits(conn, pid, all)?;
    Ok(fhir::PatientExport {
        patient,
        practitioners,
        organizations,
        records,
        dispenses,
        consents,
        audits,
        generated_at_ms: now,
    })
}

/// The doctors who wrote the records, once each; a doctor no longer registered is left
/// out (the records still name them by identifier).
fn practitioners(conn: &Connection, records: &[RecordView]) -> ApiResult<Vec<fhir::Person>> {
    let mut practitioner_ids: Vec<String> = records.iter().map(|r| r.doctor_id.clone()).collect();
    practitioner_ids.sort();
    practitioner_ids.dedup();
    let mut practitioners = Vec::new();
    for id in &practitioner_ids {
        if let Some(p) = person(conn, id)? {
            practitioners.push(p);
        }
    }
    Ok(practitioners)
}

/// One organisation per replica, named as in the genesis.
fn organizations(s: &AppState) -> Vec<fhir::Org> {
    s.inner
        .genesis
        .replicas
        .iter()
        .map(|r| fhir::Org {
            id: format!("org-{}", r.id.0),
            name: r.organisation.clone(),
        })
        .collect()
}

/// The records, and the dispenses the ledger keeps inside them, as the export's two
/// separate lists.
fn records_and_dispenses(
    conn: &Connection,
    records: Vec<RecordView>,
) -> ApiResult<(Vec<fhir::Record>, Vec<fhir::Dispense>)> {
    let mut dispenses = Vec::new();
    let mut out_records = Vec::new();
    for r in records {
        if let Some(d) = &r.dispensed {
            dispenses.push(fhir::Dispense {
                record_id: r.record_id.clone(),
                pharmacy_id: d.pharmacy_id.clone(),
                at_ms: d.at_ms,
                block_height: d.block_height,
                block_hash: block_hex(conn, d.block_height)?,
            });
        }
        out_records.push(record(r));
    }
    Ok((out_records, dispenses))
}

fn record(r: RecordView) -> fhir::Record {
    fhir::Record {
        medications: r
            .medications
            .iter()
            .map(|m| fhir::Medication {
                name: m.name.clone(),
                dose: m.dose.clone(),
                route: m.route.clone(),
                frequency: m.frequency.clone(),
                duration: m.duration.clone(),
                quantity: m.quantity.clone(),
            })
            .collect(),
        record_id: r.record_id,
        doctor_id: r.doctor_id,
        department: r.department,
        diagnosis: r.diagnosis,
        prescription: r.prescription,
        notes: r.notes,
        created_at_ms: r.created_at_ms,
        block_height: r.block_height,
        block_hash: r.block_hash,
        amends: r.amends,
    }
}

fn consents(conn: &Connection, pid: &str, now: u64) -> ApiResult<Vec<fhir::ConsentEntry>> {
    let mut consents = Vec::new();
    for c in query::consents_of_patient(conn, pid, now)? {
        consents.push(fhir::ConsentEntry {
            block_hash: block_hex(conn, c.block_height)?,
            grantee_kind: c.grantee_kind,
            grantee_id: c.grantee_id,
            granted_at_ms: c.granted_at_ms,
            expires_at_ms: c.expires_at_ms,
            revoked_at_ms: c.revoked_at_ms,
            block_height: c.block_height,
        });
    }
    Ok(consents)
}

fn audits(conn: &Connection, pid: &str, all: Page) -> ApiResult<Vec<fhir::AuditEntry>> {
    let mut audits = Vec::new();
    for a in query::audit_of_patient(conn, pid, all)? {
        audits.push(fhir::AuditEntry {
            block_hash: block_hex(conn, a.block_height)?,
            reader_id: a.reader_id,
            reader_role: a.reader_role,
            action: a.action,
            reason: a.reason,
            at_ms: a.at_ms,
            block_height: a.block_height,
        });
    }
    Ok(audits)
}

/// The patient's data as a FHIR R4 (4.0.1) Bundle.
#[utoipa::path(get, path = "/fhir/Patient/{patient_id}/$everything",
    params(("patient_id" = String, Path)),
    responses((status = 200, description = "FHIR R4 Bundle (searchset)", content_type = "application/fhir+json"),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])), tag = "fhir")]
pub async fn everything(
    State(s): State<AppState>,
    RecordReader(who): RecordReader,
    Path(pid): Path<String>,
) -> ApiResult<impl IntoResponse> {
    check_text("patient_id", &pid, USER_ID_MAX_CHARS, true)?;
    audited_read(&s, &who, &pid, "fhir_export").await?;
    let now = s.now_ms();
    let s2 = s.clone();
    let base = s
        .inner
        .genesis
        .replicas
        .get(usize::from(s.inner.replica))
        .map_or_else(
            || "http://localhost/fhir".to_string(),
            |r| format!("http://{}/fhir", r.http_addr),
        );
    let bundle = s
        .read(move |c| {
            let e = export(c, &s2, &pid, now)?;
            Ok(fhir::patient_everything(&e, &base))
        })
        .await?;
    Ok((
        [(header::CONTENT_TYPE, "application/fhir+json")],
        serde_json::to_vec(&bundle).map_err(ApiError::internal)?,
    ))
}
