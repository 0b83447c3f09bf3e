//! Co-signed actions: a department administrator proposes a sensitive action of its
//! organisation (today: registering or deactivating another department administrator),
//! and it executes when the approvers its ledger rule names have signed, each through
//! their own home organisation's node with a fresh two-step code (step-up). The rules are
//! the ledger's (`medchain_records` rules/proposals.rs); these routes list, propose and
//! approve. The operator signs from the command line (`medchain user add`,
//! `medchain user approve`).

use axum::extract::{Path, State};
use medchain_records::limits::{PROPOSAL_TTL_MAX_MS, USER_ID_MAX_CHARS};
use medchain_records::query::{self, ProposalView};
use medchain_records::tx::OPERATOR_APPROVER;
use medchain_records::{Actor, Envelope, ProposedAction, Transaction};
use medchain_types::UserRole;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{check_text, ApiError, ApiJson, ApiResult, ErrorBody};
use crate::extract::{Department, Session};
use crate::routes::session::ClientAddr;
use crate::state::AppState;

/// A proposal as the caller sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProposalItem {
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub proposal: ProposalView,
    /// The caller may sign it (an administrator of its organisation who has not yet, and
    /// whom the proposal is not about).
    pub may_approve: bool,
    /// What is still missing, in words.
    pub waiting_for: String,
    /// An erasure request's reason, opened with the patient's key at this node.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProposalsResponse {
    pub proposals: Vec<ProposalItem>,
}

/// What waits for the caller: for a department administrator, the open administrator
/// proposals of their organisation and the erasure and break-glass requests on their
/// department's patients; for a doctor, their organisation's doctors' break-glass
/// requests beyond the daily limit (their own included, as signed).
#[utoipa::path(get, path = "/api/proposals",
    responses((status = 200, body = ProposalsResponse)), security(("bearer" = [])), tag = "proposals")]
pub async fn list(
    State(s): State<AppState>,
    who: Session,
) -> ApiResult<ApiJson<ProposalsResponse>> {
    if !matches!(who.user.role, UserRole::Department | UserRole::Doctor) {
        return Ok(ApiJson(ProposalsResponse {
            proposals: Vec::new(),
        }));
    }
    let now = s.now_ms();
    let keys = std::sync::Arc::clone(&s.inner.keys);
    let me = who.user.clone();
    let items = s
        .read(move |c| {
            let mine = |patient: &str| -> ApiResult<bool> {
                Ok(medchain_records::user(c, patient)?.is_some_and(|u| {
                    u.organisation == me.organisation && u.department == me.department
                }))
            };
            let mut items = Vec::new();
            if me.role == UserRole::Doctor {
                for p in query::open_proposals(c, me.organisation, now)? {
                    if matches!(p.action, ProposedAction::OpenBreakGlass { .. }) {
                        let reason = break_glass_reason(c, &keys, &p.action)?;
                        items.push(item(&me.user_id, p, reason));
                    }
                }
                return Ok(items);
            }
            for p in query::open_proposals(c, me.organisation, now)? {
                match &p.action {
                    ProposedAction::ErasePatient {
                        patient,
                        sealed_reason,
                    } => {
                        // Only the patient's own department sees (and signs) it.
                        if mine(patient)? {
                            let reason =
                                erasure_reason(c, &keys, patient, &p.proposal_id, sealed_reason);
                            items.push(item(&me.user_id, p, reason));
                        }
                    }
                    // Listed below, with those of other organisations' doctors.
                    ProposedAction::OpenBreakGlass { .. } => {}
                    _ => items.push(item(&me.user_id, p, None)),
                }
            }
            for p in query::open_proposals_of_kind(c, "open_break_glass", now)? {
                if mine(p.action.target())? {
                    let reason = break_glass_reason(c, &keys, &p.action)?;
                    items.push(item(&me.user_id, p, reason));
                }
            }
            Ok(items)
        })
        .await?;
    Ok(ApiJson(ProposalsResponse { proposals: items }))
}

/// A proposal as `me` sees it: whether they may sign, and what it still waits for.
fn item(me: &str, p: ProposalView, reason: Option<String>) -> ProposalItem {
    let signed = p.approvals.iter().any(|a| a == me);
    let (may_approve, waiting_for) = match &p.action {
        ProposedAction::ErasePatient { .. } => (
            !signed,
            "the patient's department (POST /api/erasure/{id}/approve)".to_string(),
        ),
        ProposedAction::OpenBreakGlass { .. } => (
            !signed,
            "another doctor of the organisation or the patient's department".to_string(),
        ),
        _ => {
            let operator = p.approvals.iter().any(|a| a == OPERATOR_APPROVER);
            let admin = p.approvals.iter().any(|a| a != OPERATOR_APPROVER);
            let waiting_for = match (operator, admin) {
                (false, false) => "the operator and an administrator",
                (false, true) => "the organisation's operator (medchain user approve)",
                (true, _) => "another department administrator",
            };
            (!signed && p.action.target() != me, waiting_for.to_string())
        }
    };
    ProposalItem {
        proposal: p,
        may_approve,
        waiting_for,
        reason,
    }
}

/// A break-glass request's reason as this node can show it (opened, when it was sealed
/// to this organisation).
fn break_glass_reason(
    c: &medchain_store::rusqlite::Connection,
    keys: &crate::patient_keys::PatientKeys,
    action: &ProposedAction,
) -> medchain_store::rusqlite::Result<Option<String>> {
    let ProposedAction::OpenBreakGlass {
        patient, reason, ..
    } = action
    else {
        return Ok(None);
    };
    query::reason_text(c, keys, patient, reason.clone()).map(Some)
}

/// An erasure request's reason in clear, if this node can open it.
fn erasure_reason(
    c: &medchain_store::rusqlite::Connection,
    keys: &crate::patient_keys::PatientKeys,
    patient: &str,
    request_id: &str,
    sealed_hex: &str,
) -> Option<String> {
    let bytes = hex::decode(sealed_hex).ok()?;
    match medchain_records::sealed::sealed_parts(&bytes) {
        Some((epoch, envelope)) => {
            let key = keys.epoch_key(c, patient, epoch).ok()??;
            medchain_records::sealed::open_erasure_reason(&key, patient, request_id, envelope)
        }
        None => String::from_utf8(bytes).ok(),
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProposeRequest {
    /// `{"kind": "register_administrator", "user_id", "department", "display_name"}` or
    /// `{"kind": "deactivate_administrator", "user_id"}`.
    #[schema(value_type = Object)]
    pub action: ProposedAction,
    /// Hours until it expires, 1 to 168 (default 72).
    #[serde(default)]
    pub hours: Option<u32>,
    /// A fresh code of the proposer's authenticator app (step-up).
    #[serde(default)]
    pub totp: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProposalDone {
    pub proposal_id: String,
    /// The action ran in this block (the last approval it needed).
    pub executed: bool,
    pub block_height: u64,
}

/// Propose a sensitive action of the caller's organisation; the caller's signature is
/// the first approval.
#[utoipa::path(post, path = "/api/proposals", request_body = ProposeRequest,
    responses((status = 200, body = ProposalDone), (status = 403, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])), tag = "proposals")]
pub async fn propose(
    State(s): State<AppState>,
    ClientAddr(addr): ClientAddr,
    Department(d): Department,
    ApiJson(req): ApiJson<ProposeRequest>,
) -> ApiResult<ApiJson<ProposalDone>> {
    crate::routes::mfa::step_up(&s, &d, req.totp.as_deref(), addr, "/api/proposals")?;
    check_text("user_id", req.action.target(), USER_ID_MAX_CHARS, true)?;
    let hours = req.hours.unwrap_or(72);
    let ttl_ms = u64::from(hours) * 3_600_000;
    if hours == 0 || ttl_ms > PROPOSAL_TTL_MAX_MS {
        return Err(ApiError::invalid("hours: 1 to 168").with_field("hours"));
    }
    let mut id = [0u8; 8];
    rand::rngs::OsRng.fill_bytes(&mut id);
    let proposal_id = format!("prop-{}", hex::encode(id));
    let env = Envelope {
        actor: Actor::User(d.user.user_id.clone()),
        tx: Transaction::Propose {
            proposal_id: proposal_id.clone(),
            action: req.action,
            ttl_ms,
        },
    };
    let c = s.commit(&env, Vec::new()).await?;
    done(&s, proposal_id, c.height).await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApproveProposalRequest {
    /// A fresh code of the approver's authenticator app (step-up).
    #[serde(default)]
    pub totp: Option<String>,
}

/// Sign a proposal of the caller's organisation; the signature that completes its rule
/// executes it in the same block.
#[utoipa::path(post, path = "/api/proposals/{id}/approve", request_body = ApproveProposalRequest,
    responses((status = 200, body = ProposalDone), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = [])), tag = "proposals")]
pub async fn approve(
    State(s): State<AppState>,
    ClientAddr(addr): ClientAddr,
    d: Session,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<ApproveProposalRequest>,
) -> ApiResult<ApiJson<ProposalDone>> {
    // Department administrators sign administrator changes, erasures and break-glass;
    // doctors sign their colleagues' break-glass. The ledger decides which counts.
    if !matches!(d.user.role, UserRole::Department | UserRole::Doctor) {
        return Err(ApiError::forbidden(format!(
            "not allowed for the {} role",
            d.user.role.as_str()
        )));
    }
    check_text("id", &id, USER_ID_MAX_CHARS, true)?;
    crate::routes::mfa::step_up(&s, &d, req.totp.as_deref(), addr, "/api/proposals/approve")?;
    let env = Envelope {
        actor: Actor::User(d.user.user_id.clone()),
        tx: Transaction::ApproveProposal {
            proposal_id: id.clone(),
        },
    };
    let c = s.commit(&env, Vec::new()).await?;
    done(&s, id, c.height).await
}

async fn done(s: &AppState, proposal_id: String, height: u64) -> ApiResult<ApiJson<ProposalDone>> {
    let pid = proposal_id.clone();
    let executed = s
        .read(move |c| Ok(query::proposal_executed(c, &pid)?))
        .await?
        .flatten()
        .is_some();
    Ok(ApiJson(ProposalDone {
        proposal_id,
        executed,
        block_height: height,
    }))
}
