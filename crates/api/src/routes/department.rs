//! The department administrator: registers and deactivates its doctors and patients (and
//! pharmacies), and sees its department's record metadata.

use axum::extract::{OriginalUri, Path, Query, State};
use medchain_records::limits::{DISPLAY_NAME_MAX_CHARS, SEARCH_MAX_CHARS, USER_ID_MAX_CHARS};
use medchain_records::query::{self, ActivityView, DepartmentRef, UserView};
use medchain_records::{Actor, Envelope, Transaction};
use medchain_types::UserRole;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::audit::audit_department_read;
use crate::error::{check_name, check_text, ApiError, ApiJson, ApiResult, ErrorBody};
use crate::extract::Department;
use crate::paging::{next_of, NextLink};
use crate::routes::Done;
use crate::routes::PageParams;
use crate::state::AppState;

#[derive(Debug, Deserialize, IntoParams)]
pub struct UserSearch {
    pub role: Option<String>,
    pub search: Option<String>,
    pub offset: Option<u32>,
    pub limit: Option<u32>,
}

/// The department's users (pharmacies are listed by organisation-wide search).
#[utoipa::path(get, path = "/api/users", params(UserSearch),
    responses((status = 200, body = Vec<Object>)), security(("bearer" = [])), tag = "department")]
pub async fn list_users(
    State(s): State<AppState>,
    Department(d): Department,
    OriginalUri(uri): OriginalUri,
    Query(q): Query<UserSearch>,
) -> ApiResult<(NextLink, ApiJson<Vec<UserView>>)> {
    if let Some(r) = &q.role {
        if !["doctor", "patient", "pharmacy", "department"].contains(&r.as_str()) {
            return Err(ApiError::invalid(
                "role: one of doctor, patient, pharmacy, department",
            ));
        }
    }
    if let Some(t) = &q.search {
        check_text("search", t, SEARCH_MAX_CHARS, false)?;
    }
    let params = PageParams {
        offset: q.offset,
        limit: q.limit,
    };
    let page = params.page();
    let dept = (q.role.as_deref() != Some("pharmacy")).then(|| d.user.department.clone());
    let organisation = d.user.organisation;
    let keys = std::sync::Arc::clone(&s.inner.keys);
    let users = s
        .read(move |c| {
            crate::user_search::users(
                c,
                &keys,
                dept.as_deref().map(|department| DepartmentRef {
                    organisation,
                    department,
                }),
                q.role.as_deref(),
                q.search.as_deref(),
                page,
            )
        })
        .await?;
    Ok((next_of(&uri, params, &users), ApiJson(users.items)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    pub user_id: String,
    /// "doctor", "patient" or "pharmacy".
    pub role: String,
    pub display_name: String,
    /// Initial password, stored (Argon2id) on this node only.
    pub password: String,
}

/// Register a doctor or patient of the department, or a pharmacy. The user can then sign
/// in at this node.
#[utoipa::path(post, path = "/api/users", request_body = RegisterRequest,
    responses((status = 200, body = Done), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])), tag = "department")]
pub async fn register(
    State(s): State<AppState>,
    Department(d): Department,
    ApiJson(req): ApiJson<RegisterRequest>,
) -> ApiResult<ApiJson<Done>> {
    if !medchain_types::genesis::valid_user_id(&req.user_id) {
        return Err(ApiError::invalid(
            "user_id: 1 to 64 letters, digits, '-', '_' or '.'",
        ));
    }
    let role = match req.role.as_str() {
        "doctor" => UserRole::Doctor,
        "patient" => UserRole::Patient,
        "pharmacy" => UserRole::Pharmacy,
        _ => return Err(ApiError::invalid("role: one of doctor, patient, pharmacy")),
    };
    check_name("display_name", &req.display_name, DISPLAY_NAME_MAX_CHARS)?;
    crate::auth::check_password_rules(&req.password)?;
    let department = if role == UserRole::Pharmacy {
        "pharmacy".to_string()
    } else {
        d.user.department.clone()
    };
    // The password hash is stored before the registration commits, so the user can sign
    // in as soon as the answer arrives; an orphan hash for a refused id is harmless.
    let (uid, pw) = (req.user_id.clone(), req.password.clone());
    let auth_state = s.clone();
    let exists = s
        .read({
            let uid = uid.clone();
            move |c| Ok(medchain_records::user(c, &uid)?.is_some())
        })
        .await?;
    if exists {
        return Err(ApiError::conflict(format!("user {uid} already exists")));
    }
    tokio::task::spawn_blocking(move || auth_state.inner.auth.set_password(&uid, &pw))
        .await
        .map_err(ApiError::internal)??;
    // A patient's name is sealed under the data key made for them here, before it
    // reaches the ledger; the key's first copy is published right after the
    // registration commits.
    let first_key =
        (role == UserRole::Patient && s.inner.keys.encrypts()).then(medchain_seal::DataKey::random);
    let display_name = match &first_key {
        Some(key) => medchain_records::sealed::seal_name(key, 0, &req.user_id, &req.display_name)
            .map_err(ApiError::internal)?,
        None => req.display_name,
    };
    let patient = req.user_id.clone();
    let env = Envelope {
        actor: Actor::User(d.user.user_id.clone()),
        tx: Transaction::RegisterUser {
            user_id: req.user_id,
            role,
            department,
            display_name,
        },
    };
    let registering = first_key.is_some() && s.inner.keys.start_registering(&patient);
    let committed = s.commit(&env, Vec::new()).await;
    let published = match (&committed, first_key) {
        (Ok(_), Some(key)) => crate::key_steward::first_key_with(&s, &patient, key).await,
        _ => Ok(()),
    };
    if registering {
        s.inner.keys.done_registering(&patient);
    }
    let c = committed?;
    published?;
    Ok(ApiJson(Done {
        ok: true,
        block_height: c.height,
    }))
}

/// Deactivate a doctor or patient of the department.
#[utoipa::path(post, path = "/api/users/{user_id}/deactivate",
    params(("user_id" = String, Path)),
    responses((status = 200, body = Done), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])), tag = "department")]
pub async fn deactivate(
    State(s): State<AppState>,
    Department(d): Department,
    Path(user_id): Path<String>,
) -> ApiResult<ApiJson<Done>> {
    check_text("user_id", &user_id, USER_ID_MAX_CHARS, true)?;
    let detail = format!("deactivated {user_id}");
    let env = Envelope {
        actor: Actor::User(d.user.user_id.clone()),
        tx: Transaction::DeactivateUser { user_id },
    };
    let c = s.commit(&env, Vec::new()).await?;
    s.inner.security.record(
        crate::security_log::SecurityEvent::new(
            crate::security_log::SecurityEventKind::Deactivated,
            s.now_ms(),
        )
        .user(Some(&d.user.user_id))
        .detail(&detail),
    );
    Ok(ApiJson(Done {
        ok: true,
        block_height: c.height,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Activity {
    pub department: String,
    #[schema(value_type = Vec<Object>)]
    pub records: Vec<ActivityView>,
}

/// The department's records, metadata only (who, whom, when; no clinical content). Each
/// distinct patient on the page gets an audit entry before the page is served.
#[utoipa::path(get, path = "/api/department/activity", params(PageParams),
    responses((status = 200, body = Activity)), security(("bearer" = [])), tag = "department")]
pub async fn activity(
    State(s): State<AppState>,
    Department(d): Department,
    OriginalUri(uri): OriginalUri,
    Query(params): Query<PageParams>,
) -> ApiResult<(NextLink, ApiJson<Activity>)> {
    let page = params.page();
    let dept = d.user.department.clone();
    let organisation = d.user.organisation;
    let (activity, next) = s
        .read(move |c| {
            let at = DepartmentRef {
                organisation,
                department: &dept,
            };
            let page = query::department_activity(c, at, page)?;
            let next = next_of(&uri, params, &page);
            Ok((
                Activity {
                    records: page.items,
                    department: dept,
                },
                next,
            ))
        })
        .await?;
    audit_department_read(
        &s,
        &d.user.user_id,
        activity.records.iter().map(|r| r.patient_id.as_str()),
        "department_activity",
    )
    .await?;
    Ok((next, ApiJson(activity)))
}
