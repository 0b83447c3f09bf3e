//! Break-glass: a doctor opens a patient's records without consent, read-only and for
//! at most an hour, with a reason that the patient and the department see. The opening
//! is itself an entry in the patient's audit trail.

use medchain_store::rusqlite::params;
use medchain_types::UserRole;

use super::{active_user, need_role, text_ok, Acting, Request};
use crate::ledger::exec;
use crate::limits::{BREAK_GLASS_MAX_MS, REASON_MAX_CHARS};
use crate::outcome::{reject, Checked, Outcome};

pub(super) fn open(
    r: &Request<'_>,
    actor: &Acting,
    patient: &str,
    reason: &str,
    duration_ms: u64,
) -> Checked {
    let Acting::User(doctor) = actor else {
        return reject(Outcome::Forbidden, "only a doctor may break the glass");
    };
    need_role(doctor, UserRole::Doctor)?;
    if reason.trim().is_empty() {
        return reject(Outcome::Invalid, "reason: required");
    }
    text_ok(reason, "reason", REASON_MAX_CHARS)?;
    if duration_ms == 0 || duration_ms > BREAK_GLASS_MAX_MS {
        return reject(Outcome::Invalid, "duration: 1 ms to 1 hour");
    }
    need_role(&active_user(r, patient)?, UserRole::Patient)?;
    let (now, h) = (r.now_ms as i64, r.height as i64);
    exec(
        r.conn,
        "INSERT INTO break_glass (doctor, patient, department, reason, at_ms, until_ms, height)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            doctor.user_id,
            patient,
            doctor.department,
            reason,
            now,
            now + duration_ms as i64,
            h
        ],
    )?;
    exec(
        r.conn,
        "INSERT INTO audit (patient, reader, reader_role, action, reason, at_ms, height)
         VALUES (?1, ?2, 'doctor', 'break_glass', ?3, ?4, ?5)",
        params![patient, doctor.user_id, reason, now, h],
    )?;
    Ok(())
}
