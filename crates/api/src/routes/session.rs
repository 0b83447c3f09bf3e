//! Login, token refresh, logout and "who am I".

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{ApiError, ApiJson, ApiResult, ErrorBody};
use crate::extract::Session;
use crate::state::AppState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LoginResponse {
    pub token: String,
    pub role: String,
    pub user_id: String,
    /// Seconds until `token` expires.
    pub expires_in: u64,
    /// Exchange at `/api/token/refresh` for a new token (single use).
    pub refresh_token: String,
    pub display_name: String,
    pub department: String,
}

/// The peer address, when the server was started with connect info (tests without a
/// socket have none, and are throttled per account only).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub Option<std::net::IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(a)| a.ip()),
        ))
    }
}

/// Sign in with a username and password.
#[utoipa::path(post, path = "/api/login", request_body = LoginRequest,
    responses((status = 200, body = LoginResponse), (status = 401, body = ErrorBody),
              (status = 429, body = ErrorBody)), tag = "session")]
pub async fn login(
    State(s): State<AppState>,
    ClientAddr(addr): ClientAddr,
    ApiJson(req): ApiJson<LoginRequest>,
) -> ApiResult<ApiJson<LoginResponse>> {
    if req.username.is_empty() || req.username.len() > 64 {
        return Err(ApiError::invalid("username: 1 to 64 characters"));
    }
    if req.password.is_empty() || req.password.chars().count() > crate::auth::MAX_PASSWORD_CHARS {
        return Err(ApiError::invalid("password: 1 to 128 characters"));
    }
    let now = s.now_ms();
    let s2 = s.clone();
    let (u, p) = (req.username.clone(), req.password);
    // Argon2 is deliberately slow: keep it off the async threads.
    tokio::task::spawn_blocking(move || s2.inner.auth.check_password(&u, &p, addr, now))
        .await
        .map_err(ApiError::internal)??;
    let uid = req.username.clone();
    let user = s
        .read(move |c| Ok(medchain_records::user(c, &uid)?))
        .await?
        .filter(|u| u.active)
        .ok_or_else(|| ApiError::unauthorized("wrong username or password"))?;
    crate::access::signs_in_here(&user, s.inner.replica)?;
    let issued = s.inner.auth.issue(&user.user_id, user.role.as_str(), now)?;
    Ok(ApiJson(LoginResponse {
        token: issued.token,
        role: user.role.as_str().into(),
        user_id: user.user_id,
        expires_in: issued.expires_in,
        refresh_token: issued.refresh_token,
        display_name: user.display_name,
        department: user.department,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

/// Exchange a refresh token for a new access token and refresh token.
#[utoipa::path(post, path = "/api/token/refresh", request_body = RefreshRequest,
    responses((status = 200, body = LoginResponse), (status = 401, body = ErrorBody)), tag = "session")]
pub async fn refresh(
    State(s): State<AppState>,
    ApiJson(req): ApiJson<RefreshRequest>,
) -> ApiResult<ApiJson<LoginResponse>> {
    if req.refresh_token.len() > 128 {
        return Err(ApiError::unauthorized("invalid or expired refresh token"));
    }
    let now = s.now_ms();
    let (uid, _) = s.inner.auth.refresh(&req.refresh_token, now)?;
    let user = s
        .read(move |c| Ok(medchain_records::user(c, &uid)?))
        .await?
        .filter(|u| u.active)
        .ok_or_else(|| ApiError::unauthorized("account is not active"))?;
    let issued = s.inner.auth.issue(&user.user_id, user.role.as_str(), now)?;
    Ok(ApiJson(LoginResponse {
        token: issued.token,
        role: user.role.as_str().into(),
        user_id: user.user_id,
        expires_in: issued.expires_in,
        refresh_token: issued.refresh_token,
        display_name: user.display_name,
        department: user.department,
    }))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LogoutRequest {
    #[serde(default)]
    pub refresh_token: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LoggedOut {
    pub ok: bool,
}

/// Revoke this token (and the refresh token, if given).
#[utoipa::path(post, path = "/api/logout", request_body = LogoutRequest,
    responses((status = 200, body = LoggedOut), (status = 401, body = ErrorBody)),
    security(("bearer" = [])), tag = "session")]
pub async fn logout(
    State(s): State<AppState>,
    who: Session,
    body: Bytes,
) -> ApiResult<ApiJson<LoggedOut>> {
    // The body is optional: an empty one logs out the access token only.
    let rt = if body.is_empty() {
        None
    } else {
        serde_json::from_slice::<LogoutRequest>(&body)
            .map_err(|e| ApiError::invalid(e.to_string()))?
            .refresh_token
    };
    s.inner
        .auth
        .logout(&who.claims, rt.as_deref(), s.now_ms())?;
    Ok(ApiJson(LoggedOut { ok: true }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    pub user_id: String,
    pub role: String,
    pub display_name: String,
    pub department: String,
    pub organisation: u16,
    pub organisation_name: String,
    pub token_expires_at: u64,
}

/// The signed-in user.
#[utoipa::path(get, path = "/api/me", responses((status = 200, body = Me), (status = 401, body = ErrorBody)),
    security(("bearer" = [])), tag = "session")]
pub async fn me(State(s): State<AppState>, who: Session) -> ApiJson<Me> {
    let organisation_name = s
        .inner
        .genesis
        .replicas
        .get(usize::from(who.user.organisation))
        .map(|r| r.organisation.clone())
        .unwrap_or_default();
    ApiJson(Me {
        user_id: who.user.user_id,
        role: who.user.role.as_str().into(),
        display_name: who.user.display_name,
        department: who.user.department,
        organisation: who.user.organisation,
        organisation_name,
        token_expires_at: who.claims.exp,
    })
}
