//! Co-signed actions: a sensitive action of an organisation is a proposal that executes
//! only when the approvers its rule names have signed it, each approval a ledger
//! transaction through the approver's own home organisation, before the proposal expires.
//! Distinct identities count once each (the same person twice is refused), approvals from
//! another organisation are refused, and an expired proposal cannot be completed.
//!
//! Rules today (the kinds of [`ProposedAction`]):
//! - registering or deactivating a department administrator: the organisation's operator
//!   and one other active administrator of that organisation (the operator alone only
//!   while the organisation has no other administrator, so that the first one can be
//!   made and the last one removed).
//! - erasing a patient's data: the patient asks (proposes), and an administrator of the
//!   patient's own department approves.
//! - break-glass beyond the doctor's daily limit: the doctor asks, and another doctor of
//!   their organisation or the patient's department co-signs; the opening executes with
//!   that signature (and counts towards the doctor's limit like any other).
//! - replacing an organisation's encryption key (organisation-level): its operator
//!   proposes, and the operators of 2f+1 organisations, its own among them, sign.

use medchain_store::rusqlite::{params, OptionalExtension};
use medchain_types::UserRole;

use super::users::{administrators, check_new_user, insert_user, NewUser};
use super::{text_ok, Acting, Request};
use crate::ledger::exec;
use crate::limits::{
    PROPOSALS_OPEN_MAX, PROPOSALS_OPEN_PER_PROPOSER, PROPOSAL_TTL_MAX_MS, USER_ID_MAX_CHARS,
};
use crate::outcome::{reject, Checked, Outcome};
use crate::policy::user;
use crate::tx::{organisation_approver, ProposedAction, OPERATOR_APPROVER};

/// Who may sign a proposal of `organisation`, as the id their approval is kept under.
fn approver_id(
    r: &Request<'_>,
    actor: &Acting,
    organisation: u16,
    action: &ProposedAction,
) -> Checked<String> {
    match action {
        ProposedAction::ErasePatient { patient, .. } => erasure_approver(r, actor, patient),
        ProposedAction::OpenBreakGlass { patient, .. } => {
            break_glass_approver(r, actor, organisation, patient)
        }
        ProposedAction::RotateEncryptionKey { .. } => match actor {
            Acting::Operator => Ok(organisation_approver(r.signer_organisation())),
            Acting::User(_) => reject(
                Outcome::Forbidden,
                "organisation-level changes are signed by the organisations' operators",
            ),
        },
        _ => administrator_approver(r, actor, organisation, action.target()),
    }
}

/// Break-glass beyond the limit is signed by the asking doctor, and by another doctor of
/// the doctor's organisation or the patient's department.
fn break_glass_approver(
    r: &Request<'_>,
    actor: &Acting,
    organisation: u16,
    patient: &str,
) -> Checked<String> {
    let Some(p) = user(r.conn, patient)? else {
        return reject(Outcome::NotFound, format!("no user {patient}"));
    };
    match actor {
        Acting::User(u) if u.role == UserRole::Doctor && u.organisation == organisation => {
            Ok(u.user_id.clone())
        }
        Acting::User(u) if super::break_glass::is_patients_department(u, &p) => {
            Ok(u.user_id.clone())
        }
        _ => reject(
            Outcome::Forbidden,
            format!(
                "break-glass beyond the limit is co-signed by another doctor of organisation \
                 {organisation} or by {patient}'s department"
            ),
        ),
    }
}

/// An erasure is signed by the patient and by an administrator of the patient's own
/// department (organisation and department).
fn erasure_approver(r: &Request<'_>, actor: &Acting, patient: &str) -> Checked<String> {
    let Some(p) = user(r.conn, patient)? else {
        return reject(Outcome::NotFound, format!("no user {patient}"));
    };
    match actor {
        Acting::User(u) if u.user_id == patient && u.role == UserRole::Patient => {
            Ok(u.user_id.clone())
        }
        Acting::User(u)
            if u.role == UserRole::Department
                && u.organisation == p.organisation
                && u.department == p.department =>
        {
            Ok(u.user_id.clone())
        }
        _ => reject(
            Outcome::Forbidden,
            format!("only {patient} and {patient}'s own department sign this erasure"),
        ),
    }
}

/// Administrator proposals: the organisation's operator and its administrators.
fn administrator_approver(
    r: &Request<'_>,
    actor: &Acting,
    organisation: u16,
    target: &str,
) -> Checked<String> {
    match actor {
        Acting::Operator if r.signer_organisation() == organisation => {
            Ok(OPERATOR_APPROVER.to_string())
        }
        Acting::User(u)
            if u.role == UserRole::Department
                && u.organisation == organisation
                && u.user_id != target =>
        {
            Ok(u.user_id.clone())
        }
        Acting::User(u) if u.user_id == target => reject(
            Outcome::Forbidden,
            "the administrator a proposal is about does not approve it",
        ),
        _ => reject(
            Outcome::Forbidden,
            format!(
                "only the operator and the department administrators of organisation \
                 {organisation} sign its proposals"
            ),
        ),
    }
}

pub(super) fn propose(
    r: &Request<'_>,
    actor: &Acting,
    proposal_id: &str,
    action: &ProposedAction,
    ttl_ms: u64,
) -> Checked {
    if !medchain_types::genesis::valid_user_id(proposal_id) {
        return reject(
            Outcome::Invalid,
            "proposal_id: 1 to 64 letters, digits, '-', '_' or '.'",
        );
    }
    if ttl_ms == 0 || ttl_ms > PROPOSAL_TTL_MAX_MS {
        return reject(Outcome::Invalid, "ttl_ms: 1 ms to 7 days");
    }
    let organisation = match actor {
        Acting::Operator => r.signer_organisation(),
        Acting::User(u) => u.organisation,
    };
    check_action(r, action, organisation)?;
    let proposer = approver_id(r, actor, organisation, action)?;
    if matches!(action, ProposedAction::ErasePatient { patient, .. } if *patient != proposer) {
        return reject(
            Outcome::Forbidden,
            "an erasure is asked for by the patient; the department approves it",
        );
    }
    if matches!(action, ProposedAction::RotateEncryptionKey { organisation: o, .. } if *o != organisation)
    {
        return reject(
            Outcome::Forbidden,
            "an organisation proposes only its own key rotation",
        );
    }
    if matches!(action, ProposedAction::OpenBreakGlass { .. })
        && !matches!(actor, Acting::User(u) if u.role == UserRole::Doctor)
    {
        return reject(
            Outcome::Forbidden,
            "break-glass is asked for by the doctor who needs it",
        );
    }
    let exists: Option<i64> = r
        .conn
        .prepare_cached("SELECT 1 FROM proposals WHERE id = ?1")?
        .query_row(params![proposal_id], |row| row.get(0))
        .optional()?;
    if exists.is_some() {
        return reject(
            Outcome::Conflict,
            format!("proposal {proposal_id} already exists"),
        );
    }
    let open: i64 = r
        .conn
        .prepare_cached(
            "SELECT COUNT(*) FROM proposals
             WHERE organisation = ?1 AND kind = ?3 AND executed_height IS NULL
               AND expires_ms >= ?2",
        )?
        .query_row(
            params![organisation, r.now_ms as i64, action.kind()],
            |row| row.get(0),
        )?;
    if open >= PROPOSALS_OPEN_MAX {
        return reject(
            Outcome::Conflict,
            format!(
                "organisation {organisation} has {open} open {} proposals; approve or let some expire first",
                action.kind()
            ),
        );
    }
    let mine: i64 = r
        .conn
        .prepare_cached(
            "SELECT COUNT(*) FROM proposals
             WHERE organisation = ?1 AND proposer = ?3 AND executed_height IS NULL
               AND expires_ms >= ?2",
        )?
        .query_row(params![organisation, r.now_ms as i64, proposer], |row| {
            row.get(0)
        })?;
    if mine >= PROPOSALS_OPEN_PER_PROPOSER {
        return reject(
            Outcome::Conflict,
            format!("{proposer} has {mine} open proposals; wait for them or let them expire first"),
        );
    }
    let json = serde_json::to_string(action).unwrap_or_default();
    exec(
        r.conn,
        "INSERT INTO proposals (id, organisation, kind, action, target, proposer, created_ms,
                                expires_ms, height)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            proposal_id,
            organisation,
            action.kind(),
            json,
            action.target(),
            proposer,
            r.now_ms as i64,
            r.now_ms.saturating_add(ttl_ms) as i64,
            r.height as i64
        ],
    )?;
    sign_and_maybe_execute(r, proposal_id, organisation, action, &proposer)
}

pub(super) fn approve(r: &Request<'_>, actor: &Acting, proposal_id: &str) -> Checked {
    text_ok(proposal_id, "proposal_id", USER_ID_MAX_CHARS)?;
    let row: Option<(u16, String, i64, Option<i64>)> = r
        .conn
        .prepare_cached(
            "SELECT organisation, action, expires_ms, executed_height FROM proposals WHERE id = ?1",
        )?
        .query_row(params![proposal_id], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
        })
        .optional()?;
    let Some((organisation, json, expires_ms, executed)) = row else {
        return reject(Outcome::NotFound, format!("no proposal {proposal_id}"));
    };
    let Ok(action) = serde_json::from_str::<ProposedAction>(&json) else {
        return reject(
            Outcome::Invalid,
            format!("proposal {proposal_id} is unreadable"),
        );
    };
    let approver = approver_id(r, actor, organisation, &action)?;
    if let Some(h) = executed {
        return reject(
            Outcome::Conflict,
            format!("proposal {proposal_id} was executed in block {h}"),
        );
    }
    if r.now_ms as i64 > expires_ms {
        return reject(
            Outcome::Conflict,
            format!("proposal {proposal_id} expired; propose it again"),
        );
    }
    let already: Option<i64> = r
        .conn
        .prepare_cached(
            "SELECT 1 FROM proposal_approvals WHERE proposal_id = ?1 AND approver = ?2",
        )?
        .query_row(params![proposal_id, approver], |row| row.get(0))
        .optional()?;
    if already.is_some() {
        return reject(
            Outcome::Conflict,
            format!(
                "{approver} has already approved proposal {proposal_id}; each approver counts once"
            ),
        );
    }
    sign_and_maybe_execute(r, proposal_id, organisation, &action, &approver)
}

/// Record `approver`'s signature; if the proposal's rule is now met, execute it.
fn sign_and_maybe_execute(
    r: &Request<'_>,
    proposal_id: &str,
    organisation: u16,
    action: &ProposedAction,
    approver: &str,
) -> Checked {
    exec(
        r.conn,
        "INSERT INTO proposal_approvals (proposal_id, approver, at_ms, height)
         VALUES (?1, ?2, ?3, ?4)",
        params![proposal_id, approver, r.now_ms as i64, r.height as i64],
    )?;
    if !rule_met(r, proposal_id, organisation, action)? {
        return Ok(());
    }
    execute(r, proposal_id, action, organisation)?;
    exec(
        r.conn,
        "UPDATE proposals SET executed_height = ?2 WHERE id = ?1",
        params![proposal_id, r.height as i64],
    )?;
    Ok(())
}

/// The administrator rule: the operator, and one other active administrator of the
/// organisation if there is any. Approvals are counted as they stand now: an approver
/// deactivated since they signed no longer counts.
fn rule_met(
    r: &Request<'_>,
    proposal_id: &str,
    organisation: u16,
    action: &ProposedAction,
) -> Checked<bool> {
    let target = action.target();
    let signers: Vec<String> = r
        .conn
        .prepare_cached("SELECT approver FROM proposal_approvals WHERE proposal_id = ?1")?
        .query_map(params![proposal_id], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    if let ProposedAction::RotateEncryptionKey { .. } = action {
        // 2f+1 organisations, each counted once by its operator's signature, the
        // organisation itself among them (it proposed).
        let n = r.n_replicas;
        let quorum = 2 * (n.saturating_sub(1) / 3) + 1;
        let orgs: std::collections::BTreeSet<u16> = (0..n as u16)
            .filter(|o| signers.contains(&organisation_approver(*o)))
            .collect();
        return Ok(orgs.len() >= quorum && orgs.contains(&organisation));
    }
    if let ProposedAction::OpenBreakGlass { patient, .. } = action {
        let Some(p) = user(r.conn, patient)? else {
            return Ok(false);
        };
        let proposer = proposer_of(r, proposal_id)?;
        let mut second = false;
        for s in signers.iter().filter(|s| **s != proposer) {
            if let Some(u) = user(r.conn, s)? {
                second |= u.active
                    && ((u.role == UserRole::Doctor && u.organisation == organisation)
                        || super::break_glass::is_patients_department(&u, &p));
            }
        }
        return Ok(second);
    }
    if let ProposedAction::ErasePatient { patient, .. } = action {
        let Some(p) = user(r.conn, patient)? else {
            return Ok(false);
        };
        let mut department = false;
        for s in signers.iter().filter(|s| *s != patient) {
            if let Some(u) = user(r.conn, s)? {
                department |= u.active
                    && u.role == UserRole::Department
                    && u.organisation == p.organisation
                    && u.department == p.department;
            }
        }
        return Ok(department && signers.iter().any(|s| s == patient));
    }
    let operator = signers.iter().any(|s| s == OPERATOR_APPROVER);
    let mut admins = 0;
    for s in signers
        .iter()
        .filter(|s| *s != OPERATOR_APPROVER && *s != target)
    {
        if let Some(u) = user(r.conn, s)? {
            if u.active && u.role == UserRole::Department && u.organisation == organisation {
                admins += 1;
            }
        }
    }
    let others = administrators(r, organisation, Some(target))?;
    Ok(operator && (admins >= 1 || others == 0))
}

/// What a proposal checks when proposed (and again when it executes: the state may have
/// changed in between).
fn check_action(r: &Request<'_>, action: &ProposedAction, organisation: u16) -> Checked {
    match action {
        ProposedAction::RegisterAdministrator {
            user_id,
            department,
            display_name,
        } => check_new_user(
            r,
            &NewUser {
                user_id,
                role: UserRole::Department,
                department,
                display_name,
            },
        ),
        ProposedAction::DeactivateAdministrator { user_id } => match user(r.conn, user_id)? {
            Some(u)
                if u.active
                    && u.role == UserRole::Department
                    && u.organisation == organisation =>
            {
                Ok(())
            }
            Some(_) => reject(
                Outcome::Forbidden,
                format!("{user_id} is not an active department administrator of organisation {organisation}"),
            ),
            None => reject(Outcome::NotFound, format!("no user {user_id}")),
        },
        ProposedAction::OpenBreakGlass {
            patient,
            reason,
            duration_ms,
        } => super::break_glass::check_opening(r, patient, reason, *duration_ms),
        ProposedAction::RotateEncryptionKey {
            organisation: o,
            public_key,
        } => {
            if r.encryption_keys.is_empty() {
                return reject(Outcome::Invalid, "this chain keeps content in clear");
            }
            if usize::from(*o) >= r.n_replicas {
                return reject(Outcome::Invalid, format!("no organisation {o}"));
            }
            let Some(key) = parse_key(public_key) else {
                return reject(Outcome::Invalid, "public_key: 64 hex digits");
            };
            if crate::policy::organisation_key(r.conn, r.encryption_keys, *o)? == Some(key) {
                return reject(Outcome::Conflict, "that is the organisation's key already");
            }
            Ok(())
        }
        ProposedAction::ErasePatient {
            patient,
            sealed_reason,
        } => {
            if sealed_reason.len() > ERASURE_REASON_MAX_HEX {
                return reject(Outcome::Invalid, "sealed_reason is too long");
            }
            match user(r.conn, patient)? {
                Some(u) if u.role == UserRole::Patient && u.organisation == organisation => {}
                Some(_) => {
                    return reject(
                        Outcome::Forbidden,
                        format!("{patient} is not a patient of organisation {organisation}"),
                    )
                }
                None => return reject(Outcome::NotFound, format!("no user {patient}")),
            }
            if erased(r, patient)? {
                return reject(Outcome::Conflict, format!("{patient} was already erased"));
            }
            Ok(())
        }
    }
}

/// Longest sealed erasure reason (hex of an envelope of at most 500 characters).
const ERASURE_REASON_MAX_HEX: usize = 2 * (4 * 500 + medchain_seal::envelope::OVERHEAD);

/// 32 bytes from 64 hex digits.
fn parse_key(hex_key: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(hex_key, &mut out).ok()?;
    Some(out)
}

/// Who proposed `proposal_id` (their signature is its first).
fn proposer_of(r: &Request<'_>, proposal_id: &str) -> Checked<String> {
    Ok(r.conn
        .prepare_cached("SELECT proposer FROM proposals WHERE id = ?1")?
        .query_row(params![proposal_id], |row| row.get(0))?)
}

fn erased(r: &Request<'_>, patient: &str) -> Checked<bool> {
    let row: Option<i64> = r
        .conn
        .prepare_cached("SELECT 1 FROM erasures WHERE patient = ?1")?
        .query_row(params![patient], |row| row.get(0))
        .optional()?;
    Ok(row.is_some())
}

/// Crypto-shredding: delete the patient's record content and every sealed copy of their
/// data keys (without which no copy of the content anywhere opens), blank their name,
/// and deactivate them. Records' metadata, proposals and the audit trail stay, naming
/// only the patient's id.
fn erase(r: &Request<'_>, proposal_id: &str, patient: &str) -> Checked {
    exec(
        r.conn,
        "INSERT INTO erasures (patient, proposal_id, at_ms, height) VALUES (?1, ?2, ?3, ?4)",
        params![patient, proposal_id, r.now_ms as i64, r.height as i64],
    )?;
    crate::sealed::shred(r.conn, patient)?;
    r.erased.set(true);
    exec(
        r.conn,
        "UPDATE users SET active = 0 WHERE user_id = ?1",
        params![patient],
    )?;
    Ok(())
}

fn execute(
    r: &Request<'_>,
    proposal_id: &str,
    action: &ProposedAction,
    organisation: u16,
) -> Checked {
    check_action(r, action, organisation)?;
    match action {
        ProposedAction::ErasePatient { patient, .. } => erase(r, proposal_id, patient),
        ProposedAction::RotateEncryptionKey {
            organisation: o,
            public_key,
        } => {
            let key = parse_key(public_key).unwrap_or_default();
            exec(
                r.conn,
                "INSERT OR REPLACE INTO organisation_keys (organisation, public_key, height)
                 VALUES (?1, ?2, ?3)",
                params![o, &key[..], r.height as i64],
            )?;
            Ok(())
        }
        ProposedAction::OpenBreakGlass {
            patient,
            reason,
            duration_ms,
        } => {
            let doctor = proposer_of(r, proposal_id)?;
            match user(r.conn, &doctor)? {
                Some(d) if d.active && d.role == UserRole::Doctor => {
                    super::break_glass::record_opening(r, &d, patient, reason, *duration_ms)
                }
                _ => reject(
                    Outcome::Forbidden,
                    format!("{doctor} is no longer an active doctor"),
                ),
            }
        }
        ProposedAction::RegisterAdministrator {
            user_id,
            department,
            display_name,
        } => insert_user(
            r,
            &NewUser {
                user_id,
                role: UserRole::Department,
                department,
                display_name,
            },
            organisation,
        ),
        ProposedAction::DeactivateAdministrator { user_id } => {
            exec(
                r.conn,
                "UPDATE users SET active = 0 WHERE user_id = ?1",
                params![user_id],
            )?;
            Ok(())
        }
    }
}
