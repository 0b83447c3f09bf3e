//! The node's security log for the organisation's department administrators: who failed
//! to sign in, was refused or throttled, changed a password or was deactivated here.

use axum::extract::{Query, State};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::error::{ApiError, ApiJson, ApiResult, ErrorBody};
use crate::extract::Department;
use crate::security_log::{SecurityPage, SECURITY_LOG_PAGE_MAX};
use crate::state::AppState;

#[derive(Debug, Clone, Copy, Default, Deserialize, IntoParams)]
pub struct SecurityLogParams {
    /// `next_cursor` of the previous page: events older than it.
    pub cursor: Option<u64>,
    /// Events to return (1 to 200, default 50).
    pub limit: Option<u32>,
}

/// The security log of this node, newest first, for department administrators of the
/// organisation that runs it.
#[utoipa::path(get, path = "/api/security_log", params(SecurityLogParams),
    responses((status = 200, body = SecurityPage), (status = 403, body = ErrorBody)),
    security(("bearer" = [])), tag = "department")]
pub async fn security_log(
    State(s): State<AppState>,
    Department(d): Department,
    Query(q): Query<SecurityLogParams>,
) -> ApiResult<ApiJson<SecurityPage>> {
    if d.user.organisation != s.inner.replica {
        return Err(ApiError::forbidden(
            "only this node's organisation may read its security log",
        ));
    }
    let limit = q
        .limit
        .map_or(50, |l| l as usize)
        .min(SECURITY_LOG_PAGE_MAX);
    let s2 = s.clone();
    tokio::task::spawn_blocking(move || s2.inner.security.page(q.cursor, limit))
        .await
        .map_err(ApiError::internal)?
        .map(ApiJson)
        .map_err(ApiError::internal)
}
