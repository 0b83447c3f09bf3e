//! What a patient controls: consent (grant, revoke, one-time codes) and the audit trail of
//! who read their data. The department sees its own audit and break-glass events here too.

use axum::extract::{OriginalUri, Query, State};
use medchain_records::limits::{CONSENT_CODE_TTL_MS, USER_ID_MAX_CHARS};
use medchain_records::query::{self, AuditView, BreakGlassView, ConsentView, DepartmentRef};
use medchain_records::tx::consent_code_hash;
use medchain_records::{Actor, Envelope, Grantee, Transaction};
use medchain_types::UserRole;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{check_text, ApiError, ApiJson, ApiResult, ErrorBody};
use crate::extract::{Patient, Session};
use crate::paging::{next_of, NextLink};
use crate::routes::{random_code, Done, PageParams};
use crate::state::AppState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsentRequest {
    /// "doctor", "department" or "pharmacy".
    pub grantee_kind: String,
    pub grantee_id: String,
    /// For a department: its organisation (default: the patient's own). Departments
    /// are named per organisation.
    #[serde(default)]
    pub grantee_organisation: Option<u16>,
    /// Optional expiry (Unix milliseconds), in the future.
    #[serde(default)]
    pub expires_at_ms: Option<u64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeRequest {
    pub grantee_kind: String,
    pub grantee_id: String,
    /// For a department: its organisation (default: the patient's own).
    #[serde(default)]
    pub grantee_organisation: Option<u16>,
}

fn grantee(kind: &str, id: &str, organisation: Option<u16>) -> ApiResult<Grantee> {
    check_text("grantee_id", id, USER_ID_MAX_CHARS, true)?;
    if organisation.is_some() && kind != "department" {
        return Err(
            ApiError::invalid("grantee_organisation: for departments only")
                .with_field("grantee_organisation"),
        );
    }
    match kind {
        "doctor" => Ok(Grantee::Doctor(id.into())),
        "department" => Ok(match organisation {
            None => Grantee::Department(id.into()),
            Some(organisation) => Grantee::DepartmentOf {
                organisation,
                department: id.into(),
            },
        }),
        "pharmacy" => Ok(Grantee::Pharmacy(id.into())),
        _ => Err(ApiError::invalid(
            "grantee_kind: one of doctor, department, pharmacy",
        )),
    }
}

/// The patient's consents (active and past).
#[utoipa::path(get, path = "/api/consents",
    responses((status = 200, body = Vec<Object>)), security(("bearer" = [])), tag = "consent")]
pub async fn list_consents(
    State(s): State<AppState>,
    Patient(p): Patient,
) -> ApiResult<ApiJson<Vec<ConsentView>>> {
    let now = s.now_ms();
    s.read(move |c| {
        Ok(ApiJson(query::consents_of_patient(
            c,
            &p.user.user_id,
            now,
        )?))
    })
    .await
}

/// Grant consent to a doctor, a department or a pharmacy, optionally until a time.
#[utoipa::path(post, path = "/api/consents", request_body = ConsentRequest,
    responses((status = 200, body = Done), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])), tag = "consent")]
pub async fn grant_consent(
    State(s): State<AppState>,
    Patient(p): Patient,
    ApiJson(req): ApiJson<ConsentRequest>,
) -> ApiResult<ApiJson<Done>> {
    let g = grantee(&req.grantee_kind, &req.grantee_id, req.grantee_organisation)?;
    if req.expires_at_ms.is_some_and(|e| e <= s.now_ms()) {
        return Err(ApiError::invalid("expires_at_ms: must be in the future"));
    }
    let env = Envelope {
        actor: Actor::User(p.user.user_id.clone()),
        tx: Transaction::GrantConsent {
            grantee: g,
            expires_at_ms: req.expires_at_ms,
        },
    };
    let c = s.commit(&env, Vec::new()).await?;
    Ok(ApiJson(Done {
        ok: true,
        block_height: c.height,
    }))
}

/// Revoke a consent.
#[utoipa::path(post, path = "/api/consents/revoke", request_body = RevokeRequest,
    responses((status = 200, body = Done), (status = 404, body = ErrorBody)),
    security(("bearer" = [])), tag = "consent")]
pub async fn revoke_consent(
    State(s): State<AppState>,
    Patient(p): Patient,
    ApiJson(req): ApiJson<RevokeRequest>,
) -> ApiResult<ApiJson<Done>> {
    let g = grantee(&req.grantee_kind, &req.grantee_id, req.grantee_organisation)?;
    let env = Envelope {
        actor: Actor::User(p.user.user_id.clone()),
        tx: Transaction::RevokeConsent { grantee: g },
    };
    let c = s.commit(&env, Vec::new()).await?;
    Ok(ApiJson(Done {
        ok: true,
        block_height: c.height,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConsentCode {
    /// Give this to one doctor: it lets them add one record, once, within 5 minutes.
    pub code: String,
    pub expires_at_ms: u64,
}

/// Generate a one-time consent code (valid 5 minutes, single use).
#[utoipa::path(post, path = "/api/consent_codes",
    responses((status = 200, body = ConsentCode)), security(("bearer" = [])), tag = "consent")]
pub async fn create_consent_code(
    State(s): State<AppState>,
    Patient(p): Patient,
) -> ApiResult<ApiJson<ConsentCode>> {
    let code = random_code(10);
    let env = Envelope {
        actor: Actor::User(p.user.user_id.clone()),
        tx: Transaction::CreateConsentCode {
            code_hash: consent_code_hash(&p.user.user_id, &code),
        },
    };
    let c = s.commit(&env, Vec::new()).await?;
    // The ledger's clock (the block's timestamp) starts the 5 minutes.
    let db = s.inner.db_path.clone();
    let ts = s
        .read(move |_| {
            let r = medchain_store::Reader::open(&db).map_err(ApiError::internal)?;
            Ok(r.block(c.height)
                .map_err(ApiError::internal)?
                .map_or(0, |b| b.header.timestamp_ms))
        })
        .await?;
    Ok(ApiJson(ConsentCode {
        code,
        expires_at_ms: ts + CONSENT_CODE_TTL_MS,
    }))
}

/// Who read the data: a patient sees reads of their own data; a department sees reads of
/// its patients' data.
#[utoipa::path(get, path = "/api/audit", params(PageParams),
    responses((status = 200, body = Vec<Object>), (status = 403, body = ErrorBody)),
    security(("bearer" = [])), tag = "audit")]
pub async fn audit(
    State(s): State<AppState>,
    who: Session,
    OriginalUri(uri): OriginalUri,
    Query(params): Query<PageParams>,
) -> ApiResult<(NextLink, ApiJson<Vec<AuditView>>)> {
    let page = params.page();
    let keys = std::sync::Arc::clone(&s.inner.keys);
    let entries = match who.user.role {
        UserRole::Patient => {
            s.read(move |c| {
                Ok(query::audit_of_patient(
                    c,
                    keys.as_ref(),
                    &who.user.user_id,
                    page,
                )?)
            })
            .await?
        }
        UserRole::Department => {
            s.read(move |c| {
                Ok(query::audit_of_department(
                    c,
                    keys.as_ref(),
                    DepartmentRef {
                        organisation: who.user.organisation,
                        department: &who.user.department,
                    },
                    page,
                )?)
            })
            .await?
        }
        _ => {
            return Err(ApiError::forbidden(
                "the audit trail is for the patient and the department",
            ))
        }
    };
    Ok((next_of(&uri, params, &entries), ApiJson(entries.items)))
}

/// Break-glass events: a patient's own, or a department's (a department's read is audited
/// for each distinct patient on the page).
#[utoipa::path(get, path = "/api/break_glass", params(PageParams),
    responses((status = 200, body = Vec<Object>), (status = 403, body = ErrorBody)),
    security(("bearer" = [])), tag = "audit")]
pub async fn break_glass_events(
    State(s): State<AppState>,
    who: Session,
    OriginalUri(uri): OriginalUri,
    Query(params): Query<PageParams>,
) -> ApiResult<(NextLink, ApiJson<Vec<BreakGlassView>>)> {
    let page = params.page();
    let keys = std::sync::Arc::clone(&s.inner.keys);
    let events = match who.user.role {
        UserRole::Patient => {
            s.read(move |c| {
                Ok(query::break_glass_of_patient(
                    c,
                    keys.as_ref(),
                    &who.user.user_id,
                    page,
                )?)
            })
            .await?
        }
        UserRole::Department => {
            let dept = who.user.department.clone();
            let organisation = who.user.organisation;
            let events = s
                .read(move |c| {
                    let at = DepartmentRef {
                        organisation,
                        department: &dept,
                    };
                    Ok(query::break_glass_of_department(
                        c,
                        keys.as_ref(),
                        at,
                        page,
                    )?)
                })
                .await?;
            crate::audit::audit_department_read(
                &s,
                &who.user.user_id,
                events.items.iter().map(|e| e.patient_id.as_str()),
                "break_glass_events",
            )
            .await?;
            events
        }
        _ => {
            return Err(ApiError::forbidden(
                "break-glass events are shown to the patient and the department",
            ))
        }
    };
    Ok((next_of(&uri, params, &events), ApiJson(events.items)))
}
