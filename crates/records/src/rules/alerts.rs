//! Reviews of access-monitor alerts: the patient's department says whether a flagged read
//! was justified or a violation, with a note, once per alert. The alerts are computed by
//! every replica from the ledger alike (`medchain-monitor`), so the ledger cannot check
//! that an alert exists; it checks who reviews and that each alert is reviewed once. A
//! review of an alert that never existed is a harmless row that no one is shown.

use medchain_store::rusqlite::{params, OptionalExtension};
use medchain_types::UserRole;

use super::{active_user, need_role, text_ok, Acting, Request};
use crate::ledger::exec;
use crate::limits::{REVIEW_NOTE_MAX_CHARS, USER_ID_MAX_CHARS};
use crate::outcome::{reject, Checked, Outcome};
use crate::tx::ReviewOutcome;

pub(super) fn review(
    r: &Request<'_>,
    actor: &Acting,
    alert_id: &str,
    patient: &str,
    outcome: ReviewOutcome,
    note: &str,
) -> Checked {
    let Acting::User(reviewer) = actor else {
        return reject(Outcome::Forbidden, "the operator does not review alerts");
    };
    need_role(reviewer, UserRole::Department)?;
    let id_ok = !alert_id.is_empty()
        && alert_id.len() <= USER_ID_MAX_CHARS
        && alert_id.bytes().all(|b| b.is_ascii_digit() || b == b'-');
    if !id_ok {
        return reject(Outcome::Invalid, "alert_id: digits and '-' (as listed)");
    }
    text_ok(note, "note", REVIEW_NOTE_MAX_CHARS)?;
    let p = active_user(r, patient)?;
    need_role(&p, UserRole::Patient)?;
    if reviewer.organisation != p.organisation || reviewer.department != p.department {
        return reject(
            Outcome::Forbidden,
            "only the patient's own department reviews alerts on their data",
        );
    }
    let done: Option<String> = r
        .conn
        .prepare_cached("SELECT reviewer FROM alert_reviews WHERE alert_id = ?1")?
        .query_row(params![alert_id], |row| row.get(0))
        .optional()?;
    if let Some(by) = done {
        return reject(
            Outcome::Conflict,
            format!("alert {alert_id} was already reviewed by {by}"),
        );
    }
    if !super::keep_sealed_text(r, patient, note)? && note.trim().is_empty() {
        return reject(Outcome::Invalid, "note: required");
    }
    exec(
        r.conn,
        "INSERT INTO alert_reviews (alert_id, patient, reviewer, outcome, note, at_ms, height)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            alert_id,
            patient,
            reviewer.user_id,
            outcome.as_str(),
            note,
            r.now_ms as i64,
            r.height as i64
        ],
    )?;
    Ok(())
}
