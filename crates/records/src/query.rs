//! Reads of the committed records state, for the API. Each takes a read-only connection
//! (its own, never the writer's) and returns plain values the API turns into JSON.

use medchain_store::rusqlite::{
    self, params, params_from_iter, types::Value, Connection, OptionalExtension,
};
use medchain_types::Hash32;
use serde::Serialize;

use crate::outcome::Outcome;
use crate::policy::{role_column, GranteeKey, UserRow};
use crate::sealed::ContentOpener;
use crate::sealed::{open_prescription, StoredContent};
use crate::tx::{
    normalise_code, prescription_code_hash, prescription_code_proof, Medication, ProposedAction,
};

/// Largest page any list returns.
pub const MAX_PAGE: u32 = 200;

/// A record as the API shows it, content included.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct RecordView {
    pub record_id: String,
    pub patient_id: String,
    pub block_height: u64,
    pub block_hash: String,
    pub doctor_id: String,
    pub department: String,
    pub diagnosis: String,
    pub prescription: String,
    pub notes: String,
    pub medications: Vec<Medication>,
    pub amends: Option<String>,
    pub created_at_ms: u64,
    /// Whether the content is present (it may have been erased).
    pub content_available: bool,
    pub dispensed: Option<DispenseView>,
}

/// What a pharmacy sees of a prescription: never diagnosis or notes.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct PrescriptionView {
    pub record_id: String,
    pub patient_id: String,
    pub doctor_id: String,
    pub prescription: String,
    pub medications: Vec<Medication>,
    pub created_at_ms: u64,
    pub block_height: u64,
    pub dispensed: Option<DispenseView>,
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct DispenseView {
    pub pharmacy_id: String,
    pub at_ms: u64,
    pub block_height: u64,
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct ConsentView {
    pub grantee_kind: String,
    /// The user, or the department's name.
    pub grantee_id: String,
    /// The department's organisation (departments only).
    pub grantee_organisation: Option<u16>,
    pub granted_at_ms: u64,
    pub expires_at_ms: Option<u64>,
    pub revoked_at_ms: Option<u64>,
    pub block_height: u64,
    /// Granted, not revoked and not expired at the time of the query.
    pub active: bool,
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct AuditView {
    pub id: i64,
    pub patient_id: String,
    pub reader_id: String,
    pub reader_role: String,
    pub action: String,
    pub reason: String,
    pub at_ms: u64,
    pub block_height: u64,
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct BreakGlassView {
    pub id: i64,
    pub doctor_id: String,
    pub patient_id: String,
    pub department: String,
    pub reason: String,
    pub at_ms: u64,
    pub until_ms: u64,
    pub block_height: u64,
    /// The patient's department's review, once made (an event without one is an open
    /// alert for that department).
    pub reviewed_by: Option<String>,
    pub review_note: Option<String>,
    pub reviewed_at_ms: Option<u64>,
}

/// Record metadata a department sees of its activity (no clinical content).
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct ActivityView {
    pub record_id: String,
    pub patient_id: String,
    pub doctor_id: String,
    pub created_at_ms: u64,
    pub block_height: u64,
    pub has_prescription: bool,
    pub dispensed: bool,
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct UserView {
    pub user_id: String,
    pub role: String,
    pub organisation: u16,
    pub department: String,
    pub display_name: String,
    pub active: bool,
}

impl From<UserRow> for UserView {
    fn from(u: UserRow) -> Self {
        UserView {
            user_id: u.user_id,
            role: u.role.as_str().into(),
            organisation: u.organisation,
            department: u.department,
            display_name: u.display_name,
            active: u.active,
        }
    }
}

/// A page request: `offset` rows skipped, at most `limit` (capped at `MAX_PAGE`) returned.
#[derive(Clone, Copy, Debug)]
pub struct Page {
    pub offset: u32,
    pub limit: u32,
}

impl Default for Page {
    fn default() -> Self {
        Page {
            offset: 0,
            limit: 50,
        }
    }
}

impl Page {
    fn limit(self) -> u32 {
        self.limit.clamp(1, MAX_PAGE)
    }

    /// `LIMIT` and `OFFSET`: one row more than the page holds, so that the page knows
    /// whether rows follow it.
    fn bounds(self) -> (i64, i64) {
        (i64::from(self.limit()) + 1, i64::from(self.offset))
    }

    /// The page's rows out of the `bounds()` query's rows.
    fn cut<T>(self, rows: Vec<T>) -> Paged<T> {
        Paged::cut(rows, self.limit())
    }
}

/// One page of a list, and whether more rows follow it: no list is silently truncated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Paged<T> {
    pub items: Vec<T>,
    pub more: bool,
}

impl<T> Paged<T> {
    /// `rows` fetched with one row over `limit`: that extra row only says "more".
    fn cut(mut rows: Vec<T>, limit: u32) -> Self {
        let limit = limit as usize;
        let more = rows.len() > limit;
        rows.truncate(limit);
        Paged { items: rows, more }
    }
}

/// Where the next page of a patient's chain starts: after this record. Records run by
/// block height, then id, and a new record is always at a later height, so a chain read
/// page by page sees every record exactly once even while records are added.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordCursor {
    pub height: u64,
    pub record_id: String,
}

impl RecordCursor {
    /// Longest record id a cursor may carry (ids are far shorter).
    const RECORD_ID_MAX_CHARS: usize = 128;

    /// `"{height}.{record_id}"`: opaque to clients, which pass it back unchanged.
    pub fn encode(&self) -> String {
        format!("{}.{}", self.height, self.record_id)
    }

    /// The cursor `encode` wrote, or `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        let (height, record_id) = s.split_once('.')?;
        let valid_id = !record_id.is_empty()
            && record_id.len() <= Self::RECORD_ID_MAX_CHARS
            && record_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        let digits = !height.is_empty() && height.len() <= 19;
        match (valid_id && digits, height.parse::<u64>()) {
            (true, Ok(height)) => Some(RecordCursor {
                height,
                record_id: record_id.to_string(),
            }),
            _ => None,
        }
    }

    fn of(r: &RecordView) -> Self {
        RecordCursor {
            height: r.block_height,
            record_id: r.record_id.clone(),
        }
    }
}

/// Content bytes stored under their hash by the block at `height` (record content,
/// sealed keys), if present (content can be erased).
pub fn content_bytes(
    conn: &Connection,
    height: i64,
    hash: &[u8],
) -> rusqlite::Result<Option<Vec<u8>>> {
    conn.prepare_cached("SELECT bytes FROM content WHERE height = ?1 AND hash = ?2")?
        .query_row(params![height, hash], |r| r.get(0))
        .optional()
}

fn dispense_of(conn: &Connection, record_id: &str) -> rusqlite::Result<Option<DispenseView>> {
    conn.prepare_cached("SELECT pharmacy, at_ms, height FROM dispenses WHERE record_id = ?1")?
        .query_row(params![record_id], |r| {
            Ok(DispenseView {
                pharmacy_id: r.get(0)?,
                at_ms: r.get::<_, i64>(1)? as u64,
                block_height: r.get::<_, i64>(2)? as u64,
            })
        })
        .optional()
}

const RECORD_COLUMNS: &str = "r.record_id, r.patient, r.doctor, r.department, r.content_hash,
     r.amends, r.created_at_ms, r.height, b.hash";

fn record_from_row(
    conn: &Connection,
    opener: &dyn ContentOpener,
    r: &rusqlite::Row<'_>,
) -> rusqlite::Result<RecordView> {
    let record_id: String = r.get(0)?;
    let patient: String = r.get(1)?;
    let hash: Vec<u8> = r.get(4)?;
    let c = content_bytes(conn, r.get(7)?, &hash)?
        .and_then(|bytes| opener.open(conn, &patient, &record_id, &bytes));
    let available = c.is_some();
    let c = c.unwrap_or_default();
    let block_hash: Option<Vec<u8>> = r.get(8)?;
    Ok(RecordView {
        dispensed: dispense_of(conn, &record_id)?,
        record_id,
        patient_id: patient,
        doctor_id: r.get(2)?,
        department: r.get(3)?,
        diagnosis: c.diagnosis,
        prescription: c.prescription,
        notes: c.notes,
        medications: c.medications,
        amends: r.get(5)?,
        created_at_ms: r.get::<_, i64>(6)? as u64,
        block_height: r.get::<_, i64>(7)? as u64,
        block_hash: block_hash.map(hex::encode).unwrap_or_default(),
        content_available: available,
    })
}

/// A patient's records after `after` (from the first when `None`), oldest first, at most
/// `limit` (capped at `MAX_PAGE`), and the cursor of the next page when there is one.
pub fn records_of_patient_after(
    conn: &Connection,
    opener: &dyn ContentOpener,
    patient: &str,
    after: Option<&RecordCursor>,
    limit: u32,
) -> rusqlite::Result<(Vec<RecordView>, Option<RecordCursor>)> {
    let limit = limit.clamp(1, MAX_PAGE);
    let sql = format!(
        "SELECT {RECORD_COLUMNS} FROM records r LEFT JOIN blocks b ON b.height = r.height
         WHERE r.patient = ?1 AND (?2 IS NULL OR (r.height, r.record_id) > (?2, ?3))
         ORDER BY r.height, r.record_id LIMIT ?4"
    );
    let (height, id) = after.map_or((None, None), |c| {
        (Some(c.height as i64), Some(c.record_id.as_str()))
    });
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(params![patient, height, id, i64::from(limit) + 1])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(record_from_row(conn, opener, row)?);
    }
    let page = Paged::cut(out, limit);
    let next = if page.more {
        page.items.last().map(RecordCursor::of)
    } else {
        None
    };
    Ok((page.items, next))
}

/// One record.
pub fn record(
    conn: &Connection,
    opener: &dyn ContentOpener,
    record_id: &str,
) -> rusqlite::Result<Option<RecordView>> {
    let sql = format!(
        "SELECT {RECORD_COLUMNS} FROM records r LEFT JOIN blocks b ON b.height = r.height
         WHERE r.record_id = ?1"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(params![record_id])?;
    match rows.next()? {
        Some(row) => Ok(Some(record_from_row(conn, opener, row)?)),
        None => Ok(None),
    }
}

fn prescription_from(r: RecordView) -> Option<PrescriptionView> {
    let prescribes = !r.prescription.trim().is_empty() || !r.medications.is_empty();
    prescribes.then_some(PrescriptionView {
        record_id: r.record_id,
        patient_id: r.patient_id,
        doctor_id: r.doctor_id,
        prescription: r.prescription,
        medications: r.medications,
        created_at_ms: r.created_at_ms,
        block_height: r.block_height,
        dispensed: r.dispensed,
    })
}

/// A patient's prescriptions (pharmacy view).
/// The prescriptions among a patient's records after `after`, a page of up to `limit`
/// records at a time: the next cursor says whether records follow, prescriptions or not.
pub fn prescriptions_of_patient_after(
    conn: &Connection,
    opener: &dyn ContentOpener,
    patient: &str,
    after: Option<&RecordCursor>,
    limit: u32,
) -> rusqlite::Result<(Vec<PrescriptionView>, Option<RecordCursor>)> {
    let (records, next) = records_of_patient_after(conn, opener, patient, after, limit)?;
    Ok((
        records.into_iter().filter_map(prescription_from).collect(),
        next,
    ))
}

/// The length of prescription codes written before codes had proofs.
const LEGACY_CODE_SYMBOLS: usize = 10;

/// The prescription a code names, if any, and what the ledger knows the code by: its
/// proof (`tx::prescription_code_proof`), or for a prescription written before codes had
/// proofs, the code itself.
pub fn prescription_code_on_ledger(
    conn: &Connection,
    code: &str,
) -> rusqlite::Result<Option<(String, String)>> {
    // Codes of before (10 symbols) were published as themselves; a proof (32 symbols) is
    // never taken for one, so the proof a dispense revealed finds nothing.
    let legacy = Some(normalise_code(code)).filter(|c| c.len() == LEGACY_CODE_SYMBOLS);
    let proof = prescription_code_proof(code);
    for on_ledger in std::iter::once(proof).chain(legacy) {
        let hash = prescription_code_hash(&on_ledger);
        let id: Option<String> = conn
            .prepare_cached("SELECT record_id FROM records WHERE rx_code_hash = ?1")?
            .query_row(params![&hash.0[..]], |r| r.get(0))
            .optional()?;
        if let Some(id) = id {
            return Ok(Some((id, on_ledger)));
        }
    }
    Ok(None)
}

/// The prescription a code names, if any, with its medication lines opened by the code
/// (so a pharmacy of an organisation that holds no key of the patient reads them), or by
/// `opener` for content without a code's envelope (a chain without encryption keys).
pub fn prescription_by_code(
    conn: &Connection,
    opener: &dyn ContentOpener,
    code: &str,
) -> rusqlite::Result<Option<PrescriptionView>> {
    let Some((id, _)) = prescription_code_on_ledger(conn, code)? else {
        return Ok(None);
    };
    let Some(mut view) = record(conn, opener, &id)? else {
        return Ok(None);
    };
    let (height, hash): (i64, Vec<u8>) = conn
        .prepare_cached("SELECT height, content_hash FROM records WHERE record_id = ?1")?
        .query_row(params![&id], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let bytes = content_bytes(conn, height, &hash)?;
    if let Some(StoredContent::Sealed {
        prescription: Some(rx),
        ..
    }) = bytes.as_deref().map(StoredContent::parse)
    {
        if let Some(lines) = open_prescription(code, &view.patient_id, &id, rx) {
            view.prescription = lines.prescription;
            view.medications = lines.medications;
        }
    }
    Ok(prescription_from(view))
}

/// A patient's consents, newest first, with whether each is active at `now_ms`.
pub fn consents_of_patient(
    conn: &Connection,
    patient: &str,
    now_ms: u64,
) -> rusqlite::Result<Vec<ConsentView>> {
    let mut stmt = conn.prepare_cached(
        "SELECT grantee_kind, grantee_id, granted_at_ms, expires_at_ms, revoked_at_ms, height
         FROM consents WHERE patient = ?1 ORDER BY height DESC, grantee_id",
    )?;
    let rows = stmt.query_map(params![patient], |r| {
        let expires: Option<i64> = r.get(3)?;
        let revoked: Option<i64> = r.get(4)?;
        let (kind, id): (String, String) = (r.get(0)?, r.get(1)?);
        let (organisation, id) = match GranteeKey::split_department(&kind, &id) {
            Some((org, name)) => (Some(org), name),
            None => (None, id),
        };
        Ok(ConsentView {
            grantee_kind: kind,
            grantee_id: id,
            grantee_organisation: organisation,
            granted_at_ms: r.get::<_, i64>(2)? as u64,
            expires_at_ms: expires.map(|e| e as u64),
            revoked_at_ms: revoked.map(|e| e as u64),
            block_height: r.get::<_, i64>(5)? as u64,
            active: revoked.is_none() && expires.is_none_or(|e| e as u64 > now_ms),
        })
    })?;
    rows.collect()
}

fn audit_rows(
    conn: &Connection,
    opener: &dyn ContentOpener,
    filter: &str,
    order: &str,
    args: Vec<Value>,
    page: Page,
) -> rusqlite::Result<Paged<AuditView>> {
    let (sql, args) = paged(
        "SELECT a.id, a.patient, a.reader, a.reader_role, a.action, a.reason, a.at_ms, a.height
         FROM audit a",
        filter,
        order,
        args,
        page,
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params_from_iter(args), |r| {
        Ok(AuditView {
            id: r.get(0)?,
            patient_id: r.get(1)?,
            reader_id: r.get(2)?,
            reader_role: r.get(3)?,
            action: r.get(4)?,
            reason: r.get(5)?,
            at_ms: r.get::<_, i64>(6)? as u64,
            block_height: r.get::<_, i64>(7)? as u64,
        })
    })?;
    let mut items: Vec<AuditView> = rows.collect::<rusqlite::Result<_>>()?;
    for a in &mut items {
        a.reason = reason_text(conn, opener, &a.patient_id, std::mem::take(&mut a.reason))?;
    }
    Ok(page.cut(items))
}

/// What a reader is shown for a sealed reason or note it cannot open.
pub const REASON_SEALED_ELSEWHERE: &str =
    "(sealed: readable only at the organisations it was written for)";
/// What a reader is shown for a sealed reason whose patient was erased.
pub const REASON_ERASED: &str = "(erased)";

/// A reason or note as stored (in clear, or the name of a piece sealed to
/// organisations), as this node can show it.
pub fn reason_text(
    conn: &Connection,
    opener: &dyn ContentOpener,
    patient: &str,
    stored: String,
) -> rusqlite::Result<String> {
    let Some(hash) = crate::sealed::parse_reason_ref(&stored) else {
        return Ok(stored);
    };
    let height: Option<i64> = conn
        .prepare_cached("SELECT height FROM reason_pieces WHERE hash = ?1")?
        .query_row(params![&hash.0[..]], |r| r.get(0))
        .optional()?;
    let piece = match height {
        Some(h) => content_bytes(conn, h, &hash.0)?,
        None => None,
    };
    Ok(match piece {
        None => REASON_ERASED.to_string(),
        Some(piece) => opener
            .open_reason(patient, &piece)
            .unwrap_or_else(|| REASON_SEALED_ELSEWHERE.to_string()),
    })
}

/// `select WHERE filter ORDER BY order LIMIT .. OFFSET ..` with the filter's own
/// arguments first (?1..?k) and the page's after them.
fn paged(
    select: &str,
    filter: &str,
    order: &str,
    mut args: Vec<Value>,
    page: Page,
) -> (String, Vec<Value>) {
    let (limit, offset) = page.bounds();
    let k = args.len();
    args.push(Value::Integer(limit));
    args.push(Value::Integer(offset));
    let sql = format!(
        "{select} WHERE {filter} ORDER BY {order} LIMIT ?{} OFFSET ?{}",
        k + 1,
        k + 2
    );
    (sql, args)
}

/// A department of an organisation: departments are named per organisation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DepartmentRef<'a> {
    pub organisation: u16,
    pub department: &'a str,
}

impl DepartmentRef<'_> {
    fn args(&self) -> Vec<Value> {
        vec![
            Value::Integer(i64::from(self.organisation)),
            Value::Text(self.department.to_string()),
        ]
    }
}

/// Who read a patient's data, newest first.
pub fn audit_of_patient(
    conn: &Connection,
    opener: &dyn ContentOpener,
    patient: &str,
    page: Page,
) -> rusqlite::Result<Paged<AuditView>> {
    audit_rows(
        conn,
        opener,
        "a.patient = ?1",
        "a.id DESC",
        vec![Value::Text(patient.to_string())],
        page,
    )
}

/// Who read a patient's data, oldest first, after audit entry `after_id`: for an export
/// read page by page, where entries added meanwhile must land on a later page, not shift
/// the earlier ones.
pub fn audit_of_patient_after(
    conn: &Connection,
    opener: &dyn ContentOpener,
    patient: &str,
    after_id: Option<i64>,
    limit: u32,
) -> rusqlite::Result<Paged<AuditView>> {
    audit_rows(
        conn,
        opener,
        "a.patient = ?1 AND a.id > ?2",
        "a.id",
        vec![
            Value::Text(patient.to_string()),
            Value::Integer(after_id.unwrap_or(0)),
        ],
        Page { offset: 0, limit },
    )
}

/// Reads of the department's patients, newest first.
pub fn audit_of_department(
    conn: &Connection,
    opener: &dyn ContentOpener,
    dept: DepartmentRef<'_>,
    page: Page,
) -> rusqlite::Result<Paged<AuditView>> {
    audit_rows(
        conn,
        opener,
        "a.patient IN (SELECT user_id FROM users
                       WHERE organisation = ?1 AND department = ?2 AND role = 'patient')",
        "a.id DESC",
        dept.args(),
        page,
    )
}

fn break_glass_rows(
    conn: &Connection,
    opener: &dyn ContentOpener,
    filter: &str,
    args: Vec<Value>,
    page: Page,
) -> rusqlite::Result<Paged<BreakGlassView>> {
    let (sql, args) = paged(
        "SELECT id, doctor, patient, department, reason, at_ms, until_ms, height,
                reviewed_by, review_note, reviewed_at_ms
         FROM break_glass",
        filter,
        "id DESC",
        args,
        page,
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params_from_iter(args), |r| {
        Ok(BreakGlassView {
            id: r.get(0)?,
            doctor_id: r.get(1)?,
            patient_id: r.get(2)?,
            department: r.get(3)?,
            reason: r.get(4)?,
            at_ms: r.get::<_, i64>(5)? as u64,
            until_ms: r.get::<_, i64>(6)? as u64,
            block_height: r.get::<_, i64>(7)? as u64,
            reviewed_by: r.get(8)?,
            review_note: r.get(9)?,
            reviewed_at_ms: r.get::<_, Option<i64>>(10)?.map(|t| t as u64),
        })
    })?;
    let mut items: Vec<BreakGlassView> = rows.collect::<rusqlite::Result<_>>()?;
    for b in &mut items {
        b.reason = reason_text(conn, opener, &b.patient_id, std::mem::take(&mut b.reason))?;
        if let Some(note) = b.review_note.take() {
            b.review_note = Some(reason_text(conn, opener, &b.patient_id, note)?);
        }
    }
    Ok(page.cut(items))
}

pub fn break_glass_of_patient(
    conn: &Connection,
    opener: &dyn ContentOpener,
    patient: &str,
    page: Page,
) -> rusqlite::Result<Paged<BreakGlassView>> {
    break_glass_rows(
        conn,
        opener,
        "patient = ?1",
        vec![Value::Text(patient.to_string())],
        page,
    )
}

/// Break-glass events by the department's doctors or on its patients.
pub fn break_glass_of_department(
    conn: &Connection,
    opener: &dyn ContentOpener,
    dept: DepartmentRef<'_>,
    page: Page,
) -> rusqlite::Result<Paged<BreakGlassView>> {
    break_glass_rows(
        conn,
        opener,
        "(department = ?2 AND doctor IN (SELECT user_id FROM users WHERE organisation = ?1))
         OR patient IN (SELECT user_id FROM users WHERE organisation = ?1 AND department = ?2)",
        dept.args(),
        page,
    )
}

/// The department's open alerts: break-glass events on its own patients that it has
/// not reviewed yet, newest first.
pub fn break_glass_alerts(
    conn: &Connection,
    opener: &dyn ContentOpener,
    dept: DepartmentRef<'_>,
    page: Page,
) -> rusqlite::Result<Paged<BreakGlassView>> {
    break_glass_rows(
        conn,
        opener,
        "reviewed_by IS NULL
         AND patient IN (SELECT user_id FROM users WHERE organisation = ?1 AND department = ?2)",
        dept.args(),
        page,
    )
}

/// A proposal that waits for approvals.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct ProposalView {
    pub proposal_id: String,
    pub organisation: u16,
    pub kind: String,
    pub action: ProposedAction,
    pub proposer: String,
    pub created_ms: u64,
    pub expires_ms: u64,
    pub block_height: u64,
    /// Who signed so far (a user id, or `@operator`), in order.
    pub approvals: Vec<String>,
}

/// The open proposals of `organisation` (not executed, not expired at `now_ms`), oldest
/// first; at most `PROPOSALS_OPEN_MAX` exist, so the list is whole.
pub fn open_proposals(
    conn: &Connection,
    organisation: u16,
    now_ms: u64,
) -> rusqlite::Result<Vec<ProposalView>> {
    open_proposals_where(conn, Some(organisation), None, now_ms)
}

/// Open proposals of `kind` in every organisation (at most 64 open per organisation),
/// for those who sign across organisations (a patient's department co-signs another
/// organisation's doctor's break-glass).
pub fn open_proposals_of_kind(
    conn: &Connection,
    kind: &str,
    now_ms: u64,
) -> rusqlite::Result<Vec<ProposalView>> {
    open_proposals_where(conn, None, Some(kind), now_ms)
}

fn open_proposals_where(
    conn: &Connection,
    organisation: Option<u16>,
    kind: Option<&str>,
    now_ms: u64,
) -> rusqlite::Result<Vec<ProposalView>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, organisation, kind, action, proposer, created_ms, expires_ms, height
         FROM proposals
         WHERE (?1 IS NULL OR organisation = ?1) AND (?3 IS NULL OR kind = ?3)
           AND executed_height IS NULL AND expires_ms >= ?2
         ORDER BY height, id",
    )?;
    let rows = stmt
        .query_map(params![organisation, now_ms as i64, kind], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, u16>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, i64>(5)?,
                r.get::<_, i64>(6)?,
                r.get::<_, i64>(7)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut approvals = conn.prepare_cached(
        "SELECT approver FROM proposal_approvals WHERE proposal_id = ?1 ORDER BY height, approver",
    )?;
    let mut out = Vec::with_capacity(rows.len());
    for (id, org, kind, json, proposer, created, expires, height) in rows {
        // Written by the rules from a ProposedAction; unreadable only if the file was
        // edited, and then not shown rather than shown wrong.
        let Ok(action) = serde_json::from_str::<ProposedAction>(&json) else {
            continue;
        };
        let signed = approvals
            .query_map(params![id], |r| r.get::<_, String>(0))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        out.push(ProposalView {
            proposal_id: id,
            organisation: org,
            kind,
            action,
            proposer,
            created_ms: created as u64,
            expires_ms: expires as u64,
            block_height: height as u64,
            approvals: signed,
        });
    }
    Ok(out)
}

/// Whether proposal `id` has executed (its block height), if it exists.
pub fn proposal_executed(conn: &Connection, id: &str) -> rusqlite::Result<Option<Option<u64>>> {
    conn.prepare_cached("SELECT executed_height FROM proposals WHERE id = ?1")?
        .query_row(params![id], |r| r.get::<_, Option<i64>>(0))
        .optional()
        .map(|o| o.map(|h| h.map(|h| h as u64)))
}

/// Record metadata of a department, newest first.
pub fn department_activity(
    conn: &Connection,
    dept: DepartmentRef<'_>,
    page: Page,
) -> rusqlite::Result<Paged<ActivityView>> {
    let (limit, offset) = page.bounds();
    let mut stmt = conn.prepare_cached(
        "SELECT r.record_id, r.patient, r.doctor, r.created_at_ms, r.height,
                r.rx_code_hash IS NOT NULL, d.record_id IS NOT NULL
         FROM records r LEFT JOIN dispenses d ON d.record_id = r.record_id
         WHERE r.department = ?2 AND r.doctor IN (SELECT user_id FROM users WHERE organisation = ?1)
         ORDER BY r.height DESC, r.record_id LIMIT ?3 OFFSET ?4",
    )?;
    let rows = stmt.query_map(
        params![dept.organisation, dept.department, limit, offset],
        |r| {
            Ok(ActivityView {
                record_id: r.get(0)?,
                patient_id: r.get(1)?,
                doctor_id: r.get(2)?,
                created_at_ms: r.get::<_, i64>(3)? as u64,
                block_height: r.get::<_, i64>(4)? as u64,
                has_prescription: r.get(5)?,
                dispensed: r.get(6)?,
            })
        },
    )?;
    Ok(page.cut(rows.collect::<rusqlite::Result<_>>()?))
}

/// Users, optionally of one department (of one organisation) and one role, by id.
pub fn users(
    conn: &Connection,
    department: Option<DepartmentRef<'_>>,
    role: Option<&str>,
    search: Option<&str>,
    page: Page,
) -> rusqlite::Result<Paged<UserView>> {
    let (limit, offset) = page.bounds();
    let pattern = search.map(|s| {
        let escaped = s
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        format!("%{escaped}%")
    });
    let mut stmt = conn.prepare_cached(
        "SELECT user_id, role, organisation, department, display_name, active FROM users
         WHERE (?6 IS NULL OR (organisation = ?6 AND department = ?1)) AND (?2 IS NULL OR role = ?2)
           AND (?3 IS NULL OR user_id LIKE ?3 ESCAPE '\\' OR display_name LIKE ?3 ESCAPE '\\')
         ORDER BY user_id LIMIT ?4 OFFSET ?5",
    )?;
    let (org, dept) =
        department.map_or((None, None), |d| (Some(d.organisation), Some(d.department)));
    let rows = stmt.query_map(params![dept, role, pattern, limit, offset, org], |r| {
        Ok(UserView {
            user_id: r.get(0)?,
            role: role_column(r, 1)?.as_str().to_string(),
            organisation: r.get(2)?,
            department: r.get(3)?,
            display_name: r.get(4)?,
            active: r.get::<_, i64>(5)? != 0,
        })
    })?;
    Ok(page.cut(rows.collect::<rusqlite::Result<_>>()?))
}

/// The outcome the ledger recorded for transaction `index` of a request: its own row, or
/// the request's single row `idx = -n` when all its n transactions succeeded (and
/// `index < n`).
pub fn outcome(
    conn: &Connection,
    client: u16,
    request_id: u64,
    index: u32,
) -> rusqlite::Result<Option<(Outcome, String)>> {
    conn.prepare_cached(
        "SELECT outcome, message FROM outcomes
         WHERE client = ?1 AND request_id = ?2 AND (idx = ?3 OR idx < -?3)
         ORDER BY idx DESC LIMIT 1",
    )?
    .query_row(params![client, request_id as i64, index], |r| {
        let stored: String = r.get(0)?;
        let outcome = Outcome::parse(&stored).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                0,
                rusqlite::types::Type::Text,
                format!("unknown outcome {stored:?}").into(),
            )
        })?;
        Ok((outcome, r.get(1)?))
    })
    .optional()
}

/// The highest request id of `client` that the ledger has executed (a gateway continues
/// above it after a restart).
pub fn last_request_id(conn: &Connection, client: u16) -> rusqlite::Result<Option<u64>> {
    let id: Option<i64> = conn
        .prepare_cached("SELECT MAX(request_id) FROM outcomes WHERE client = ?1")?
        .query_row(params![client], |r| r.get(0))?;
    Ok(id.map(|i| i as u64))
}

/// Number of records in a block (for the explorer and validate_block).
pub fn records_in_block(conn: &Connection, height: u64) -> rusqlite::Result<u64> {
    conn.prepare_cached("SELECT COUNT(*) FROM records WHERE height = ?1")?
        .query_row(params![height as i64], |r| r.get::<_, i64>(0))
        .map(|n| n as u64)
}

/// The hash of a block, if stored.
pub fn block_hash(conn: &Connection, height: u64) -> rusqlite::Result<Option<Hash32>> {
    let h: Option<Vec<u8>> = conn
        .prepare_cached("SELECT hash FROM blocks WHERE height = ?1")?
        .query_row(params![height as i64], |r| r.get(0))
        .optional()?;
    Ok(h.and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok().map(Hash32)))
}

/// Where organisation `organisation`'s copy of `patient`'s data key of `epoch` is: the
/// height and hash of its sealed bytes in the content table.
pub fn patient_key(
    conn: &Connection,
    patient: &str,
    epoch: u32,
    organisation: u16,
) -> rusqlite::Result<Option<SealedCopy>> {
    conn.prepare_cached(
        "SELECT height, hash, recipient_key FROM patient_keys
         WHERE patient = ?1 AND epoch = ?2 AND organisation = ?3",
    )?
    .query_row(params![patient, epoch, organisation], |r| {
        Ok(SealedCopy {
            height: r.get(0)?,
            hash: r.get(1)?,
            recipient_key: r.get(2)?,
        })
    })
    .optional()
}

/// One organisation's copy of a patient's data key: where its sealed bytes are, and the
/// organisation key it is sealed to (`None`: the organisation's genesis key).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealedCopy {
    pub height: i64,
    pub hash: Vec<u8>,
    pub recipient_key: Option<Vec<u8>>,
}

/// The organisations holding `patient`'s data key of `epoch`.
pub fn key_holders(conn: &Connection, patient: &str, epoch: u32) -> rusqlite::Result<Vec<u16>> {
    let mut stmt = conn.prepare_cached(
        "SELECT organisation FROM patient_keys WHERE patient = ?1 AND epoch = ?2",
    )?;
    let rows = stmt.query_map(params![patient, epoch], |r| r.get::<_, u16>(0))?;
    rows.collect()
}

/// The patient's current key epoch (the newest), if the patient has a key yet.
pub fn current_key_epoch(conn: &Connection, patient: &str) -> rusqlite::Result<Option<u32>> {
    conn.prepare_cached("SELECT MAX(epoch) FROM patient_keys WHERE patient = ?1")?
        .query_row(params![patient], |r| r.get::<_, Option<u32>>(0))
}

/// What the home organisation's node still has to do with its patients' keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyWork {
    /// The patient has no data key yet: make epoch 0.
    FirstKey { patient: String },
    /// An organisation holding the current epoch is no longer entitled: start epoch
    /// `epoch`, sealed only to those still entitled.
    NewEpoch { patient: String, epoch: u32 },
    /// An entitled organisation lacks epoch `epoch`, or holds it sealed to a key it has
    /// since replaced: seal it to that organisation's current key.
    Share {
        patient: String,
        epoch: u32,
        organisation: u16,
    },
}

/// A `(patient, epoch, organisation)` row as the copy of a key to seal.
fn share_of(r: &rusqlite::Row<'_>) -> rusqlite::Result<KeyWork> {
    Ok(KeyWork::Share {
        patient: r.get(0)?,
        epoch: r.get(1)?,
        organisation: r.get(2)?,
    })
}

/// Organisation `home`'s key work at `now_ms`, at most `limit` items of each kind.
/// Entitlement is `policy::entitled_organisations`'s, over all patients at once.
pub fn key_work(
    conn: &Connection,
    home: u16,
    now_ms: u64,
    limit: u32,
) -> rusqlite::Result<Vec<KeyWork>> {
    const ENTITLED: &str = "entitled(patient, org) AS (
         SELECT c.patient, u.organisation FROM consents c JOIN users u ON u.user_id = c.grantee_id
          WHERE c.grantee_kind IN ('doctor', 'pharmacy')
            AND c.revoked_at_ms IS NULL AND (c.expires_at_ms IS NULL OR c.expires_at_ms > ?2)
         UNION
         SELECT c.patient, CAST(substr(c.grantee_id, 1, instr(c.grantee_id, ':') - 1) AS INTEGER)
           FROM consents c
          WHERE c.grantee_kind = 'department'
            AND c.revoked_at_ms IS NULL AND (c.expires_at_ms IS NULL OR c.expires_at_ms > ?2)
         UNION
         SELECT b.patient, u.organisation FROM break_glass b JOIN users u ON u.user_id = b.doctor
          WHERE b.until_ms > ?2)";
    let mut out = Vec::new();
    let mut first = conn.prepare_cached(
        "SELECT user_id FROM users u
          WHERE role = 'patient' AND organisation = ?1 AND active = 1
            AND NOT EXISTS (SELECT 1 FROM patient_keys k WHERE k.patient = u.user_id)
          ORDER BY user_id LIMIT ?2",
    )?;
    for p in first.query_map(params![home, limit], |r| r.get::<_, String>(0))? {
        out.push(KeyWork::FirstKey { patient: p? });
    }
    let sql = format!(
        "WITH {ENTITLED},
         current(patient, epoch) AS (
             SELECT k.patient, MAX(k.epoch) FROM patient_keys k
               JOIN users p ON p.user_id = k.patient AND p.organisation = ?1 AND p.active = 1
              GROUP BY k.patient)
         SELECT DISTINCT c.patient, c.epoch + 1 FROM current c
           JOIN patient_keys k ON k.patient = c.patient AND k.epoch = c.epoch
          WHERE k.organisation != ?1
            AND NOT EXISTS (SELECT 1 FROM entitled e
                             WHERE e.patient = c.patient AND e.org = k.organisation)
          ORDER BY c.patient LIMIT ?3"
    );
    let mut rotate = conn.prepare_cached(&sql)?;
    let rows = rotate.query_map(params![home, now_ms as i64, limit], |r| {
        Ok(KeyWork::NewEpoch {
            patient: r.get(0)?,
            epoch: r.get(1)?,
        })
    })?;
    let mut rotating = std::collections::HashSet::new();
    for w in rows {
        let w = w?;
        if let KeyWork::NewEpoch { patient, .. } = &w {
            rotating.insert(patient.clone());
        }
        out.push(w);
    }
    let sql = format!(
        "WITH {ENTITLED},
         epochs(patient, epoch) AS (
             SELECT DISTINCT k.patient, k.epoch FROM patient_keys k
               JOIN users p ON p.user_id = k.patient AND p.organisation = ?1 AND p.active = 1)
         SELECT DISTINCT e.patient, x.epoch, e.org FROM entitled e
           JOIN epochs x ON x.patient = e.patient
          WHERE e.org != ?1
            AND NOT EXISTS (SELECT 1 FROM patient_keys k
                             WHERE k.patient = e.patient AND k.epoch = x.epoch
                               AND k.organisation = e.org)
          ORDER BY e.patient, x.epoch, e.org LIMIT ?3"
    );
    // Copies sealed to a key their organisation has since replaced: seal them again.
    let stale = format!(
        "WITH {ENTITLED}
         SELECT k.patient, k.epoch, k.organisation FROM patient_keys k
           JOIN users p ON p.user_id = k.patient AND p.organisation = ?1 AND p.active = 1
           JOIN organisation_keys o ON o.organisation = k.organisation
          WHERE (k.recipient_key IS NULL OR k.recipient_key != o.public_key)
            AND (k.organisation = ?1 OR EXISTS (SELECT 1 FROM entitled e
                                                 WHERE e.patient = k.patient
                                                   AND e.org = k.organisation))
          ORDER BY k.patient, k.epoch, k.organisation LIMIT ?3"
    );
    let mut reseal = conn.prepare_cached(&stale)?;
    let rows = reseal.query_map(params![home, now_ms as i64, limit], share_of)?;
    for w in rows {
        out.push(w?);
    }
    let mut share = conn.prepare_cached(&sql)?;
    let rows = share.query_map(params![home, now_ms as i64, limit], share_of)?;
    for w in rows {
        let w = w?;
        // A patient starting a new epoch shares it (and the old ones) once it exists.
        if let KeyWork::Share { patient, .. } = &w {
            if rotating.contains(patient) {
                continue;
            }
        }
        out.push(w);
    }
    Ok(out)
}

/// The block at which `patient` was erased, if they were.
pub fn erased_at(conn: &Connection, patient: &str) -> rusqlite::Result<Option<u64>> {
    conn.prepare_cached("SELECT height FROM erasures WHERE patient = ?1")?
        .query_row(params![patient], |r| r.get::<_, i64>(0))
        .optional()
        .map(|h| h.map(|h| h as u64))
}

/// How many patients were erased (a node drops its cached keys when this grows).
pub fn erasure_count(conn: &Connection) -> rusqlite::Result<u64> {
    conn.prepare_cached("SELECT COUNT(*) FROM erasures")?
        .query_row([], |r| r.get::<_, i64>(0))
        .map(|n| n as u64)
}
