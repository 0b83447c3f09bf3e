//! Auth as types: a handler that takes `Doctor` can only run for a signed-in, active
//! doctor. Each extractor checks the bearer token (signature, issuer, audience, expiry,
//! revocation) and then the ledger: the user must exist, be active, and hold the role.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use medchain_records::UserRow;
use medchain_types::UserRole;

use crate::auth::Claims;
use crate::error::ApiError;
use crate::state::AppState;

/// Any signed-in, active user.
#[derive(Debug, Clone)]
pub struct Session {
    pub user: UserRow,
    pub claims: Claims,
}

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

impl FromRequestParts<AppState> for Session {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer(parts)?.to_string();
        let claims = state.inner.auth.verify(&token, state.now_ms())?;
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
