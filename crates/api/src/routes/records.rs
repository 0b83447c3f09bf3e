//! The original design's record endpoints (`add_record`, `validate_block`, `get_chain`)
//! and the doctor's tools around them: finding a patient, checking access, break-glass.

use std::time::Instant;

use axum::extract::{OriginalUri, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use medchain_records::limits::{
    BREAK_GLASS_MAX_MS, BREAK_GLASS_REASON_MIN_CHARS, CODE_MAX_CHARS, DIAGNOSIS_MAX_CHARS,
    MEDICATION_FIELD_MAX_CHARS, MEDICATION_LINES_MAX, MEDICATION_NAME_MAX_CHARS, NOTES_MAX_CHARS,
    PRESCRIPTION_MAX_CHARS, REASON_MAX_CHARS, RECORD_ID_MAX_BYTES, SEARCH_MAX_CHARS,
    USER_ID_MAX_CHARS,
};
use medchain_records::query::{self, RecordView};
use medchain_records::sealed::seal_record;
use medchain_records::tx::{prescription_code_hash, prescription_code_proof};
use medchain_records::{Actor, Envelope, Medication, RecordContent, Transaction};
use medchain_seal::prescription::CODE_SYMBOLS;

use crate::key_steward::{KEY_POLL, KEY_WAIT};
use crate::patient_keys::{NoKey, WritingKey};
use medchain_records::query::KeyWork;
use medchain_types::Hash32;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::access::patient;
use crate::audit::audited_read;
use crate::error::{check_text, ApiError, ApiJson, ApiResult, ErrorBody};
use crate::extract::{Doctor, DoctorOrDepartment, RecordReader};
use crate::paging::{next_of, record_cursor, NextLink};
use crate::routes::session::ClientAddr;
use crate::routes::{new_id, random_code, PageParams};
use crate::state::{AppState, Committed};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddRecordRequest {
    pub patient_id: String,
    pub diagnosis: String,
    #[serde(default)]
    pub prescription: String,
    #[serde(default)]
    pub notes: String,
    /// Structured medication lines (optional).
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    pub medications: Vec<Medication>,
    /// A one-time consent code from the patient (optional).
    #[serde(default)]
    pub consent_code: Option<String>,
    /// The record this one corrects (optional).
    #[serde(default)]
    pub amends: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AddRecordResponse {
    pub record_id: String,
    pub block_height: u64,
    pub block_hash: String,
    /// Give this to the patient: a pharmacy dispenses the prescription against it.
    pub prescription_code: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PendingResponse {
    pub record_id: String,
    pub status: &'static str,
    pub prescription_code: Option<String>,
}

fn check_medication(i: usize, m: &Medication) -> ApiResult<()> {
    let f = |name: &str| format!("medications[{i}].{name}");
    check_text(&f("name"), &m.name, MEDICATION_NAME_MAX_CHARS, true)?;
    for (name, v) in [
        ("dose", &m.dose),
        ("route", &m.route),
        ("frequency", &m.frequency),
        ("duration", &m.duration),
        ("quantity", &m.quantity),
    ] {
        check_text(&f(name), v, MEDICATION_FIELD_MAX_CHARS, false)?;
    }
    Ok(())
}

/// Every field of an add-record request within its limit (`medchain_records::limits`).
fn check_add_record(req: &AddRecordRequest) -> ApiResult<()> {
    check_text("patient_id", &req.patient_id, USER_ID_MAX_CHARS, true)?;
    check_text("diagnosis", &req.diagnosis, DIAGNOSIS_MAX_CHARS, true)?;
    check_text(
        "prescription",
        &req.prescription,
        PRESCRIPTION_MAX_CHARS,
        false,
    )?;
    check_text("notes", &req.notes, NOTES_MAX_CHARS, false)?;
    if req.medications.len() > MEDICATION_LINES_MAX {
        return Err(ApiError::invalid(format!(
            "medications: at most {MEDICATION_LINES_MAX} lines"
        ))
        .with_field("medications"));
    }
    for (i, m) in req.medications.iter().enumerate() {
        check_medication(i, m)?;
    }
    if let Some(c) = &req.consent_code {
        check_text("consent_code", c, CODE_MAX_CHARS, true)?;
    }
    if let Some(a) = &req.amends {
        check_text("amends", a, RECORD_ID_MAX_BYTES, true)?;
    }
    Ok(())
}

/// Add a medical record for a patient who consented (or with their one-time code).
#[utoipa::path(post, path = "/api/add_record", request_body = AddRecordRequest,
    responses((status = 200, body = AddRecordResponse), (status = 202, body = PendingResponse),
              (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])), tag = "records")]
pub async fn add_record(
    State(s): State<AppState>,
    Doctor(doc): Doctor,
    ApiJson(req): ApiJson<AddRecordRequest>,
) -> ApiResult<Response> {
    check_add_record(&req)?;
    // Fast, friendly refusal before consensus; the ledger checks the same rules again.
    let now = s.now_ms();
    let pid = &req.patient_id;
    // (An unknown patient is refused as one without consent: no existence oracle.)
    s.lookup(|c| {
        medchain_records::may_add_record(c, &doc.user, pid, req.consent_code.as_deref(), now)?
            .map_err(ApiError::from)
    })?;

    let content = RecordContent {
        department: doc.user.department.clone(),
        diagnosis: req.diagnosis,
        prescription: req.prescription,
        notes: req.notes,
        medications: req.medications,
    };
    // The code goes to the doctor (and so the patient) only: the ledger sees the hash of
    // its proof, and the medication lines sealed under its key.
    let prescription_code = content.prescribes().then(|| random_code(CODE_SYMBOLS));
    let record_id = new_id("rec");
    let bytes = sealed_content(
        &s,
        &req.patient_id,
        &record_id,
        &content,
        prescription_code.as_deref(),
    )
    .await?;
    let env = Envelope {
        actor: Actor::User(doc.user.user_id.clone()),
        tx: Transaction::AddRecord {
            record_id: record_id.clone(),
            patient: req.patient_id,
            content_hash: Hash32::sha256(&bytes),
            consent_code: req.consent_code,
            amends: req.amends,
            prescription_code_hash: prescription_code
                .as_deref()
                .map(|c| prescription_code_hash(&prescription_code_proof(c))),
        },
    };
    if s.inner.manual_validation {
        s.inner
            .pending
            .lock()
            .await
            .push((env, vec![bytes], record_id.clone()));
        return Ok((
            StatusCode::ACCEPTED,
            ApiJson(PendingResponse {
                record_id,
                status: "pending",
                prescription_code,
            }),
        )
            .into_response());
    }
    let c = s.commit(&env, vec![bytes]).await?;
    Ok(ApiJson(AddRecordResponse {
        record_id,
        block_height: c.height,
        block_hash: c.block_hash.to_hex(),
        prescription_code,
    })
    .into_response())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ValidatedBlock {
    pub block_height: u64,
    pub block_hash: String,
    pub previous_hash: String,
    pub record_count: u64,
    /// Records of the pending queue this call committed.
    pub committed_pending: usize,
    pub proposer: u16,
    /// The replicas whose COMMIT signatures form the block's certificate.
    pub signers: Vec<u16>,
    pub view: u64,
    pub timestamp_ms: u64,
    /// From this call's start to the block being committed and durable here.
    pub latency_ms: f64,
}

/// Propose the pending records now and answer with the committed block. With nothing
/// pending, a marker transaction makes a fresh block, so the answer always shows a real
/// round of consensus and its latency.
#[utoipa::path(post, path = "/api/validate_block",
    responses((status = 200, body = ValidatedBlock), (status = 403, body = ErrorBody)),
    security(("bearer" = [])), tag = "records")]
pub async fn validate_block(
    State(s): State<AppState>,
    DoctorOrDepartment(who): DoctorOrDepartment,
) -> ApiResult<ApiJson<ValidatedBlock>> {
    let start = Instant::now();
    let pending: Vec<_> = std::mem::take(&mut *s.inner.pending.lock().await);
    let n = pending.len();
    let mut last: Option<Committed> = None;
    if pending.is_empty() {
        let env = Envelope {
            actor: Actor::User(who.user.user_id.clone()),
            tx: Transaction::Marker,
        };
        last = Some(s.commit(&env, Vec::new()).await?);
    } else {
        // All pending records go in at once, so they share as few blocks as possible.
        let mut set = tokio::task::JoinSet::new();
        for (env, content, _) in pending {
            let s2 = s.clone();
            set.spawn(async move { s2.commit(&env, content).await });
        }
        let mut first_error = None;
        while let Some(r) = set.join_next().await {
            match r.map_err(ApiError::internal)? {
                Ok(c) => {
                    if last.is_none_or(|l| c.height > l.height) {
                        last = Some(c);
                    }
                }
                Err(e) => first_error = first_error.or(Some(e)),
            }
        }
        if let (None, Some(e)) = (last, first_error) {
            return Err(e);
        }
    }
    let c = last.ok_or_else(|| ApiError::internal("no block"))?;
    let latency_ms = start.elapsed().as_secs_f64() * 1000.0;
    let db = s.inner.db_path.clone();
    s.read(move |conn| {
        let reader = medchain_store::Reader::open(&db).map_err(ApiError::internal)?;
        let b = reader
            .block(c.height)
            .map_err(ApiError::internal)?
            .ok_or_else(|| ApiError::internal("committed block not stored"))?;
        Ok(ApiJson(ValidatedBlock {
            block_height: c.height,
            block_hash: b.hash().to_hex(),
            previous_hash: b.header.prev_hash.to_hex(),
            record_count: query::records_in_block(conn, c.height)?,
            committed_pending: n,
            proposer: b.header.proposer.0,
            signers: b.certificate.signers().iter().map(|r| r.0).collect(),
            view: b.certificate.view,
            timestamp_ms: b.header.timestamp_ms,
            latency_ms,
        }))
    })
    .await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GetChainRequest {
    pub patient_id: String,
    /// `next_cursor` of the previous page; absent for the first page.
    #[serde(default)]
    pub cursor: Option<String>,
    /// Records per page, 1 to 200 (default 200).
    #[serde(default)]
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ChainRecord {
    pub record_id: String,
    pub block_height: u64,
    pub block_hash: String,
    pub doctor_id: String,
    pub department: String,
    pub diagnosis: String,
    pub prescription: String,
    pub notes: String,
    #[schema(value_type = Vec<Object>)]
    pub medications: Vec<Medication>,
    pub amends: Option<String>,
    /// RFC 3339 (UTC).
    pub created_at: String,
    pub created_at_ms: u64,
    pub dispensed: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GetChainResponse {
    pub patient_id: String,
    /// Why this read was allowed: "own data", "consent" or "break-glass".
    pub access: String,
    pub records: Vec<ChainRecord>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

fn chain_record(r: RecordView) -> ChainRecord {
    ChainRecord {
        created_at: crate::routes::rfc3339(r.created_at_ms),
        record_id: r.record_id,
        block_height: r.block_height,
        block_hash: r.block_hash,
        doctor_id: r.doctor_id,
        department: r.department,
        diagnosis: r.diagnosis,
        prescription: r.prescription,
        notes: r.notes,
        medications: r.medications,
        amends: r.amends,
        created_at_ms: r.created_at_ms,
        dispensed: r.dispensed.is_some(),
    }
}

/// A patient's records: the patient, or a doctor with consent or break-glass access.
/// Every call is recorded in the patient's audit trail.
#[utoipa::path(post, path = "/api/get_chain", request_body = GetChainRequest,
    responses((status = 200, body = GetChainResponse), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody)),
    security(("bearer" = [])), tag = "records")]
pub async fn get_chain(
    State(s): State<AppState>,
    RecordReader(who): RecordReader,
    ApiJson(req): ApiJson<GetChainRequest>,
) -> ApiResult<ApiJson<GetChainResponse>> {
    check_text("patient_id", &req.patient_id, USER_ID_MAX_CHARS, true)?;
    let after = record_cursor(req.cursor.as_deref())?;
    let limit = req.limit.unwrap_or(query::MAX_PAGE);
    if !(1..=query::MAX_PAGE).contains(&limit) {
        return Err(
            ApiError::invalid(format!("limit: 1 to {}", query::MAX_PAGE)).with_field("limit"),
        );
    }
    let access = audited_read(&s, &who, &req.patient_id, "get_chain").await?;
    // A reader of another organisation (consent just granted, break-glass just opened)
    // waits, bounded, for the patient's home organisation to seal the key to it.
    wait_for_keys(&s, &req.patient_id).await?;
    let pid = req.patient_id.clone();
    let keys = std::sync::Arc::clone(&s.inner.keys);
    let (records, next) = s
        .read(move |c| {
            Ok(query::records_of_patient_after(
                c,
                keys.as_ref(),
                &pid,
                after.as_ref(),
                limit,
            )?)
        })
        .await?;
    Ok(ApiJson(GetChainResponse {
        patient_id: req.patient_id,
        access: access.reason().into(),
        records: records.into_iter().map(chain_record).collect(),
        next_cursor: next.map(|c| c.encode()),
    }))
}

/// A record's content as the ledger will store it: encrypted under the patient's current
/// data key, or in clear on a chain without encryption keys.
pub(crate) async fn sealed_content(
    s: &AppState,
    patient: &str,
    record_id: &str,
    content: &RecordContent,
    prescription_code: Option<&str>,
) -> ApiResult<Vec<u8>> {
    match writing_key(s, patient).await? {
        WritingKey::Clear => Ok(content.to_bytes()),
        WritingKey::Sealed { epoch, key } => {
            seal_record(&key, epoch, patient, record_id, content, prescription_code)
                .map_err(ApiError::internal)
        }
    }
}

/// The key new data of `patient` is sealed under: the current epoch's (made first if the
/// patient has none, or a new epoch started first if an organisation holding the current
/// one is no longer entitled, when this is the patient's home organisation; waited for,
/// bounded, when the home organisation has yet to do either).
pub(crate) async fn writing_key(s: &AppState, patient: &str) -> ApiResult<WritingKey> {
    let deadline = tokio::time::Instant::now() + KEY_WAIT;
    loop {
        let keys = std::sync::Arc::clone(&s.inner.keys);
        let p = patient.to_string();
        let now = s.now_ms();
        let got = s.lookup(|c| Ok(keys.writing_key(c, &p, now)?))?;
        match got {
            Ok(key) => return Ok(key),
            Err(NoKey::NotYetMade) if s.is_home_of(patient)? => {
                let patient = patient.to_string();
                crate::key_steward::now(s, KeyWork::FirstKey { patient }).await?;
            }
            Err(NoKey::RotationDue { next_epoch }) if s.is_home_of(patient)? => {
                let work = KeyWork::NewEpoch {
                    patient: patient.to_string(),
                    epoch: next_epoch,
                };
                crate::key_steward::now(s, work).await?;
            }
            Err(_) if tokio::time::Instant::now() >= deadline => {
                return Err(ApiError::unavailable(format!(
                    "{}, the patient's home organisation, has not shared the patient's key \
                     with this organisation yet; try again shortly",
                    s.home_name_of(patient)?
                )))
            }
            Err(_) => tokio::time::sleep(KEY_POLL).await,
        }
    }
}

/// Wait, bounded, until this organisation holds every key epoch of `patient` (content
/// sealed under an epoch it lacks would read as unavailable).
pub(crate) async fn wait_for_keys(s: &AppState, patient: &str) -> ApiResult<()> {
    let deadline = tokio::time::Instant::now() + KEY_WAIT;
    loop {
        let keys = std::sync::Arc::clone(&s.inner.keys);
        let missing = s.lookup(|c| Ok(keys.missing_epochs(c, patient)?))?;
        if missing.is_empty() {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(ApiError::unavailable(format!(
                "{}, the patient's home organisation, has not shared the patient's key with \
                 this organisation yet; try again shortly",
                s.home_name_of(patient)?
            )));
        }
        tokio::time::sleep(KEY_POLL).await;
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BreakGlassRequested {
    /// The proposal a colleague or the patient's department signs
    /// (`POST /api/proposals/{id}/approve`); the access opens with that signature.
    pub request_id: String,
    pub block_height: u64,
}

/// How long a break-glass request beyond the limit waits for its second signature.
const BREAK_GLASS_REQUEST_TTL_MS: u64 = 30 * 60 * 1000;

/// Ask for break-glass beyond the daily limit: a co-signed proposal that another doctor of
/// the organisation or the patient's department approves; the access opens with that
/// signature. Needs a fresh code, as break-glass does.
#[utoipa::path(post, path = "/api/break_glass/request", request_body = BreakGlassRequest,
    responses((status = 200, body = BreakGlassRequested), (status = 403, body = ErrorBody),
              (status = 422, body = ErrorBody)),
    security(("bearer" = [])), tag = "records")]
pub async fn request_break_glass(
    State(s): State<AppState>,
    ClientAddr(addr): ClientAddr,
    Doctor(doc): Doctor,
    ApiJson(req): ApiJson<BreakGlassRequest>,
) -> ApiResult<ApiJson<BreakGlassRequested>> {
    check_text("patient_id", &req.patient_id, USER_ID_MAX_CHARS, true)?;
    crate::routes::mfa::step_up(
        &s,
        &doc,
        req.totp.as_deref(),
        addr,
        "/api/break_glass/request",
    )?;
    let duration_ms = break_glass_duration(&req)?;
    let pid = req.patient_id.clone();
    s.read(move |c| patient(c, &pid).map(|_| ())).await?;
    let request_id = new_id("bg");
    let (reason, pieces) = crate::sealed_text::seal(&s, &req.patient_id, req.reason).await?;
    let env = Envelope {
        actor: Actor::User(doc.user.user_id.clone()),
        tx: Transaction::Propose {
            proposal_id: request_id.clone(),
            action: medchain_records::ProposedAction::OpenBreakGlass {
                patient: req.patient_id,
                reason,
                duration_ms,
            },
            ttl_ms: BREAK_GLASS_REQUEST_TTL_MS,
        },
    };
    let c = s.commit(&env, pieces).await?;
    Ok(ApiJson(BreakGlassRequested {
        request_id,
        block_height: c.height,
    }))
}

/// The reason and duration of a break-glass request, checked as the ledger will.
fn break_glass_duration(req: &BreakGlassRequest) -> ApiResult<u64> {
    check_text("reason", &req.reason, REASON_MAX_CHARS, true)?;
    if req.reason.trim().chars().count() < BREAK_GLASS_REASON_MIN_CHARS {
        return Err(ApiError::invalid(format!(
            "reason: at least {BREAK_GLASS_REASON_MIN_CHARS} characters"
        ))
        .with_field("reason"));
    }
    let minutes = req.minutes.unwrap_or(60);
    if !(1..=60).contains(&minutes) {
        return Err(ApiError::invalid("minutes: 1 to 60"));
    }
    Ok((u64::from(minutes) * 60_000).min(BREAK_GLASS_MAX_MS))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct PatientSearch {
    /// Part of the id or name.
    pub search: Option<String>,
    pub offset: Option<u32>,
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PatientSummary {
    pub user_id: String,
    pub display_name: String,
    pub department: String,
    pub consent: bool,
    pub break_glass: bool,
}

/// Find patients (doctors): those of the doctor's department and those who consented.
#[utoipa::path(get, path = "/api/patients", params(PatientSearch),
    responses((status = 200, body = Vec<PatientSummary>)), security(("bearer" = [])), tag = "records")]
pub async fn patients(
    State(s): State<AppState>,
    Doctor(doc): Doctor,
    OriginalUri(uri): OriginalUri,
    Query(q): Query<PatientSearch>,
) -> ApiResult<(NextLink, ApiJson<Vec<PatientSummary>>)> {
    if let Some(t) = &q.search {
        check_text("search", t, SEARCH_MAX_CHARS, false)?;
    }
    let params = PageParams {
        offset: q.offset,
        limit: q.limit,
    };
    let page = params.page();
    let now = s.now_ms();
    let keys = std::sync::Arc::clone(&s.inner.keys);
    s.read(move |c| {
        let mut out = Vec::new();
        // The page is of all patients matching the search; those the doctor may not see
        // are left out, so a page may hold fewer than `limit` and still have a next one.
        let candidates =
            crate::user_search::users(c, &keys, None, Some("patient"), q.search.as_deref(), page)?;
        let next = next_of(&uri, params, &candidates);
        for u in candidates.items {
            let consent = medchain_records::doctor_has_consent(c, &doc.user, &u.user_id, now)?;
            let bg = medchain_records::break_glass_active(c, &doc.user.user_id, &u.user_id, now)?;
            let same_department =
                u.organisation == doc.user.organisation && u.department == doc.user.department;
            if u.active && (consent || bg || same_department) {
                out.push(PatientSummary {
                    user_id: u.user_id,
                    display_name: u.display_name,
                    department: u.department,
                    consent,
                    break_glass: bg,
                });
            }
        }
        Ok((next, ApiJson(out)))
    })
    .await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BreakGlassRequest {
    pub patient_id: String,
    pub reason: String,
    /// Minutes of access, 1 to 60 (default 60).
    #[serde(default)]
    pub minutes: Option<u32>,
    /// A fresh code of the doctor's authenticator app (step-up): required once two-step
    /// sign-in is set up, and where the node requires it for staff.
    #[serde(default)]
    pub totp: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BreakGlassResponse {
    pub patient_id: String,
    pub until_ms: u64,
    pub block_height: u64,
}

/// Emergency access without consent: read-only, time-limited, on the ledger, shown to the
/// patient and the department.
#[utoipa::path(post, path = "/api/break_glass", request_body = BreakGlassRequest,
    responses((status = 200, body = BreakGlassResponse), (status = 403, body = ErrorBody),
              (status = 422, body = ErrorBody)),
    security(("bearer" = [])), tag = "records")]
pub async fn break_glass(
    State(s): State<AppState>,
    ClientAddr(addr): ClientAddr,
    Doctor(doc): Doctor,
    ApiJson(req): ApiJson<BreakGlassRequest>,
) -> ApiResult<ApiJson<BreakGlassResponse>> {
    check_text("patient_id", &req.patient_id, USER_ID_MAX_CHARS, true)?;
    crate::routes::mfa::step_up(&s, &doc, req.totp.as_deref(), addr, "/api/break_glass")?;
    let duration_ms = break_glass_duration(&req)?;
    let pid = req.patient_id.clone();
    let (doctor, now) = (doc.user.user_id.clone(), s.now_ms());
    let limit = s.inner.genesis.policy.break_glass_per_doctor_per_day;
    // Fast, named refusal before consensus (the UI explains a second approver); the ledger
    // applies the same rule at the block's time.
    s.read(move |c| {
        patient(c, &pid)?;
        let standing = medchain_records::policy::break_glass_standing(c, &doctor, &pid, now)?;
        if standing.allows(limit) {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "break_glass_limit",
                standing.refusal(&doctor, limit),
            ))
        }
    })
    .await?;
    let (reason, pieces) = crate::sealed_text::seal(&s, &req.patient_id, req.reason).await?;
    let env = Envelope {
        actor: Actor::User(doc.user.user_id.clone()),
        tx: Transaction::BreakGlass {
            patient: req.patient_id.clone(),
            reason,
            duration_ms,
        },
    };
    let c = s.commit(&env, pieces).await?;
    let (doctor, pid) = (doc.user.user_id.clone(), req.patient_id.clone());
    let until_ms = s
        .read(move |conn| {
            medchain_records::break_glass_until(conn, &doctor, &pid)?
                .ok_or_else(|| ApiError::internal("committed break-glass not found"))
        })
        .await?;
    Ok(ApiJson(BreakGlassResponse {
        patient_id: req.patient_id,
        until_ms,
        block_height: c.height,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AccessStatus {
    pub patient_id: String,
    pub consent: bool,
    pub break_glass_until_ms: Option<u64>,
}

/// Whether the doctor may see a patient's records now, and why.
#[utoipa::path(get, path = "/api/patients/{patient_id}/access",
    params(("patient_id" = String, Path)),
    responses((status = 200, body = AccessStatus)),
    security(("bearer" = [])), tag = "records")]
pub async fn access_status(
    State(s): State<AppState>,
    Doctor(doc): Doctor,
    Path(pid): Path<String>,
) -> ApiResult<ApiJson<AccessStatus>> {
    check_text("patient_id", &pid, USER_ID_MAX_CHARS, true)?;
    let now = s.now_ms();
    s.read(move |c| {
        // An unknown id answers as a patient without consent does: no existence oracle.
        let known = crate::access::patient_if_known(c, &pid)?.is_some();
        let consent = known && medchain_records::doctor_has_consent(c, &doc.user, &pid, now)?;
        let until = if known {
            medchain_records::break_glass_until(c, &doc.user.user_id, &pid)?
        } else {
            None
        };
        Ok(ApiJson(AccessStatus {
            patient_id: pid,
            consent,
            break_glass_until_ms: until.filter(|u| *u > now),
        }))
    })
    .await
}
