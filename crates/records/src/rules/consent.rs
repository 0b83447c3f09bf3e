//! Consent: a patient grants (optionally until a time) and revokes consent to a doctor,
//! a department or a pharmacy, and creates one-time consent codes of which only the
//! hash is public.

use medchain_store::rusqlite::params;
use medchain_types::{Hash32, UserRole};

use super::{Acting, Request};
use crate::ledger::exec;
use crate::limits::CONSENT_CODE_TTL_MS;
use crate::outcome::{reject, Checked, Outcome};
use crate::policy::{user, GranteeKey, UserRow};
use crate::tx::Grantee;

const ONLY_THE_PATIENT: &str = "only the patient may do this";

fn patient(actor: &Acting) -> Checked<&UserRow> {
    actor.as_role(UserRole::Patient, ONLY_THE_PATIENT)
}

pub(super) fn grant(
    r: &Request<'_>,
    actor: &Acting,
    grantee: &Grantee,
    expires_at_ms: Option<u64>,
) -> Checked {
    let p = patient(actor)?;
    let key = GranteeKey::of(grantee, p.organisation);
    grantee_exists(r, grantee, p.organisation)?;
    exec(
        r.conn,
        "INSERT OR REPLACE INTO consents VALUES (?1, ?2, ?3, ?4, ?5, NULL, ?6)",
        params![
            p.user_id,
            key.kind,
            key.id,
            r.now_ms as i64,
            expires_at_ms.map(|e| e as i64),
            r.height as i64
        ],
    )?;
    Ok(())
}

pub(super) fn revoke(r: &Request<'_>, actor: &Acting, grantee: &Grantee) -> Checked {
    let p = patient(actor)?;
    let key = GranteeKey::of(grantee, p.organisation);
    let n = exec(
        r.conn,
        "UPDATE consents SET revoked_at_ms = ?4, height = ?5
         WHERE patient = ?1 AND grantee_kind = ?2 AND grantee_id = ?3
           AND revoked_at_ms IS NULL",
        params![
            p.user_id,
            key.kind,
            key.id,
            r.now_ms as i64,
            r.height as i64
        ],
    )?;
    if n == 0 {
        return reject(Outcome::NotFound, "no active consent to revoke");
    }
    Ok(())
}

pub(super) fn create_code(r: &Request<'_>, actor: &Acting, code_hash: &Hash32) -> Checked {
    let p = patient(actor)?;
    let n = exec(
        r.conn,
        "INSERT OR IGNORE INTO consent_codes VALUES (?1, ?2, ?3, NULL)",
        params![
            &code_hash.0[..],
            p.user_id,
            (r.now_ms + CONSENT_CODE_TTL_MS) as i64
        ],
    )?;
    if n == 0 {
        return reject(Outcome::Conflict, "code already exists");
    }
    Ok(())
}

/// A department exists in its organisation when someone of that organisation works or
/// is registered in it; a user grantee must be an active user of the right role.
fn grantee_exists(r: &Request<'_>, g: &Grantee, patient_organisation: u16) -> Checked {
    let department = match g {
        Grantee::Department(d) => Some((patient_organisation, d.as_str())),
        Grantee::DepartmentOf {
            organisation,
            department,
        } => Some((*organisation, department.as_str())),
        Grantee::Doctor(_) | Grantee::Pharmacy(_) => None,
    };
    let want = match department {
        Some((org, d)) => {
            let n: i64 = r.conn.query_row(
                "SELECT COUNT(*) FROM users WHERE organisation = ?1 AND department = ?2",
                params![org, d],
                |row| row.get(0),
            )?;
            return if n > 0 {
                Ok(())
            } else {
                reject(
                    Outcome::NotFound,
                    format!("no department {d} in organisation {org}"),
                )
            };
        }
        None if matches!(g, Grantee::Doctor(_)) => UserRole::Doctor,
        None => UserRole::Pharmacy,
    };
    let id = g.name();
    match user(r.conn, id)? {
        Some(u) if u.role == want && u.active => Ok(()),
        Some(_) => reject(
            Outcome::Invalid,
            format!("{id} is not an active {}", want.as_str()),
        ),
        None => reject(Outcome::NotFound, format!("no user {id}")),
    }
}
