//! Publishing a patient's data key sealed to an organisation. Only the patient's home
//! organisation may (the actor is the patient, and `resolve_actor` already requires the
//! patient's home organisation to sign); epochs start with the home organisation's own
//! copy; any other organisation gets a copy only while it is entitled to read. The ledger
//! cannot see inside the sealed bytes (no one but the recipient can), so what it enforces
//! is who may hand keys to whom.

use medchain_store::rusqlite::{params, OptionalExtension};
use medchain_types::{Hash32, UserRole};

use super::{Acting, Request};
use crate::ledger::exec;
use crate::outcome::{reject, Checked, Outcome};
use crate::policy::{entitled_organisations, organisation_key};

pub(super) fn share(
    r: &Request<'_>,
    actor: &Acting,
    epoch: u32,
    organisation: u16,
    sealed_hash: &Hash32,
) -> Checked {
    let patient = actor.as_role(
        UserRole::Patient,
        "only the patient's home organisation shares the patient's key",
    )?;
    if r.encryption_keys.is_empty() {
        return reject(
            Outcome::Invalid,
            "this chain keeps content in clear (its genesis has no encryption keys)",
        );
    }
    if usize::from(organisation) >= r.n_replicas {
        return reject(Outcome::Invalid, format!("no organisation {organisation}"));
    }
    if !r.signed.request.content_hashes.contains(sealed_hash) {
        return reject(
            Outcome::Invalid,
            "sealed key hash is not the request's content",
        );
    }
    let current: Option<u32> = r
        .conn
        .prepare_cached("SELECT MAX(epoch) FROM patient_keys WHERE patient = ?1")?
        .query_row(params![patient.user_id], |row| row.get::<_, Option<u32>>(0))
        .optional()?
        .flatten();
    let home = patient.organisation;
    let starts_epoch = match current {
        None => epoch == 0,
        Some(c) => Some(epoch) == c.checked_add(1),
    };
    if starts_epoch {
        if organisation != home {
            return reject(
                Outcome::Invalid,
                "a key epoch starts with the home organisation's own copy",
            );
        }
    } else if current.is_none_or(|c| epoch > c) {
        return reject(
            Outcome::Invalid,
            format!("epoch {epoch} is neither an existing epoch nor the next one"),
        );
    } else if organisation != home
        && !entitled_organisations(r.conn, &patient.user_id, r.now_ms)?.contains(&organisation)
    {
        return reject(
            Outcome::Forbidden,
            format!(
                "organisation {organisation} is not entitled to read {}'s data",
                patient.user_id
            ),
        );
    }
    let Some(recipient) = organisation_key(r.conn, r.encryption_keys, organisation)? else {
        return reject(Outcome::Invalid, format!("no organisation {organisation}"));
    };
    // A copy exists: only a copy sealed to a key the organisation has since replaced
    // may be sealed again (to its new key).
    let existing: Option<Option<Vec<u8>>> = r
        .conn
        .prepare_cached(
            "SELECT recipient_key FROM patient_keys
             WHERE patient = ?1 AND epoch = ?2 AND organisation = ?3",
        )?
        .query_row(params![patient.user_id, epoch, organisation], |row| {
            row.get(0)
        })
        .optional()?;
    if let Some(sealed_to) = existing {
        let genesis = r
            .encryption_keys
            .get(usize::from(organisation))
            .map(|k| k.0.to_vec());
        if sealed_to.or(genesis).as_deref() == Some(&recipient[..]) {
            return reject(
                Outcome::Conflict,
                format!("organisation {organisation} already holds key epoch {epoch}"),
            );
        }
    }
    // New, or sealed again to the organisation's new key in place of the old copy.
    exec(
        r.conn,
        "INSERT INTO patient_keys (patient, epoch, organisation, hash, height, recipient_key)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (patient, epoch, organisation) DO UPDATE
         SET hash = excluded.hash, height = excluded.height,
             recipient_key = excluded.recipient_key",
        params![
            patient.user_id,
            epoch,
            organisation,
            &sealed_hash.0[..],
            r.height as i64,
            &recipient[..]
        ],
    )?;
    Ok(())
}
