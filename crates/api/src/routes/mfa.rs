//! Two-step sign-in: enrolment (a secret and its QR code), confirmation with a first code
//! (which returns the recovery codes, once), the user's status, turning it off, and the
//! step-up check that emergency access calls.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{ApiError, ApiJson, ApiResult, ErrorBody};
use crate::extract::{MfaSetupSession, Session};
use crate::mfa::Factor;
use crate::routes::session::{record_mfa_failure, ClientAddr};
use crate::security_log::{SecurityEvent, SecurityEventKind};
use crate::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct EnrollResponse {
    /// Base32, for typing into an authenticator app.
    pub secret: String,
    pub otpauth_uri: String,
    /// The same URI as a QR code (an SVG document).
    pub qr_svg: String,
}

/// Start setting up two-step sign-in: a new secret, not in force until confirmed. Shown
/// once; a new call replaces an unconfirmed secret. 409 when already set up.
#[utoipa::path(post, path = "/api/mfa/totp/enroll",
    responses((status = 200, body = EnrollResponse), (status = 409, body = ErrorBody)),
    security(("bearer" = [])), tag = "mfa")]
pub async fn enroll(
    State(s): State<AppState>,
    MfaSetupSession(who): MfaSetupSession,
) -> ApiResult<ApiJson<EnrollResponse>> {
    let e = s.inner.mfa.enroll(&who.user.user_id, s.now_ms())?;
    Ok(ApiJson(EnrollResponse {
        secret: e.secret,
        otpauth_uri: e.otpauth_uri,
        qr_svg: e.qr_svg,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeRequest {
    /// The 6-digit code the authenticator app shows now.
    pub code: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConfirmResponse {
    /// Ten single-use codes for when the phone is lost; shown this once.
    pub recovery_codes: Vec<String>,
    /// Sign in again (with a code) for a full session.
    pub sign_in_again: bool,
}

/// Confirm the enrolment with the app's first code: from now on sign-in needs a code.
#[utoipa::path(post, path = "/api/mfa/totp/confirm", request_body = CodeRequest,
    responses((status = 200, body = ConfirmResponse), (status = 401, body = ErrorBody),
              (status = 409, body = ErrorBody)),
    security(("bearer" = [])), tag = "mfa")]
pub async fn confirm(
    State(s): State<AppState>,
    ClientAddr(addr): ClientAddr,
    MfaSetupSession(who): MfaSetupSession,
    ApiJson(req): ApiJson<CodeRequest>,
) -> ApiResult<ApiJson<ConfirmResponse>> {
    let now = s.now_ms();
    let uid = &who.user.user_id;
    let codes = s.inner.mfa.confirm(uid, &req.code, now).inspect_err(|e| {
        record_mfa_failure(&s, uid, addr, "/api/mfa/totp/confirm", e);
    })?;
    s.inner.security.record(
        SecurityEvent::new(SecurityEventKind::MfaChanged, now)
            .user(Some(uid))
            .addr(addr)
            .path("/api/mfa/totp/confirm")
            .detail("two-step sign-in set up"),
    );
    Ok(ApiJson(ConfirmResponse {
        recovery_codes: codes,
        sign_in_again: true,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MfaStatus {
    pub enrolled: bool,
    /// This node requires it for the user's role.
    pub required: bool,
}

/// Whether two-step sign-in is set up, and whether this node requires it.
#[utoipa::path(get, path = "/api/mfa",
    responses((status = 200, body = MfaStatus)), security(("bearer" = [])), tag = "mfa")]
pub async fn status(
    State(s): State<AppState>,
    MfaSetupSession(who): MfaSetupSession,
) -> ApiResult<ApiJson<MfaStatus>> {
    let mfa = &s.inner.mfa;
    Ok(ApiJson(MfaStatus {
        enrolled: mfa.factor(&who.user.user_id)? == Factor::Enrolled,
        required: mfa.required_for_staff && crate::mfa::is_staff(who.user.role),
    }))
}

/// Turn two-step sign-in off, proven with a current code. Refused (403) where this node
/// requires it for the user's role.
#[utoipa::path(post, path = "/api/mfa/totp/disable", request_body = CodeRequest,
    responses((status = 200, body = MfaStatus), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody)),
    security(("bearer" = [])), tag = "mfa")]
pub async fn disable(
    State(s): State<AppState>,
    ClientAddr(addr): ClientAddr,
    who: Session,
    ApiJson(req): ApiJson<CodeRequest>,
) -> ApiResult<ApiJson<MfaStatus>> {
    let mfa = &s.inner.mfa;
    let uid = &who.user.user_id;
    if mfa.required_for_staff && crate::mfa::is_staff(who.user.role) {
        return Err(ApiError::forbidden(
            "this organisation requires two-step sign-in for your role",
        ));
    }
    let now = s.now_ms();
    mfa.verify(uid, &req.code, false, now).inspect_err(|e| {
        record_mfa_failure(&s, uid, addr, "/api/mfa/totp/disable", e);
    })?;
    mfa.disable(uid)?;
    s.inner.security.record(
        SecurityEvent::new(SecurityEventKind::MfaChanged, now)
            .user(Some(uid))
            .addr(addr)
            .path("/api/mfa/totp/disable")
            .detail("two-step sign-in turned off"),
    );
    Ok(ApiJson(MfaStatus {
        enrolled: false,
        required: false,
    }))
}

/// Step-up for a sensitive action (break-glass, approvals): an enrolled user must send a
/// fresh code (a recovery code does not count); where this node requires MFA for staff,
/// a user without it may not take the action at all. Refusals are 403 (the session
/// itself is fine) with code `step_up_required` or `step_up_failed`.
pub fn step_up(
    s: &AppState,
    who: &Session,
    code: Option<&str>,
    addr: Option<std::net::IpAddr>,
    path: &str,
) -> ApiResult<()> {
    let mfa = &s.inner.mfa;
    let uid = &who.user.user_id;
    match (mfa.factor(uid)?, code) {
        (Factor::None, _) if mfa.required_for_staff => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "step_up_required",
            "set up two-step sign-in first: this action needs a code from your app",
        )),
        (Factor::None, _) => Ok(()),
        (Factor::Enrolled, None) => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "step_up_required",
            "this action needs a fresh code from your authenticator app (field \"totp\")",
        )),
        (Factor::Enrolled, Some(code)) => mfa.verify(uid, code, false, s.now_ms()).map_err(|e| {
            record_mfa_failure(s, uid, addr, path, &e);
            if e.status == StatusCode::TOO_MANY_REQUESTS {
                e
            } else {
                ApiError::new(StatusCode::FORBIDDEN, "step_up_failed", e.message)
            }
        }),
    }
}
