//! Auth as types: a handler that takes `Doctor` can only run for a signed-in, active
//! doctor. Each extractor checks the bearer token (signature, key id, issuer, audience,
//! expiry, lifetime cap, revocation, session not ended) and then the ledger: the user
//! must exist, be active, and hold the role. A token that only allows choosing a new
//! password (the password was set by an administrator) is refused by all of them with
//! 403 `password_change_required`; only `PasswordSession` accepts it. A token of a user
//! who must still set up two-step sign-in is refused with 403 `mfa_setup_required`; only
//! `MfaSetupSession` accepts it.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use medchain_records::UserRow;
use medchain_types::UserRole;

use crate::auth::{Claims, TokenScope};
use crate::error::ApiError;
use crate::security_log::Subject;
use crate::state::AppState;

/// Any signed-in, active user with a full session.
#[derive(Debug, Clone)]
pub struct Session {
    pub user: UserRow,
    pub claims: Claims,
}

/// A signed-in, active user, whether their token is a full session or only allows the
/// password change (`POST /api/password`).
#[derive(Debug, Clone)]
pub struct PasswordSession(pub Session);

fn bearer(parts: &Parts) -> Result<&str, ApiError> {
    let h = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .ok_or_else(|| ApiError::unauthorized("missing bearer token"))?;
    let s = h
        .to_str()
        .map_err(|_| ApiError::unauthorized("malformed Authorization header"))?;
    s.strip_prefix("Bearer ")
        .map(str::trim)
        .filter(|t| !t.is_empty() && t.len() <= 4096)
        .ok_or_else(|| ApiError::unauthorized("expected 'Authorization: Bearer <token>'"))
}

/// The token and the ledger's view of its user, whatever the token's scope.
fn authenticate(parts: &Parts, state: &AppState) -> Result<Session, ApiError> {
    let token = bearer(parts)?;
    let claims = state.inner.auth.verify(token, state.now_ms())?;
    // From here on a refusal is about this user: the security log may name them.
    Subject::note(&parts.extensions, &claims.sub);
    let user = state
        .lookup(|c| Ok(medchain_records::user(c, &claims.sub)?))?
        .filter(|u| u.active)
        .ok_or_else(|| ApiError::unauthorized("account is not active"))?;
    if user.role.as_str() != claims.role {
        return Err(ApiError::unauthorized("role changed; sign in again"));
    }
    crate::access::signs_in_here(&user, state.inner.replica)?;
    Ok(Session { user, claims })
}

impl FromRequestParts<AppState> for Session {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let s = authenticate(parts, state)?;
        match s.claims.scope {
            TokenScope::Session => Ok(s),
            TokenScope::PasswordChange => Err(ApiError::password_change_required()),
            TokenScope::MfaSetup => Err(ApiError::mfa_setup_required()),
        }
    }
}

/// A signed-in, active user with a full session or one that only allows setting up
/// two-step sign-in (the enrolment routes).
#[derive(Debug, Clone)]
pub struct MfaSetupSession(pub Session);

impl FromRequestParts<AppState> for MfaSetupSession {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let s = authenticate(parts, state)?;
        match s.claims.scope {
            TokenScope::Session | TokenScope::MfaSetup => Ok(MfaSetupSession(s)),
            TokenScope::PasswordChange => Err(ApiError::password_change_required()),
        }
    }
}

impl FromRequestParts<AppState> for PasswordSession {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        authenticate(parts, state).map(PasswordSession)
    }
}

macro_rules! role_extractor {
    ($(#[$doc:meta])* $name:ident, $($role:path),+) => {
        $(#[$doc])*
        #[derive(Debug, Clone)]
        pub struct $name(pub Session);

        impl FromRequestParts<AppState> for $name {
            type Rejection = ApiError;

            async fn from_request_parts(
                parts: &mut Parts,
                state: &AppState,
            ) -> Result<Self, ApiError> {
                let s = Session::from_request_parts(parts, state).await?;
                if [$($role),+].contains(&s.user.role) {
                    Ok($name(s))
                } else {
                    Err(ApiError::forbidden(format!(
                        "not allowed for the {} role",
                        s.user.role.as_str()
                    )))
                }
            }
        }
    };
}

role_extractor!(
    /// A signed-in doctor.
    Doctor,
    UserRole::Doctor
);
role_extractor!(
    /// A signed-in patient.
    Patient,
    UserRole::Patient
);
role_extractor!(
    /// A signed-in pharmacy.
    Pharmacy,
    UserRole::Pharmacy
);
role_extractor!(
    /// A signed-in department administrator.
    Department,
    UserRole::Department
);
role_extractor!(
    /// A doctor or a department administrator (block validation).
    DoctorOrDepartment,
    UserRole::Doctor,
    UserRole::Department
);
role_extractor!(
    /// Those who may read a patient's records under the access rules (the rules
    /// themselves are checked per patient).
    RecordReader,
    UserRole::Doctor,
    UserRole::Patient
);
