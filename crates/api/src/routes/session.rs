//! Sign-in, token refresh, password change, logout and "who am I".

use axum::body::Bytes;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use medchain_records::UserRow;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::{Issued, Refreshed, TokenScope, MAX_PASSWORD_CHARS};
use crate::error::{ApiError, ApiJson, ApiResult, ErrorBody};
use crate::extract::{PasswordSession, Session};
use crate::mfa::Factor;
use crate::security_log::{client_addr, SecurityEvent, SecurityEventKind, Subject};
use crate::state::AppState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
    /// The current code of the user's authenticator app, or one of their recovery codes;
    /// required once two-step sign-in is set up (401 `mfa_required` without it).
    #[serde(default)]
    pub totp: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LoginResponse {
    pub token: String,
    pub role: String,
    pub user_id: String,
    /// Seconds until `token` expires.
    pub expires_in: u64,
    /// Exchange at `/api/token/refresh` for a new token (single use: a second use ends
    /// the session).
    pub refresh_token: String,
    pub display_name: String,
    pub department: String,
    /// The password was set by an administrator: `token` only opens `POST /api/password`
    /// (every other route answers 403 `password_change_required`).
    pub password_change_required: bool,
    /// This node requires two-step sign-in for the user's role and it is not set up:
    /// `token` only opens `/api/mfa/totp/enroll` and `/api/mfa/totp/confirm`.
    pub mfa_setup_required: bool,
}

impl LoginResponse {
    fn new(issued: Issued, user: UserRow) -> LoginResponse {
        LoginResponse {
            password_change_required: issued.claims.scope == TokenScope::PasswordChange,
            mfa_setup_required: issued.claims.scope == TokenScope::MfaSetup,
            token: issued.token,
            role: user.role.as_str().into(),
            user_id: user.user_id,
            expires_in: issued.expires_in,
            refresh_token: issued.refresh_token,
            display_name: user.display_name,
            department: user.department,
        }
    }
}

/// The peer address, when the server was started with connect info (tests without a
/// socket have none, and are throttled per account only).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub Option<std::net::IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(client_addr(&parts.extensions)))
    }
}

/// A refused sign-in, noted for the security log: the account is named only if it
/// exists here (an unknown name may be a password typed in the wrong field).
fn login_refused(
    s: &AppState,
    subject: &Subject,
    username: &str,
    addr: Option<std::net::IpAddr>,
    e: ApiError,
) -> ApiError {
    let known = s.inner.auth.has_credentials(username).unwrap_or(false);
    if known {
        subject.set(username);
    }
    if e.status == StatusCode::UNAUTHORIZED {
        let detail = if known {
            "wrong password"
        } else {
            "unknown account"
        };
        s.inner.security.record(
            SecurityEvent::new(SecurityEventKind::LoginFailed, s.now_ms())
                .user(known.then_some(username))
                .addr(addr)
                .path("/api/login")
                .status(e.status)
                .detail(detail),
        );
    }
    e
}

/// A wrong, replayed or throttled code, for the security log.
pub(crate) fn record_mfa_failure(
    s: &AppState,
    user_id: &str,
    addr: Option<std::net::IpAddr>,
    path: &str,
    e: &ApiError,
) {
    s.inner.security.record(
        SecurityEvent::new(SecurityEventKind::MfaFailed, s.now_ms())
            .user(Some(user_id))
            .addr(addr)
            .path(path)
            .status(e.status)
            .detail(e.code),
    );
}

/// Sign in with a username and password. Throttled (429 with `Retry-After`) per account
/// and per client address.
#[utoipa::path(post, path = "/api/login", request_body = LoginRequest,
    responses((status = 200, body = LoginResponse), (status = 401, body = ErrorBody),
              (status = 429, body = ErrorBody)), tag = "session")]
pub async fn login(
    State(s): State<AppState>,
    ClientAddr(addr): ClientAddr,
    subject: Subject,
    ApiJson(req): ApiJson<LoginRequest>,
) -> ApiResult<ApiJson<LoginResponse>> {
    if req.username.is_empty() || req.username.len() > 64 {
        return Err(ApiError::invalid("username: 1 to 64 characters"));
    }
    if req.password.is_empty() || req.password.chars().count() > MAX_PASSWORD_CHARS {
        return Err(ApiError::invalid("password: 1 to 128 characters"));
    }
    let now = s.now_ms();
    let s2 = s.clone();
    let (u, p) = (req.username.clone(), req.password);
    // Argon2 is deliberately slow: keep it off the async threads.
    let checked =
        tokio::task::spawn_blocking(move || s2.inner.auth.check_password(&u, &p, addr, now))
            .await
            .map_err(ApiError::internal)?;
    let credential = checked.map_err(|e| login_refused(&s, &subject, &req.username, addr, e))?;
    let uid = req.username.clone();
    let user = s
        .read(move |c| Ok(medchain_records::user(c, &uid)?))
        .await?
        .filter(|u| u.active)
        .ok_or_else(|| ApiError::unauthorized("wrong username or password"))?;
    crate::access::signs_in_here(&user, s.inner.replica)?;
    // The password was right; an enrolled user also needs a code (or a recovery code).
    let mfa = &s.inner.mfa;
    if mfa.factor(&user.user_id)? == Factor::Enrolled {
        let Some(code) = req.totp.as_deref() else {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "mfa_required",
                "enter the code from your authenticator app (field \"totp\")",
            ));
        };
        if let Err(e) = mfa.verify(&user.user_id, code, true, now) {
            record_mfa_failure(&s, &user.user_id, addr, "/api/login", &e);
            return Err(e);
        }
    }
    let issued = s.inner.auth.start_session(
        &user.user_id,
        user.role.as_str(),
        credential.must_change,
        mfa.setup_pending(&user.user_id, user.role)?,
        now,
    )?;
    Ok(ApiJson(LoginResponse::new(issued, s.with_shown_name(user))))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

/// Exchange a refresh token for a new access token and refresh token. A refresh token
/// used a second time ends its whole session (401).
#[utoipa::path(post, path = "/api/token/refresh", request_body = RefreshRequest,
    responses((status = 200, body = LoginResponse), (status = 401, body = ErrorBody)), tag = "session")]
pub async fn refresh(
    State(s): State<AppState>,
    ClientAddr(addr): ClientAddr,
    ApiJson(req): ApiJson<RefreshRequest>,
) -> ApiResult<ApiJson<LoginResponse>> {
    if req.refresh_token.len() > 128 {
        return Err(ApiError::unauthorized("invalid or expired refresh token"));
    }
    let now = s.now_ms();
    let mut session = match s.inner.auth.refresh(&req.refresh_token, now)? {
        Refreshed::Granted(session) => session,
        Refreshed::Reused { user_id } => {
            s.inner.security.record(
                SecurityEvent::new(SecurityEventKind::RefreshReused, now)
                    .user(Some(&user_id))
                    .addr(addr)
                    .path("/api/token/refresh")
                    .status(StatusCode::UNAUTHORIZED)
                    .detail("refresh token used twice; session ended"),
            );
            return Err(ApiError::unauthorized(
                "refresh token already used; the session was ended",
            ));
        }
    };
    let uid = session.user_id.clone();
    let user = s
        .read(move |c| Ok(medchain_records::user(c, &uid)?))
        .await?
        .filter(|u| u.active)
        .ok_or_else(|| ApiError::unauthorized("account is not active"))?;
    session.mfa_setup = s.inner.mfa.setup_pending(&user.user_id, user.role)?;
    let issued = s.inner.auth.issue(&session, user.role.as_str(), now)?;
    Ok(ApiJson(LoginResponse::new(issued, s.with_shown_name(user))))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChangeRequest {
    pub current_password: String,
    /// 8 to 128 characters, different from the current one.
    pub new_password: String,
}

/// Change your own password (every role; also the only route a token issued for an
/// administrator-set password opens). Every other session and refresh token of the
/// user ends; this session continues with the tokens returned. A wrong current password
/// is 403 and counts as a failed sign-in (throttled, 429).
#[utoipa::path(post, path = "/api/password", request_body = PasswordChangeRequest,
    responses((status = 200, body = LoginResponse), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 422, body = ErrorBody),
              (status = 429, body = ErrorBody)),
    security(("bearer" = [])), tag = "session")]
pub async fn change_password(
    State(s): State<AppState>,
    ClientAddr(addr): ClientAddr,
    PasswordSession(who): PasswordSession,
    ApiJson(req): ApiJson<PasswordChangeRequest>,
) -> ApiResult<ApiJson<LoginResponse>> {
    let n = req.current_password.chars().count();
    if n == 0 || n > MAX_PASSWORD_CHARS {
        return Err(ApiError::invalid("current_password: 1 to 128 characters")
            .with_field("current_password"));
    }
    let now = s.now_ms();
    let (s2, claims) = (s.clone(), who.claims.clone());
    let mfa_setup = s
        .inner
        .mfa
        .setup_pending(&who.user.user_id, who.user.role)?;
    let issued = tokio::task::spawn_blocking(move || {
        s2.inner.auth.change_password(
            &claims,
            &req.current_password,
            &req.new_password,
            addr,
            mfa_setup,
            now,
        )
    })
    .await
    .map_err(ApiError::internal)??;
    s.inner.security.record(
        SecurityEvent::new(SecurityEventKind::PasswordChanged, now)
            .user(Some(&who.user.user_id))
            .addr(addr)
            .path("/api/password")
            .detail("other sessions ended"),
    );
    Ok(ApiJson(LoginResponse::new(
        issued,
        s.with_shown_name(who.user),
    )))
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
    let shown_name = s.with_shown_name(who.user.clone()).display_name;
    ApiJson(Me {
        user_id: who.user.user_id,
        role: who.user.role.as_str().into(),
        display_name: shown_name,
        department: who.user.department,
        organisation: who.user.organisation,
        organisation_name,
        token_expires_at: who.claims.exp,
    })
}
