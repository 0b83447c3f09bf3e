//! `GET /fhir/Patient/{id}/$everything`: the patient's ledger data as a FHIR R4 Bundle,
//! under the same access rules as `get_chain`, and audited like it.

use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::IntoResponse;
use medchain_fhir as fhir;
use medchain_records::limits::USER_ID_MAX_CHARS;
use medchain_records::query::{self, AuditView, RecordCursor, RecordView};
use medchain_store::rusqlite::Connection;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::audit::audited_read;
use crate::error::{check_text, ApiError, ApiResult, ErrorBody};
use crate::extract::RecordReader;
use crate::state::AppState;

fn block_hex(conn: &Connection, height: u64) -> ApiResult<String> {
    Ok(query::block_hash(conn, height)?
        .map(|h| h.to_hex())
        .unwrap_or_default())
}

fn person(conn: &Connection, s: &AppState, id: &str) -> ApiResult<Option<fhir::Person>> {
    Ok(medchain_records::user(conn, id)?.map(|u| fhir::Person {
        organisation: format!("org-{}", u.organisation),
        department: Some(u.department),
        display_name: s.inner.keys.display_name(conn, &u.user_id, &u.display_name),
        active: u.active,
        user_id: u.user_id,
    }))
}

/// Where a page of `$everything` starts. Pages hold the patient's records first (by
/// block height, then id), then the audit trail (oldest first); both only grow at their
/// end, so a client that follows `next` sees every entry once.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ExportCursor {
    /// The first page: the patient, consents, and the first records.
    Start,
    /// Records after this one (the audit trail from its start once they run out).
    RecordsAfter(RecordCursor),
    /// Records are done; audit entries after this id.
    AuditAfter(i64),
}

impl ExportCursor {
    fn encode(&self) -> Option<String> {
        match self {
            ExportCursor::Start => None,
            ExportCursor::RecordsAfter(c) => Some(format!("r{}", c.encode())),
            ExportCursor::AuditAfter(id) => Some(format!("a{id}")),
        }
    }

    fn parse(s: Option<&str>) -> ApiResult<Self> {
        let bad = || {
            ApiError::invalid("_cursor: follow the Bundle's next link unchanged")
                .with_field("_cursor")
        };
        let Some(s) = s else {
            return Ok(ExportCursor::Start);
        };
        if let Some(r) = s.strip_prefix('r') {
            return RecordCursor::parse(r)
                .map(ExportCursor::RecordsAfter)
                .ok_or_else(bad);
        }
        match s.strip_prefix('a').map(str::parse::<i64>) {
            Some(Ok(id)) if id >= 0 => Ok(ExportCursor::AuditAfter(id)),
            _ => Err(bad()),
        }
    }
}

/// Entries of each kind on one page of the export.
const EXPORT_PAGE_ENTRIES: u32 = query::MAX_PAGE;

/// One page of the patient's export, and where the next page starts (`None`: last page).
fn export(
    conn: &Connection,
    s: &AppState,
    pid: &str,
    now: u64,
    at: &ExportCursor,
) -> ApiResult<(fhir::PatientExport, Option<ExportCursor>)> {
    let patient = person(conn, s, pid)?.ok_or_else(|| ApiError::not_found("no such patient"))?;
    let (records, audit_after, next) = match at {
        ExportCursor::AuditAfter(id) => (Vec::new(), Some(Some(*id)), None),
        ExportCursor::Start | ExportCursor::RecordsAfter(_) => {
            let after = match at {
                ExportCursor::RecordsAfter(c) => Some(c),
                _ => None,
            };
            let (records, next) = query::records_of_patient_after(
                conn,
                s.inner.keys.as_ref(),
                pid,
                after,
                EXPORT_PAGE_ENTRIES,
            )?;
            match next {
                Some(n) => (records, None, Some(ExportCursor::RecordsAfter(n))),
                None => (records, Some(None), None),
            }
        }
    };
    let (audits, next) = match audit_after {
        None => (Vec::new(), next),
        Some(after) => {
            let page = query::audit_of_patient_after(
                conn,
                s.inner.keys.as_ref(),
                pid,
                after,
                EXPORT_PAGE_ENTRIES,
            )?;
            let next = if page.more {
                page.items.last().map(|a| ExportCursor::AuditAfter(a.id))
            } else {
                None
            };
            (audits(conn, page.items)?, next)
        }
    };
    let practitioners = practitioners(conn, s, &records)?;
    let organizations = organizations(s);
    let (records, dispenses) = records_and_dispenses(conn, records)?;
    let consents = if *at == ExportCursor::Start {
        consents(conn, pid, now)?
    } else {
        Vec::new()
    };
    Ok((
        fhir::PatientExport {
            patient,
            practitioners,
            organizations,
            records,
            dispenses,
            consents,
            audits,
            generated_at_ms: now,
        },
        next,
    ))
}

/// The doctors who wrote the records, once each; a doctor no longer registered is left
/// out (the records still name them by identifier).
fn practitioners(
    conn: &Connection,
    s: &AppState,
    records: &[RecordView],
) -> ApiResult<Vec<fhir::Person>> {
    let mut practitioner_ids: Vec<String> = records.iter().map(|r| r.doctor_id.clone()).collect();
    practitioner_ids.sort();
    practitioner_ids.dedup();
    let mut practitioners = Vec::new();
    for id in &practitioner_ids {
        if let Some(p) = person(conn, s, id)? {
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

fn audits(conn: &Connection, entries: Vec<AuditView>) -> ApiResult<Vec<fhir::AuditEntry>> {
    let mut audits = Vec::new();
    for a in entries {
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

#[derive(Debug, Deserialize, IntoParams)]
pub struct EverythingParams {
    /// From the previous page's Bundle `link` `next`.
    #[serde(rename = "_cursor")]
    pub cursor: Option<String>,
}

/// The patient's data as a FHIR R4 (4.0.1) Bundle, one page at a time: each page's
/// `link` `next` (absent on the last) is the next page.
#[utoipa::path(get, path = "/fhir/Patient/{patient_id}/$everything",
    params(("patient_id" = String, Path), EverythingParams),
    responses((status = 200, description = "FHIR R4 Bundle (searchset)", content_type = "application/fhir+json"),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])), tag = "fhir")]
pub async fn everything(
    State(s): State<AppState>,
    RecordReader(who): RecordReader,
    Path(pid): Path<String>,
    Query(q): Query<EverythingParams>,
) -> ApiResult<impl IntoResponse> {
    check_text("patient_id", &pid, USER_ID_MAX_CHARS, true)?;
    let at = ExportCursor::parse(q.cursor.as_deref())?;
    audited_read(&s, &who, &pid, "fhir_export").await?;
    crate::routes::records::wait_for_keys(&s, &pid).await?;
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
            let (e, next) = export(c, &s2, &pid, now, &at)?;
            // A cursor holds only digits, letters, '.', '-' and '_': safe in a URL as is.
            let next_url = next
                .and_then(|n| n.encode())
                .map(|n| format!("{base}/Patient/{pid}/$everything?_cursor={n}"));
            Ok(fhir::patient_everything_page(
                &e,
                &base,
                next_url.as_deref(),
            ))
        })
        .await?;
    Ok((
        [(header::CONTENT_TYPE, "application/fhir+json")],
        serde_json::to_vec(&bundle).map_err(ApiError::internal)?,
    ))
}
