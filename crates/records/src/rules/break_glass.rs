//! Break-glass: a doctor opens a patient's records without consent, read-only and for
//! at most an hour, with a reason of at least ten characters that the patient and the
//! department see. The opening is itself an entry in the patient's audit trail. A doctor
//! may open at most `LedgerPolicy::break_glass_per_doctor_per_day` in any 24 hours; each
//! one beyond needs a second approver (another doctor, or the patient's department).
//! Every opening is an alert to the patient's department, which reviews it on the
//! ledger with a note.

use medchain_store::rusqlite::{params, OptionalExtension};
use medchain_types::UserRole;

use super::{active_user, keep_sealed_text, need_role, text_ok, Acting, Request};
use crate::ledger::exec;
use crate::limits::{
    BREAK_GLASS_MAX_MS, BREAK_GLASS_REASON_MIN_CHARS, REASON_MAX_CHARS, REVIEW_NOTE_MAX_CHARS,
};
use crate::outcome::{reject, Checked, Outcome};
use crate::policy::{break_glass_standing, user, UserRow};

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
    check_opening(r, patient, reason, duration_ms)?;
    within_limit_or_approved(r, doctor, patient)?;
    record_opening(r, doctor, patient, reason, duration_ms)
}

/// What every opening must be: a reason of 10 to `REASON_MAX_CHARS` characters (or one
/// sealed, carried beside the transaction), at most an hour, on an active patient.
pub(super) fn check_opening(
    r: &Request<'_>,
    patient: &str,
    reason: &str,
    duration_ms: u64,
) -> Checked {
    text_ok(reason, "reason", REASON_MAX_CHARS)?;
    if duration_ms == 0 || duration_ms > BREAK_GLASS_MAX_MS {
        return reject(Outcome::Invalid, "duration: 1 ms to 1 hour");
    }
    need_role(&active_user(r, patient)?, UserRole::Patient)?;
    // Sealed, the ledger cannot read it: the writing node checked its length.
    if !keep_sealed_text(r, patient, reason)?
        && reason.trim().chars().count() < BREAK_GLASS_REASON_MIN_CHARS
    {
        return reject(
            Outcome::Invalid,
            format!("reason: at least {BREAK_GLASS_REASON_MIN_CHARS} characters"),
        );
    }
    Ok(())
}

/// The opening itself, and its entry in the patient's audit trail.
pub(super) fn record_opening(
    r: &Request<'_>,
    doctor: &UserRow,
    patient: &str,
    reason: &str,
    duration_ms: u64,
) -> Checked {
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

/// Below the doctor's daily limit, or spend an unused, unexpired approval of a second
/// approver for this patient.
fn within_limit_or_approved(r: &Request<'_>, doctor: &UserRow, patient: &str) -> Checked {
    let limit = r.policy.break_glass_per_doctor_per_day;
    let standing = break_glass_standing(r.conn, &doctor.user_id, patient, r.now_ms)?;
    if standing.opened_last_24h < i64::from(limit) {
        return Ok(());
    }
    let Some(id) = standing.approval else {
        return reject(Outcome::Forbidden, standing.refusal(&doctor.user_id, limit));
    };
    exec(
        r.conn,
        "UPDATE break_glass_approvals SET used_height = ?2 WHERE id = ?1",
        params![id, r.height as i64],
    )?;
    Ok(())
}

/// The patient's department: a department administrator of the patient's own
/// organisation and department.
pub(super) fn is_patients_department(actor: &UserRow, patient: &UserRow) -> bool {
    actor.role == UserRole::Department
        && actor.organisation == patient.organisation
        && actor.department == patient.department
}

pub(super) fn approve(r: &Request<'_>, actor: &Acting, doctor: &str, patient: &str) -> Checked {
    let Acting::User(approver) = actor else {
        return reject(
            Outcome::Forbidden,
            "the operator does not approve break-glass",
        );
    };
    let p = active_user(r, patient)?;
    need_role(&p, UserRole::Patient)?;
    need_role(&active_user(r, doctor)?, UserRole::Doctor)?;
    let second_doctor = approver.role == UserRole::Doctor && approver.user_id != doctor;
    if !(second_doctor || is_patients_department(approver, &p)) {
        return reject(
            Outcome::Forbidden,
            "a break-glass approval comes from another doctor or the patient's department",
        );
    }
    exec(
        r.conn,
        "INSERT INTO break_glass_approvals (doctor, patient, approver, at_ms, height)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            doctor,
            patient,
            approver.user_id,
            r.now_ms as i64,
            r.height as i64
        ],
    )?;
    Ok(())
}

pub(super) fn review(r: &Request<'_>, actor: &Acting, id: u64, note: &str) -> Checked {
    let Acting::User(reviewer) = actor else {
        return reject(
            Outcome::Forbidden,
            "the operator does not review break-glass",
        );
    };
    text_ok(note, "note", REVIEW_NOTE_MAX_CHARS)?;
    let event: Option<(String, Option<String>)> = r
        .conn
        .prepare_cached("SELECT patient, reviewed_by FROM break_glass WHERE id = ?1")?
        .query_row(params![id as i64], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()?;
    let Some((patient, reviewed_by)) = event else {
        return reject(Outcome::NotFound, format!("no break-glass event {id}"));
    };
    let Some(p) = user(r.conn, &patient)? else {
        return reject(Outcome::NotFound, format!("no patient {patient}"));
    };
    if !is_patients_department(reviewer, &p) {
        return reject(
            Outcome::Forbidden,
            "only the patient's department reviews a break-glass event",
        );
    }
    if let Some(by) = reviewed_by {
        return reject(Outcome::Conflict, format!("already reviewed by {by}"));
    }
    if !keep_sealed_text(r, &patient, note)? && note.trim().is_empty() {
        return reject(Outcome::Invalid, "note: required");
    }
    exec(
        r.conn,
        "UPDATE break_glass SET reviewed_by = ?2, review_note = ?3, reviewed_at_ms = ?4
         WHERE id = ?1",
        params![id as i64, reviewer.user_id, note, r.now_ms as i64],
    )?;
    Ok(())
}
