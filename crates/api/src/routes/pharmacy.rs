//! The pharmacy counter: look up prescriptions (medication lines only, never diagnoses or
//! notes) of a patient who consented or by the prescription's code, and dispense once.

use axum::extract::{Path, State};
use medchain_records::limits::{CODE_MAX_CHARS, RECORD_ID_MAX_BYTES, USER_ID_MAX_CHARS};
use medchain_records::policy::GranteeKey;
use medchain_records::query::{self, PrescriptionView};
use medchain_records::{consent_active, Actor, Envelope, Transaction};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::access::patient_if_known;
use crate::error::{check_text, ApiError, ApiJson, ApiResult, ErrorBody};
use crate::extract::Pharmacy;
use crate::paging::record_cursor;
use crate::state::AppState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PrescriptionSearch {
    /// Either a patient who consented to this pharmacy...
    #[serde(default)]
    pub patient_id: Option<String>,
    /// ...or the prescription code the patient presents.
    #[serde(default)]
    pub code: Option<String>,
    /// With `patient_id`: the `next_cursor` of the previous page.
    #[serde(default)]
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PrescriptionList {
    #[schema(value_type = Vec<Object>)]
    pub prescriptions: Vec<PrescriptionView>,
    /// Pass as `cursor` (with the same `patient_id`) for the next page; null on the last.
    pub next_cursor: Option<String>,
}

/// Look up prescriptions. Each lookup is recorded in the patient's audit trail.
#[utoipa::path(post, path = "/api/prescriptions/search", request_body = PrescriptionSearch,
    responses((status = 200, body = PrescriptionList), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody)),
    security(("bearer" = [])), tag = "pharmacy")]
pub async fn search(
    State(s): State<AppState>,
    Pharmacy(ph): Pharmacy,
    ApiJson(req): ApiJson<PrescriptionSearch>,
) -> ApiResult<ApiJson<PrescriptionList>> {
    let now = s.now_ms();
    let me = ph.user.user_id.clone();
    let (patient_id, list, next) = match (req.patient_id, req.code, req.cursor) {
        (Some(pid), None, cursor) => {
            check_text("patient_id", &pid, USER_ID_MAX_CHARS, true)?;
            let after = record_cursor(cursor.as_deref())?;
            let keys = std::sync::Arc::clone(&s.inner.keys);
            s.read(move |c| {
                // An unknown patient is refused as one who did not consent.
                let known = patient_if_known(c, &pid)?.is_some();
                if !known || !consent_active(c, &pid, &GranteeKey::pharmacy(&me), now)? {
                    return Err(ApiError::forbidden(format!(
                        "{pid} has not consented to this pharmacy; ask for the prescription code"
                    )));
                }
                if let Some(h) = query::erased_at(c, &pid)? {
                    return Err(crate::access::erased(&pid, h));
                }
                let (list, next) = query::prescriptions_of_patient_after(
                    c,
                    keys.as_ref(),
                    &pid,
                    after.as_ref(),
                    query::MAX_PAGE,
                )?;
                Ok((pid, list, next.map(|n| n.encode())))
            })
            .await?
        }
        (None, Some(code), None) => {
            check_text("code", &code, CODE_MAX_CHARS, true)?;
            let keys = std::sync::Arc::clone(&s.inner.keys);
            s.read(
                move |c| match query::prescription_by_code(c, keys.as_ref(), &code)? {
                    Some(p) => match query::erased_at(c, &p.patient_id)? {
                        Some(h) => Err(crate::access::erased(&p.patient_id, h)),
                        None => Ok((p.patient_id.clone(), vec![p], None)),
                    },
                    None => Err(ApiError::not_found("no prescription with this code")),
                },
            )
            .await?
        }
        (None, Some(_), Some(_)) => {
            return Err(ApiError::invalid("cursor: only with patient_id").with_field("cursor"))
        }
        _ => return Err(ApiError::invalid("give exactly one of patient_id and code")),
    };
    let env = Envelope {
        actor: Actor::User(ph.user.user_id.clone()),
        tx: Transaction::AuditRead {
            patient: patient_id,
            action: "prescriptions".into(),
            reason: "dispensing".into(),
        },
    };
    s.commit(&env, Vec::new()).await?;
    Ok(ApiJson(PrescriptionList {
        prescriptions: list,
        next_cursor: next,
    }))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DispenseRequest {
    #[serde(default)]
    pub code: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DispenseResponse {
    pub record_id: String,
    pub block_height: u64,
    pub block_hash: String,
}

/// Record that a prescription was dispensed. The ledger refuses a second dispense (409),
/// also when two pharmacies try at once on different replicas.
#[utoipa::path(post, path = "/api/prescriptions/{record_id}/dispense",
    params(("record_id" = String, Path)), request_body = DispenseRequest,
    responses((status = 200, body = DispenseResponse), (status = 403, body = ErrorBody),
              (status = 409, body = ErrorBody)),
    security(("bearer" = [])), tag = "pharmacy")]
pub async fn dispense(
    State(s): State<AppState>,
    Pharmacy(ph): Pharmacy,
    Path(record_id): Path<String>,
    ApiJson(req): ApiJson<DispenseRequest>,
) -> ApiResult<ApiJson<DispenseResponse>> {
    check_text("record_id", &record_id, RECORD_ID_MAX_BYTES, true)?;
    // The ledger is given the code's proof, never the code (which opens the lines). A code
    // that does not name this prescription answers as a missing one, before the ledger
    // (which would refuse it alike).
    let on_ledger = match &req.code {
        None => None,
        Some(code) => {
            check_text("code", code, CODE_MAX_CHARS, true)?;
            let found = s.lookup(|c| Ok(query::prescription_code_on_ledger(c, code)?))?;
            match found {
                Some((id, on_ledger)) if id == record_id => Some(on_ledger),
                _ => return Err(ApiError::not_found("no prescription with this code")),
            }
        }
    };
    let env = Envelope {
        actor: Actor::User(ph.user.user_id.clone()),
        tx: Transaction::Dispense {
            record_id: record_id.clone(),
            code: on_ledger,
        },
    };
    let c = s.commit(&env, Vec::new()).await?;
    Ok(ApiJson(DispenseResponse {
        record_id,
        block_height: c.height,
        block_hash: c.block_hash.to_hex(),
    }))
}
