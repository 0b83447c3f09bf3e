//! Dispensing: a pharmacy dispenses a record's prescription once, when the patient
//! consented to that pharmacy or presented the prescription code (which the ledger sees
//! as its proof, `tx::prescription_code_proof`). The ledger refuses the
//! second dispense, also when two pharmacies race on two replicas.

use medchain_store::rusqlite::{params, OptionalExtension};
use medchain_types::UserRole;

use super::{Acting, Request};
use crate::ledger::exec;
use crate::outcome::{reject, Checked, Outcome};
use crate::policy::{consent_active, GranteeKey};
use crate::tx::prescription_code_hash;

pub(super) fn dispense(
    r: &Request<'_>,
    actor: &Acting,
    record_id: &str,
    code: Option<&str>,
) -> Checked {
    let pharmacy = actor.as_role(UserRole::Pharmacy, "only a pharmacy dispenses")?;
    let row: Option<(String, Option<Vec<u8>>)> = r
        .conn
        .prepare_cached("SELECT patient, rx_code_hash FROM records WHERE record_id = ?1")?
        .query_row(params![record_id], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()?;
    // With a code, every refusal reads alike: a wrong code must not tell whether the
    // prescription exists.
    let not_found = || {
        let why = match code {
            Some(_) => "no prescription with this code".to_string(),
            None => format!("no prescription {record_id}"),
        };
        reject(Outcome::NotFound, why)
    };
    let Some((patient, rx_hash)) = row else {
        return not_found();
    };
    let Some(rx_hash) = rx_hash else {
        return match code {
            Some(_) => not_found(),
            None => reject(
                Outcome::NotFound,
                format!("record {record_id} prescribes nothing"),
            ),
        };
    };
    let by_code = code.is_some_and(|c| prescription_code_hash(c).0[..] == rx_hash[..]);
    let grantee = GranteeKey::pharmacy(&pharmacy.user_id);
    if !(by_code || consent_active(r.conn, &patient, &grantee, r.now_ms)?) {
        if code.is_some() {
            return not_found();
        }
        return reject(
            Outcome::Forbidden,
            "no consent from the patient and no valid prescription code",
        );
    }
    let n = exec(
        r.conn,
        "INSERT OR IGNORE INTO dispenses VALUES (?1, ?2, ?3, ?4)",
        params![
            record_id,
            pharmacy.user_id,
            r.now_ms as i64,
            r.height as i64
        ],
    )?;
    if n == 0 {
        return reject(
            Outcome::Conflict,
            format!("prescription {record_id} was already dispensed"),
        );
    }
    Ok(())
}
