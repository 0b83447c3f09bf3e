//! The read predicates of the records rules: who a user is, whether a consent, a
//! one-time code or break-glass access holds at a given time, and whether a doctor may
//! add a record. The ledger decides with them at execution and the API with them before
//! submitting (a fast, friendly refusal), so each rule exists once.

use medchain_store::rusqlite::{self, params, types::FromSqlError, Connection, OptionalExtension};
use medchain_types::UserRole;

use crate::outcome::Rejection;
use crate::tx::{consent_code_hash, Grantee};

/// A user as the state knows them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserRow {
    pub user_id: String,
    pub role: UserRole,
    pub organisation: u16,
    pub department: String,
    pub display_name: String,
    pub active: bool,
}

/// The role stored as `s`; `None` for a string this binary never writes.
pub fn parse_role(s: &str) -> Option<UserRole> {
    match s {
        "doctor" => Some(UserRole::Doctor),
        "patient" => Some(UserRole::Patient),
        "pharmacy" => Some(UserRole::Pharmacy),
        "department" => Some(UserRole::Department),
        _ => None,
    }
}

/// Read a stored role: an unknown one is a corrupt row, never a guess (an unknown role
/// is not a patient).
pub fn role_column(row: &rusqlite::Row<'_>, index: usize) -> rusqlite::Result<UserRole> {
    let s: String = row.get(index)?;
    parse_role(&s).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            index,
            rusqlite::types::Type::Text,
            Box::new(FromSqlError::Other(format!("unknown role {s:?}").into())),
        )
    })
}

/// Map a `users` row selected as (user_id, role, organisation, department, display_name,
/// active).
pub fn user_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<UserRow> {
    Ok(UserRow {
        user_id: r.get(0)?,
        role: role_column(r, 1)?,
        organisation: r.get(2)?,
        department: r.get(3)?,
        display_name: r.get(4)?,
        active: r.get::<_, i64>(5)? != 0,
    })
}

/// Look a user up (active or not).
pub fn user(conn: &Connection, id: &str) -> rusqlite::Result<Option<UserRow>> {
    conn.prepare_cached(
        "SELECT user_id, role, organisation, department, display_name, active
         FROM users WHERE user_id = ?1",
    )?
    .query_row(params![id], user_from_row)
    .optional()
}

/// A consent's grantee as the state stores it. Departments are named per organisation,
/// so a department's id is `"{organisation}:{department}"`: no string equality across
/// organisations grants anything.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GranteeKey {
    pub kind: &'static str,
    pub id: String,
}

impl GranteeKey {
    pub fn doctor(user_id: &str) -> Self {
        GranteeKey {
            kind: "doctor",
            id: user_id.to_string(),
        }
    }

    pub fn pharmacy(user_id: &str) -> Self {
        GranteeKey {
            kind: "pharmacy",
            id: user_id.to_string(),
        }
    }

    pub fn department(organisation: u16, department: &str) -> Self {
        GranteeKey {
            kind: "department",
            id: format!("{organisation}:{department}"),
        }
    }

    /// The key of `grantee` in a consent of a patient of `patient_organisation`.
    pub fn of(grantee: &Grantee, patient_organisation: u16) -> Self {
        match grantee {
            Grantee::Doctor(id) => Self::doctor(id),
            Grantee::Pharmacy(id) => Self::pharmacy(id),
            Grantee::Department(d) => Self::department(patient_organisation, d),
            Grantee::DepartmentOf {
                organisation,
                department,
            } => Self::department(*organisation, department),
        }
    }

    /// A stored department id split into (organisation, department); `None` for ids of
    /// users.
    pub fn split_department(kind: &str, id: &str) -> Option<(u16, String)> {
        if kind != "department" {
            return None;
        }
        let (org, name) = id.split_once(':')?;
        Some((org.parse().ok()?, name.to_string()))
    }
}

/// Whether `patient` has an unexpired, unrevoked consent to this grantee at `now_ms`.
pub fn consent_active(
    conn: &Connection,
    patient: &str,
    grantee: &GranteeKey,
    now_ms: u64,
) -> rusqlite::Result<bool> {
    let row: Option<(Option<i64>, Option<i64>)> = conn
        .prepare_cached(
            "SELECT expires_at_ms, revoked_at_ms FROM consents
             WHERE patient = ?1 AND grantee_kind = ?2 AND grantee_id = ?3",
        )?
        .query_row(params![patient, grantee.kind, grantee.id], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?;
    Ok(matches!(row, Some((exp, None)) if exp.is_none_or(|e| (e as u64) > now_ms)))
}

/// Whether a doctor may see a patient's records through consent (their own, or their
/// department's: the department of the doctor's own organisation).
pub fn doctor_has_consent(
    conn: &Connection,
    doctor: &UserRow,
    patient: &str,
    now_ms: u64,
) -> rusqlite::Result<bool> {
    Ok(
        consent_active(conn, patient, &GranteeKey::doctor(&doctor.user_id), now_ms)?
            || consent_active(
                conn,
                patient,
                &GranteeKey::department(doctor.organisation, &doctor.department),
                now_ms,
            )?,
    )
}

/// When a doctor's latest break-glass access to a patient ends (or ended), if ever granted.
/// Where a doctor stands against the daily break-glass limit at `now_ms`: how many they
/// opened in the last 24 hours, and the id of an unused, unexpired second approval for
/// this patient (which lets them open one more). The rule and the API's pre-check read
/// the same rows through this.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakGlassStanding {
    pub opened_last_24h: i64,
    pub approval: Option<i64>,
}

impl BreakGlassStanding {
    /// Whether another opening is allowed under `limit` (the genesis setting).
    pub fn allows(&self, limit: u32) -> bool {
        self.opened_last_24h < i64::from(limit) || self.approval.is_some()
    }

    /// The refusal's words, shared by the ledger and the API.
    pub fn refusal(&self, doctor: &str, limit: u32) -> String {
        format!(
            "{doctor} opened {} break-glass accesses in the last 24 hours (limit {limit}); \
             another doctor or the patient's department must approve this one",
            self.opened_last_24h
        )
    }
}

pub fn break_glass_standing(
    conn: &Connection,
    doctor: &str,
    patient: &str,
    now_ms: u64,
) -> rusqlite::Result<BreakGlassStanding> {
    use crate::limits::{BREAK_GLASS_APPROVAL_TTL_MS, BREAK_GLASS_LIMIT_WINDOW_MS};
    let since = now_ms.saturating_sub(BREAK_GLASS_LIMIT_WINDOW_MS) as i64;
    let opened_last_24h: i64 = conn
        .prepare_cached("SELECT COUNT(*) FROM break_glass WHERE doctor = ?1 AND at_ms > ?2")?
        .query_row(params![doctor, since], |row| row.get(0))?;
    let fresh = now_ms.saturating_sub(BREAK_GLASS_APPROVAL_TTL_MS) as i64;
    let approval: Option<i64> = conn
        .prepare_cached(
            "SELECT id FROM break_glass_approvals
             WHERE doctor = ?1 AND patient = ?2 AND used_height IS NULL AND at_ms > ?3
             ORDER BY id LIMIT 1",
        )?
        .query_row(params![doctor, patient, fresh], |row| row.get(0))
        .optional()?;
    Ok(BreakGlassStanding {
        opened_last_24h,
        approval,
    })
}

pub fn break_glass_until(
    conn: &Connection,
    doctor: &str,
    patient: &str,
) -> rusqlite::Result<Option<u64>> {
    let until: Option<i64> = conn
        .prepare_cached("SELECT MAX(until_ms) FROM break_glass WHERE doctor = ?1 AND patient = ?2")?
        .query_row(params![doctor, patient], |r| r.get(0))?;
    Ok(until.map(|u| u as u64))
}

/// Whether a doctor holds unexpired break-glass access to a patient.
pub fn break_glass_active(
    conn: &Connection,
    doctor: &str,
    patient: &str,
    now_ms: u64,
) -> rusqlite::Result<bool> {
    Ok(break_glass_until(conn, doctor, patient)?.is_some_and(|u| u > now_ms))
}

/// Whether `code` is an unused, unexpired one-time consent code of `patient` at `now_ms`
/// (the same condition `AddRecord` consumes it under).
pub fn consent_code_usable(
    conn: &Connection,
    patient: &str,
    code: &str,
    now_ms: u64,
) -> rusqlite::Result<bool> {
    let hash = consent_code_hash(patient, code);
    Ok(conn
        .prepare_cached(
            "SELECT 1 FROM consent_codes WHERE code_hash = ?1 AND patient = ?2
             AND used_height IS NULL AND expires_at_ms > ?3",
        )?
        .query_row(params![&hash.0[..], patient, now_ms as i64], |_| Ok(()))
        .optional()?
        .is_some())
}

/// The add-record consent rule: a doctor adds a record for a patient who consented (to
/// them or their department) or with the patient's usable one-time `consent_code`. The
/// outer error is SQLite failing, the inner one the rule saying no.
pub fn may_add_record(
    conn: &Connection,
    doctor: &UserRow,
    patient: &str,
    consent_code: Option<&str>,
    now_ms: u64,
) -> rusqlite::Result<Result<(), Rejection>> {
    if doctor_has_consent(conn, doctor, patient, now_ms)? {
        return Ok(Ok(()));
    }
    Ok(match consent_code {
        Some(code) if consent_code_usable(conn, patient, code, now_ms)? => Ok(()),
        Some(_) => Err(Rejection::forbidden(
            "consent code is wrong, used or expired",
        )),
        None => Err(Rejection::forbidden(format!(
            "no consent from {patient} for {}; ask the patient for consent or a one-time code",
            doctor.user_id
        ))),
    })
}

/// The organisations entitled to read `patient`'s data at `now_ms`, besides the
/// patient's home organisation: those of doctors and pharmacies with active consent, of
/// departments with active consent, and of doctors with open break-glass access. These
/// are the organisations the patient's data key is sealed to (`SharePatientKey`).
pub fn entitled_organisations(
    conn: &Connection,
    patient: &str,
    now_ms: u64,
) -> rusqlite::Result<Vec<u16>> {
    let mut stmt = conn.prepare_cached(
        "SELECT u.organisation FROM consents c JOIN users u ON u.user_id = c.grantee_id
          WHERE c.patient = ?1 AND c.grantee_kind IN ('doctor', 'pharmacy')
            AND c.revoked_at_ms IS NULL AND (c.expires_at_ms IS NULL OR c.expires_at_ms > ?2)
         UNION
         SELECT CAST(substr(c.grantee_id, 1, instr(c.grantee_id, ':') - 1) AS INTEGER)
           FROM consents c
          WHERE c.patient = ?1 AND c.grantee_kind = 'department'
            AND c.revoked_at_ms IS NULL AND (c.expires_at_ms IS NULL OR c.expires_at_ms > ?2)
         UNION
         SELECT u.organisation FROM break_glass b JOIN users u ON u.user_id = b.doctor
          WHERE b.patient = ?1 AND b.until_ms > ?2",
    )?;
    let rows = stmt.query_map(params![patient, now_ms as i64], |r| r.get::<_, i64>(0))?;
    let mut out = Vec::new();
    for org in rows {
        if let Ok(org) = u16::try_from(org?) {
            out.push(org);
        }
    }
    Ok(out)
}

/// Organisation `organisation`'s encryption key now: the last one its 2f+1 rotation put
/// on the ledger, else the genesis's (`None`: a chain in clear, or no such organisation).
pub fn organisation_key(
    conn: &Connection,
    genesis_keys: &[medchain_types::EncryptionKey],
    organisation: u16,
) -> rusqlite::Result<Option<[u8; 32]>> {
    let rotated: Option<Vec<u8>> = conn
        .prepare_cached("SELECT public_key FROM organisation_keys WHERE organisation = ?1")?
        .query_row(params![organisation], |r| r.get(0))
        .optional()?;
    if let Some(k) = rotated.and_then(|k| <[u8; 32]>::try_from(k.as_slice()).ok()) {
        return Ok(Some(k));
    }
    Ok(genesis_keys.get(usize::from(organisation)).map(|k| k.0))
}
