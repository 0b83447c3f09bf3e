//! Accountable emergency access: the patient's department sees every break-glass opening
//! on its patients as an alert until it reviews it (on the ledger, with a note), and a
//! second approver (another doctor, or the patient's department) approves an opening
//! beyond a doctor's daily limit. The rules themselves are the ledger's
//! (`medchain_records` rules/break_glass.rs); these routes submit and read.

use axum::extract::{OriginalUri, Path, Query, State};
use medchain_records::limits::{REVIEW_NOTE_MAX_CHARS, USER_ID_MAX_CHARS};
use medchain_records::query::{self, BreakGlassView, DepartmentRef};
use medchain_records::{Actor, Envelope, Transaction};
use medchain_store::rusqlite::OptionalExtension;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::audit::audit_department_read;
use crate::error::{check_text, ApiError, ApiJson, ApiResult, ErrorBody};
use crate::extract::{Department, DoctorOrDepartment};
use crate::paging::{next_of, NextLink};
use crate::routes::session::ClientAddr;
use crate::routes::{Done, PageParams};
use crate::state::AppState;

/// The department's open alerts: break-glass openings on its patients it has not yet
/// reviewed, newest first. Reading them is audited for each patient on the page.
#[utoipa::path(get, path = "/api/break_glass/alerts", params(PageParams),
    responses((status = 200, body = Vec<Object>), (status = 403, body = ErrorBody)),
    security(("bearer" = [])), tag = "audit")]
pub async fn alerts(
    State(s): State<AppState>,
    Department(d): Department,
    OriginalUri(uri): OriginalUri,
    Query(params): Query<PageParams>,
) -> ApiResult<(NextLink, ApiJson<Vec<BreakGlassView>>)> {
    let page = params.page();
    let (organisation, dept) = (d.user.organisation, d.user.department.clone());
    let keys = std::sync::Arc::clone(&s.inner.keys);
    let alerts = s
        .read(move |c| {
            let at = DepartmentRef {
                organisation,
                department: &dept,
            };
            Ok(query::break_glass_alerts(c, keys.as_ref(), at, page)?)
        })
        .await?;
    audit_department_read(
        &s,
        &d.user.user_id,
        alerts.items.iter().map(|a| a.patient_id.as_str()),
        "break_glass_alerts",
    )
    .await?;
    Ok((next_of(&uri, params, &alerts), ApiJson(alerts.items)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewRequest {
    pub note: String,
}

/// The patient's department reviews a break-glass event (once), with a note the patient
/// sees.
#[utoipa::path(post, path = "/api/break_glass/{id}/review", request_body = ReviewRequest,
    responses((status = 200, body = Done), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = [])), tag = "audit")]
pub async fn review(
    State(s): State<AppState>,
    Department(d): Department,
    Path(id): Path<u64>,
    ApiJson(req): ApiJson<ReviewRequest>,
) -> ApiResult<ApiJson<Done>> {
    check_text("note", &req.note, REVIEW_NOTE_MAX_CHARS, true)?;
    if req.note.trim().is_empty() {
        return Err(ApiError::invalid("note: required").with_field("note"));
    }
    // The note is sealed to the patient's organisation (where the patient and the
    // department read it), so the event's patient is needed first.
    let patient: Option<String> = s
        .read(move |c| {
            Ok(
                c.prepare_cached("SELECT patient FROM break_glass WHERE id = ?1")?
                    .query_row([id as i64], |r| r.get(0))
                    .optional()?,
            )
        })
        .await?;
    let Some(patient) = patient else {
        return Err(ApiError::not_found(format!("no break-glass event {id}")));
    };
    let (note, pieces) = crate::sealed_text::seal(&s, &patient, req.note).await?;
    let env = Envelope {
        actor: Actor::User(d.user.user_id.clone()),
        tx: Transaction::ReviewBreakGlass { id, note },
    };
    let c = s.commit(&env, pieces).await?;
    Ok(ApiJson(Done {
        ok: true,
        block_height: c.height,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApproveRequest {
    pub doctor_id: String,
    pub patient_id: String,
    /// A fresh code of the approver's authenticator app (step-up): a co-signature is
    /// worth only as much as the proof that it is the approver signing.
    #[serde(default)]
    pub totp: Option<String>,
}

/// A second approver allows one more break-glass opening of `doctor_id` on
/// `patient_id` beyond the doctor's daily limit (usable for an hour).
#[utoipa::path(post, path = "/api/break_glass/approve", request_body = ApproveRequest,
    responses((status = 200, body = Done), (status = 403, body = ErrorBody)),
    security(("bearer" = [])), tag = "audit")]
pub async fn approve(
    State(s): State<AppState>,
    ClientAddr(addr): ClientAddr,
    DoctorOrDepartment(who): DoctorOrDepartment,
    ApiJson(req): ApiJson<ApproveRequest>,
) -> ApiResult<ApiJson<Done>> {
    check_text("doctor_id", &req.doctor_id, USER_ID_MAX_CHARS, true)?;
    check_text("patient_id", &req.patient_id, USER_ID_MAX_CHARS, true)?;
    crate::routes::mfa::step_up(
        &s,
        &who,
        req.totp.as_deref(),
        addr,
        "/api/break_glass/approve",
    )?;
    let env = Envelope {
        actor: Actor::User(who.user.user_id.clone()),
        tx: Transaction::ApproveBreakGlass {
            doctor: req.doctor_id,
            patient: req.patient_id,
        },
    };
    let c = s.commit(&env, Vec::new()).await?;
    Ok(ApiJson(Done {
        ok: true,
        block_height: c.height,
    }))
}
