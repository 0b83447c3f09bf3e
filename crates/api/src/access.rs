//! Who may read a patient's data: the patient; a doctor with the patient's consent (to the
//! doctor or to the doctor's department); a doctor holding unexpired break-glass access.
//! Everyone else is refused (deny by default).

use medchain_records::{break_glass_active, doctor_has_consent, UserRow};
use medchain_store::rusqlite::Connection;
use medchain_types::UserRole;

use crate::error::{ApiError, ApiResult};

/// Why a read is allowed (recorded in the audit trail).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadAccess {
    Own,
    Consent,
    BreakGlass,
}

impl ReadAccess {
    pub fn reason(self) -> &'static str {
        match self {
            ReadAccess::Own => "own data",
            ReadAccess::Consent => "consent",
            ReadAccess::BreakGlass => "break-glass",
        }
    }
}

/// Users sign in only at their home organisation's nodes: this node's organisation is
/// the one whose replica it runs (`replica`). Another organisation's node holding a
/// password for a user is exactly the attack this refuses.
pub fn signs_in_here(user: &UserRow, replica: u16) -> ApiResult<()> {
    if user.organisation == replica {
        Ok(())
    } else {
        Err(ApiError::new(
            axum::http::StatusCode::FORBIDDEN,
            "wrong_organisation",
            format!(
                "{} signs in at the nodes of organisation {}, not here",
                user.user_id, user.organisation
            ),
        ))
    }
}

/// The patient `patient_id` as a user, or 404. Only for callers that may learn whether a
/// patient exists (an emergency access names one and is itself audited); a read answers an
/// unknown patient as it answers one it may not see (`patient_if_known`).
pub fn patient(conn: &Connection, patient_id: &str) -> ApiResult<UserRow> {
    patient_if_known(conn, patient_id)?
        .ok_or_else(|| ApiError::not_found(format!("no patient {patient_id}")))
}

/// The patient `patient_id`, if there is one.
pub fn patient_if_known(conn: &Connection, patient_id: &str) -> ApiResult<Option<UserRow>> {
    Ok(medchain_records::user(conn, patient_id)?.filter(|u| u.role == UserRole::Patient))
}

/// Decide whether `reader` may read `patient_id`'s records at `now_ms`. An unknown patient
/// is refused with the same status and words as a patient the reader may not see, so that
/// the answer does not tell which ids exist.
pub fn read_access(
    conn: &Connection,
    reader: &UserRow,
    patient_id: &str,
    now_ms: u64,
) -> ApiResult<ReadAccess> {
    let access = entitled_access(conn, reader, patient_id, now_ms)?;
    // An erased patient answers 410 to whoever could read them; to anyone else, the
    // same refusal as ever (no oracle of who existed).
    if let Some(height) = medchain_records::query::erased_at(conn, patient_id)? {
        return Err(erased(patient_id, height));
    }
    Ok(access)
}

/// The answer to any read of an erased patient.
pub fn erased(patient_id: &str, height: u64) -> ApiError {
    ApiError::gone(format!(
        "{patient_id}'s data was erased at their request (block {height}); nothing of it \
         can be read any more"
    ))
}

fn entitled_access(
    conn: &Connection,
    reader: &UserRow,
    patient_id: &str,
    now_ms: u64,
) -> ApiResult<ReadAccess> {
    match reader.role {
        UserRole::Patient if reader.user_id == patient_id => Ok(ReadAccess::Own),
        UserRole::Patient => Err(ApiError::forbidden(
            "patients may read only their own records",
        )),
        UserRole::Doctor => {
            let known = patient_if_known(conn, patient_id)?.is_some();
            if known && doctor_has_consent(conn, reader, patient_id, now_ms)? {
                Ok(ReadAccess::Consent)
            } else if known && break_glass_active(conn, &reader.user_id, patient_id, now_ms)? {
                Ok(ReadAccess::BreakGlass)
            } else {
                Err(no_consent(patient_id))
            }
        }
        UserRole::Pharmacy | UserRole::Department => Err(ApiError::forbidden(format!(
            "the {} role cannot read medical records",
            reader.role.as_str()
        ))),
    }
}

/// The refusal of a doctor's read without consent, for known and unknown ids alike.
pub fn no_consent(patient_id: &str) -> ApiError {
    ApiError::forbidden(format!(
        "no consent from {patient_id}; ask the patient for consent or a one-time code, or use break-glass in an emergency"
    ))
}
