//! Erasure at the patient's request (crypto-shredding): the patient asks, with a reason
//! sealed under their own data key; an administrator of the patient's department approves
//! with a fresh two-step code (step-up). Both are ledger transactions of a co-signed
//! proposal (`ErasePatient`), so the ledger itself checks who asked and who approved; when
//! the approval executes, every replica deletes the patient's content and sealed keys and
//! every read of the patient answers 410.

use axum::extract::{Path, State};
use medchain_records::limits::USER_ID_MAX_CHARS;
use medchain_records::sealed::seal_erasure_reason;
use medchain_records::{Actor, Envelope, ProposedAction, Transaction};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{check_text, ApiError, ApiJson, ApiResult, ErrorBody};
use crate::extract::{Department, Patient};
use crate::patient_keys::WritingKey;
use crate::routes::new_id;
use crate::routes::records::writing_key;
use crate::routes::session::ClientAddr;
use crate::state::AppState;

/// Longest reason, in characters.
pub const ERASURE_REASON_MAX_CHARS: usize = 500;
/// How long a request waits for the department's approval.
const ERASURE_REQUEST_TTL_MS: u64 = 7 * 24 * 60 * 60 * 1000;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ErasureRequest {
    /// Why the patient asks (sealed under their data key; shredded with it).
    pub reason: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErasureRequested {
    pub request_id: String,
    pub block_height: u64,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ErasureApproval {
    /// A fresh code of the approver's authenticator app (step-up).
    #[serde(default)]
    pub totp: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErasureDone {
    pub request_id: String,
    pub erased: bool,
    pub block_height: u64,
}

/// Ask for the erasure of one's own data (patients).
#[utoipa::path(post, path = "/api/erasure", request_body = ErasureRequest,
    responses((status = 200, body = ErasureRequested), (status = 409, body = ErrorBody),
              (status = 422, body = ErrorBody)),
    security(("bearer" = [])), tag = "erasure")]
pub async fn request(
    State(s): State<AppState>,
    Patient(p): Patient,
    ApiJson(req): ApiJson<ErasureRequest>,
) -> ApiResult<ApiJson<ErasureRequested>> {
    check_text("reason", &req.reason, ERASURE_REASON_MAX_CHARS, true)?;
    let patient = p.user.user_id.clone();
    let request_id = new_id("era");
    let sealed = match writing_key(&s, &patient).await? {
        WritingKey::Clear => req.reason.into_bytes(),
        WritingKey::Sealed { epoch, key } => {
            seal_erasure_reason(&key, epoch, &patient, &request_id, &req.reason)
                .map_err(ApiError::internal)?
        }
    };
    let env = Envelope {
        actor: Actor::User(patient.clone()),
        tx: Transaction::Propose {
            proposal_id: request_id.clone(),
            action: ProposedAction::ErasePatient {
                patient,
                sealed_reason: hex::encode(sealed),
            },
            ttl_ms: ERASURE_REQUEST_TTL_MS,
        },
    };
    let c = s.commit(&env, Vec::new()).await?;
    Ok(ApiJson(ErasureRequested {
        request_id,
        block_height: c.height,
    }))
}

/// Approve a patient's erasure request (an administrator of the patient's department,
/// with a fresh two-step code once enrolled): it executes at once.
#[utoipa::path(post, path = "/api/erasure/{request_id}/approve", request_body = ErasureApproval,
    responses((status = 200, body = ErasureDone), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = [])), tag = "erasure")]
pub async fn approve(
    State(s): State<AppState>,
    ClientAddr(addr): ClientAddr,
    Department(d): Department,
    Path(request_id): Path<String>,
    ApiJson(req): ApiJson<ErasureApproval>,
) -> ApiResult<ApiJson<ErasureDone>> {
    check_text("request_id", &request_id, USER_ID_MAX_CHARS, true)?;
    crate::routes::mfa::step_up(&s, &d, req.totp.as_deref(), addr, "/api/erasure/approve")?;
    let env = Envelope {
        actor: Actor::User(d.user.user_id.clone()),
        tx: Transaction::ApproveProposal {
            proposal_id: request_id.clone(),
        },
    };
    let c = s.commit(&env, Vec::new()).await?;
    let id = request_id.clone();
    let erased = s
        .read(move |c| Ok(medchain_records::query::proposal_executed(c, &id)?))
        .await?
        .flatten()
        .is_some();
    if erased {
        // No key of the erased patient stays in this node's memory either.
        s.inner.keys.forget_all();
    }
    Ok(ApiJson(ErasureDone {
        request_id,
        erased,
        block_height: c.height,
    }))
}
