//! The audit trail of reads: every read of a patient's data is itself a ledger
//! transaction, committed before the data is served, so the trail cannot be skipped or
//! rewritten by the node that served the read.

use medchain_store::rusqlite::params;

use super::{text_ok, Acting, Request};
use crate::ledger::exec;
use crate::limits::{ACTION_MAX_CHARS, REASON_MAX_CHARS};
use crate::outcome::{reject, Checked, Outcome};

pub(super) fn read(
    r: &Request<'_>,
    actor: &Acting,
    patient: &str,
    action: &str,
    reason: &str,
) -> Checked {
    text_ok(reason, "reason", REASON_MAX_CHARS)?;
    text_ok(action, "action", ACTION_MAX_CHARS)?;
    let Acting::User(a) = actor else {
        return reject(Outcome::Forbidden, "the operator does not read records");
    };
    exec(
        r.conn,
        "INSERT INTO audit (patient, reader, reader_role, action, reason, at_ms, height)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            patient,
            a.user_id,
            a.role.as_str(),
            action,
            reason,
            r.now_ms as i64,
            r.height as i64
        ],
    )?;
    Ok(())
}
