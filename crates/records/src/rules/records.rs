//! Adding a medical record: a doctor, for an active patient who consented (or with the
//! patient's one-time code, which the record spends), with content the request carries.
//! Records are never edited: a correction is a new record that `amends` an earlier one
//! of the same patient.

use medchain_store::rusqlite::{params, OptionalExtension};
use medchain_types::{Hash32, UserRole};

use super::{active_user, Acting, Request};
use crate::ledger::exec;
use crate::limits::RECORD_ID_MAX_BYTES;
use crate::outcome::{reject, Checked, Outcome};
use crate::policy::may_add_record;
use crate::tx::consent_code_hash;

/// The fields of an `AddRecord`.
#[derive(Debug)]
pub(super) struct NewRecord<'a> {
    pub record_id: &'a str,
    pub patient: &'a str,
    pub content_hash: &'a Hash32,
    pub consent_code: Option<&'a str>,
    pub amends: Option<&'a str>,
    pub prescription_code_hash: Option<&'a Hash32>,
}

pub(super) fn add(r: &Request<'_>, actor: &Acting, a: NewRecord<'_>) -> Checked {
    let doctor = actor.as_role(UserRole::Doctor, "only a doctor adds records")?;
    if a.record_id.is_empty() || a.record_id.len() > RECORD_ID_MAX_BYTES {
        return reject(Outcome::Invalid, "record_id: 1 to 64 characters");
    }
    if !r.signed.request.content_hashes.contains(a.content_hash) {
        return reject(
            Outcome::Invalid,
            "content hash is not the request's content",
        );
    }
    if active_user(r, a.patient)?.role != UserRole::Patient {
        return reject(Outcome::Invalid, format!("{} is not a patient", a.patient));
    }
    if let Some(prev) = a.amends {
        let of: Option<String> = r
            .conn
            .prepare_cached("SELECT patient FROM records WHERE record_id = ?1")?
            .query_row(params![prev], |row| row.get(0))
            .optional()?;
        if of.as_deref() != Some(a.patient) {
            return reject(
                Outcome::NotFound,
                format!("amends: no record {prev} of this patient"),
            );
        }
    }
    may_add_record(r.conn, doctor, a.patient, a.consent_code, r.now_ms)??;
    if let Some(code) = a.consent_code {
        // Spent whenever it is usable, also by a doctor who has consent anyway: a code
        // is for one record.
        exec(
            r.conn,
            "UPDATE consent_codes SET used_height = ?3
             WHERE code_hash = ?1 AND patient = ?2 AND used_height IS NULL AND expires_at_ms > ?4",
            params![
                &consent_code_hash(a.patient, code).0[..],
                a.patient,
                r.height as i64,
                r.now_ms as i64
            ],
        )?;
    }
    let n = exec(
        r.conn,
        "INSERT OR IGNORE INTO records VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            a.record_id,
            a.patient,
            doctor.user_id,
            doctor.department,
            &a.content_hash.0[..],
            a.amends,
            a.prescription_code_hash.map(|h| h.0.to_vec()),
            r.now_ms as i64,
            r.height as i64,
            r.signer_organisation()
        ],
    )?;
    if n == 0 {
        return reject(Outcome::Conflict, format!("record {} exists", a.record_id));
    }
    Ok(())
}
