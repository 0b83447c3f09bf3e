//! Access-monitor alerts (DESIGN.md, "Every access is explained or flagged"): a
//! department sees the flagged reads of its patients' data with the rule's name and
//! sentence, and reviews each one on the ledger (justified or a violation, with a note);
//! a patient sees the flags on reads of their own data. The alerts are computed by every
//! replica from the chain alike (`crate::access_monitor`).

use axum::extract::{Path, State};
use medchain_monitor::Alert;
use medchain_records::limits::REVIEW_NOTE_MAX_CHARS;
use medchain_records::{Actor, Envelope, ReviewOutcome, Transaction};
use medchain_store::rusqlite::{params, Connection, OptionalExtension};
use medchain_types::UserRole;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::audit::audit_department_read;
use crate::error::{check_text, ApiError, ApiJson, ApiResult, ErrorBody};
use crate::extract::{Department, Session};
use crate::routes::Done;
use crate::state::AppState;

/// Most alerts one answer lists (newest first).
const ALERTS_PAGE: usize = 200;
/// Learned scores at or above this are listed (the threshold `monitor-eval` reports).
const SCORE_SHOWN: f64 = 0.6;
/// Reader-days scored and listed: the last fortnight, at most ten.
const SCORE_DAYS: u64 = 14;
const SCORES_LISTED: usize = 10;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AlertView {
    pub alert_id: String,
    pub user_id: String,
    pub patient_id: String,
    /// The rule's stable name, e.g. `no_treatment_relationship`.
    pub rule: String,
    /// One sentence for a privacy officer: who, whom, what the rule saw.
    pub explanation: String,
    pub at_ms: u64,
    pub block_height: u64,
    /// The department's review, once there is one: `justified` or `violation`.
    pub review: Option<ReviewView>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReviewView {
    pub outcome: String,
    pub note: String,
    pub reviewer: String,
    pub at_ms: u64,
}

/// The learned score of one reader's day: how unusual it is among the organisation's
/// own readers (0 to 1), and the features that made it so. Advisory, never a verdict.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReaderDayScore {
    pub user_id: String,
    /// Days since the Unix epoch (ledger time).
    pub day: u64,
    pub score: f64,
    pub drivers: Vec<DriverView>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DriverView {
    pub feature: String,
    pub value: f64,
    pub typical: f64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AlertsResponse {
    pub alerts: Vec<AlertView>,
    /// For a department: the most unusual recent days of its own readers by the learned
    /// score (at or above `SCORE_SHOWN`), trained on its organisation's readers only.
    pub reader_scores: Vec<ReaderDayScore>,
    /// Always null today: the list is the newest `ALERTS_PAGE`, and says so with `more`.
    pub next_cursor: Option<String>,
    pub more: bool,
    /// The monitor has read the whole chain (false: still catching up after a start).
    pub caught_up: bool,
}

fn review_of(
    c: &Connection,
    keys: &crate::patient_keys::PatientKeys,
    alert_id: &str,
) -> ApiResult<Option<ReviewView>> {
    let row = c
        .prepare_cached(
            "SELECT outcome, note, reviewer, at_ms, patient FROM alert_reviews WHERE alert_id = ?1",
        )?
        .query_row(params![alert_id], |r| {
            Ok((
                ReviewView {
                    outcome: r.get(0)?,
                    note: r.get(1)?,
                    reviewer: r.get(2)?,
                    at_ms: r.get::<_, i64>(3)? as u64,
                },
                r.get::<_, String>(4)?,
            ))
        })
        .optional()?;
    let Some((mut view, patient)) = row else {
        return Ok(None);
    };
    // A note sealed to the patient's organisation opens here, or shows as sealed.
    view.note = medchain_records::query::reason_text(c, keys, &patient, view.note)?;
    Ok(Some(view))
}

/// Only the patient's department and the patient see alerts.
fn may_list(me: &medchain_records::UserRow) -> ApiResult<()> {
    if matches!(me.role, UserRole::Department | UserRole::Patient) {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "alerts are for the patient's department and the patient",
        ))
    }
}

/// The alerts the caller may see: a department those on its own patients (its
/// organisation and department), a patient those on their own data; newest first.
fn visible(s: &AppState, who: &Session) -> impl FnOnce(&Connection) -> ApiResult<AlertsResponse> {
    let (s, me) = (s.clone(), who.user.clone());
    move |c| {
        may_list(&me)?;
        s.inner.access_monitor.with_caught_up(
            c,
            &s.inner.db_path,
            &s.inner.genesis,
            &s.inner.keys,
            |m| {
                let mut alerts = Vec::new();
                let mut more = false;
                for a in m.alerts.iter().rev() {
                    if !may_see(c, &me, a)? {
                        continue;
                    }
                    if alerts.len() == ALERTS_PAGE {
                        more = true;
                        break;
                    }
                    alerts.push(view(c, &s.inner.keys, a)?);
                }
                let reader_scores = if me.role == UserRole::Department {
                    scores(c, &me, m.days)?
                } else {
                    Vec::new()
                };
                Ok(AlertsResponse {
                    alerts,
                    reader_scores,
                    next_cursor: None,
                    more,
                    caught_up: m.caught_up,
                })
            },
        )
    }
}

/// The alert `alert_id` if the caller may see it.
fn visible_alert(
    s: &AppState,
    who: &Session,
    alert_id: String,
) -> impl FnOnce(&Connection) -> ApiResult<Option<Alert>> {
    let (s, me) = (s.clone(), who.user.clone());
    move |c| {
        may_list(&me)?;
        s.inner.access_monitor.with_caught_up(
            c,
            &s.inner.db_path,
            &s.inner.genesis,
            &s.inner.keys,
            |m| match m.alerts.iter().rev().find(|a| a.alert_id == alert_id) {
                Some(a) if may_see(c, &me, a)? => Ok(Some(a.clone())),
                _ => Ok(None),
            },
        )
    }
}

/// Train on the organisation's own readers' days, score the department's readers' recent
/// days, list the most unusual.
fn scores(
    c: &Connection,
    me: &medchain_records::UserRow,
    days: &std::collections::VecDeque<medchain_monitor::ReaderDay>,
) -> ApiResult<Vec<ReaderDayScore>> {
    use medchain_monitor::{features, ForestOptions, IsolationForest};
    let own: Vec<&medchain_monitor::ReaderDay> = days
        .iter()
        .filter(|d| d.organisation == me.organisation)
        .collect();
    let rows: Vec<_> = own.iter().map(|d| features(&d.tally)).collect();
    let Ok(forest) = IsolationForest::train(&rows, ForestOptions::default()) else {
        return Ok(Vec::new()); // no days yet
    };
    let last = own.iter().map(|d| d.day).max().unwrap_or(0);
    let mut out = Vec::new();
    for d in own.iter().filter(|d| d.day + SCORE_DAYS > last) {
        let in_department = medchain_records::user(c, &d.user_id)?
            .is_some_and(|u| u.organisation == me.organisation && u.department == me.department);
        if !in_department {
            continue;
        }
        let s = forest.score(&features(&d.tally));
        if s.value >= SCORE_SHOWN {
            out.push(ReaderDayScore {
                user_id: d.user_id.clone(),
                day: d.day,
                score: s.value,
                drivers: s
                    .drivers
                    .iter()
                    .map(|x| DriverView {
                        feature: x.feature.name().to_string(),
                        value: x.value,
                        typical: x.typical,
                    })
                    .collect(),
            });
        }
    }
    out.sort_by(|a, b| b.score.total_cmp(&a.score));
    out.truncate(SCORES_LISTED);
    Ok(out)
}

fn may_see(c: &Connection, me: &medchain_records::UserRow, a: &Alert) -> ApiResult<bool> {
    if me.role == UserRole::Patient {
        return Ok(a.patient_id == me.user_id);
    }
    Ok(medchain_records::user(c, &a.patient_id)?
        .is_some_and(|p| p.organisation == me.organisation && p.department == me.department))
}

fn view(
    c: &Connection,
    keys: &crate::patient_keys::PatientKeys,
    a: &Alert,
) -> ApiResult<AlertView> {
    Ok(AlertView {
        alert_id: a.alert_id.clone(),
        user_id: a.user_id.clone(),
        patient_id: a.patient_id.clone(),
        rule: a.rule.name().to_string(),
        explanation: a.explanation.clone(),
        at_ms: a.at_ms,
        block_height: a.block_height,
        review: review_of(c, keys, &a.alert_id)?,
    })
}

/// Alerts on reads of the caller's patients' data (department) or of their own
/// (patient), newest first, with the department's review where there is one. A
/// department's reading of them is itself audited for each patient listed.
#[utoipa::path(get, path = "/api/alerts",
    responses((status = 200, body = AlertsResponse), (status = 403, body = ErrorBody)),
    security(("bearer" = [])), tag = "audit")]
pub async fn list(State(s): State<AppState>, who: Session) -> ApiResult<ApiJson<AlertsResponse>> {
    let answer = s.read(visible(&s, &who)).await?;
    if who.user.role == UserRole::Department {
        let mut patients: Vec<&str> = answer
            .alerts
            .iter()
            .map(|a| a.patient_id.as_str())
            .collect();
        patients.sort_unstable();
        patients.dedup();
        audit_department_read(&s, &who.user.user_id, patients, "access_alerts").await?;
    }
    Ok(ApiJson(answer))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertReviewRequest {
    /// `justified` or `violation`.
    #[schema(value_type = String)]
    pub outcome: ReviewOutcome,
    pub note: String,
}

/// The patient's department reviews an alert (once), on the ledger.
#[utoipa::path(post, path = "/api/alerts/{alert_id}/review", request_body = AlertReviewRequest,
    responses((status = 200, body = Done), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
              (status = 422, body = ErrorBody)),
    security(("bearer" = [])), tag = "audit")]
pub async fn review(
    State(s): State<AppState>,
    Department(d): Department,
    Path(alert_id): Path<String>,
    ApiJson(req): ApiJson<AlertReviewRequest>,
) -> ApiResult<ApiJson<Done>> {
    check_text("alert_id", &alert_id, 64, true)?;
    check_text("note", &req.note, REVIEW_NOTE_MAX_CHARS, true)?;
    if req.note.trim().is_empty() {
        return Err(ApiError::invalid("note: write what you checked").with_field("note"));
    }
    // Only alerts this department may see can be reviewed here (the ledger checks the
    // department again, for any gateway).
    let found = s.read(visible_alert(&s, &d, alert_id.clone())).await?;
    let Some(alert) = found else {
        return Err(ApiError::not_found(
            "no such alert on this department's patients",
        ));
    };
    let (note, pieces) = crate::sealed_text::seal(&s, &alert.patient_id, req.note).await?;
    let env = Envelope {
        actor: Actor::User(d.user.user_id.clone()),
        tx: Transaction::ReviewAlert {
            alert_id,
            patient: alert.patient_id,
            outcome: req.outcome,
            note,
        },
    };
    let c = s.commit(&env, pieces).await?;
    Ok(ApiJson(Done {
        ok: true,
        block_height: c.height,
    }))
}
