//! Deterministic execution of committed blocks into the records state. Every replica runs
//! the same transactions in the same order against the same rules, with the block's own
//! timestamp as "now", so every replica ends with the same state. The gateway checks the
//! same rules before submitting (for a fast, friendly answer); this is the check that
//! holds even against a faulty gateway.

use medchain_store::rusqlite::{self, params, Connection, OptionalExtension, Transaction};
use medchain_store::StateMachine;
use medchain_types::{decode, CommittedBlock, Genesis, UserRole};

use crate::tx::{
    consent_code_hash, prescription_code_hash, Actor, Batch, Envelope, Grantee, Transaction as Tx,
    CONSENT_CODE_TTL_MS, MAX_BATCH_BYTES, MAX_BATCH_TXS, MAX_REASON_CHARS, MAX_TX_BYTES,
};

/// What became of one transaction, kept so the gateway can answer its user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// Not allowed by the rules (no consent, wrong role, inactive user).
    Forbidden,
    /// Conflicts with the state (already dispensed, duplicate id).
    Conflict,
    /// Names something that does not exist.
    NotFound,
    /// Malformed (does not decode, bad field).
    Invalid,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Forbidden => "forbidden",
            Outcome::Conflict => "conflict",
            Outcome::NotFound => "not_found",
            Outcome::Invalid => "invalid",
        }
    }
    pub fn parse(s: &str) -> Outcome {
        match s {
            "ok" => Outcome::Ok,
            "forbidden" => Outcome::Forbidden,
            "conflict" => Outcome::Conflict,
            "not_found" => Outcome::NotFound,
            _ => Outcome::Invalid,
        }
    }
}

type Rejection = (Outcome, String);
type Exec = Result<(), Rejection>;

fn reject<T>(o: Outcome, msg: impl Into<String>) -> Result<T, Rejection> {
    Err((o, msg.into()))
}

/// Tables of the records state. Versioned by `records_meta.version`.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS records_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS users (
    user_id      TEXT PRIMARY KEY,
    role         TEXT NOT NULL,
    organisation INTEGER NOT NULL,
    department   TEXT NOT NULL,
    display_name TEXT NOT NULL,
    active       INTEGER NOT NULL,
    height       INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS users_department ON users(department, role);
CREATE TABLE IF NOT EXISTS consents (
    patient       TEXT NOT NULL,
    grantee_kind  TEXT NOT NULL,
    grantee_id    TEXT NOT NULL,
    granted_at_ms INTEGER NOT NULL,
    expires_at_ms INTEGER,
    revoked_at_ms INTEGER,
    height        INTEGER NOT NULL,
    PRIMARY KEY (patient, grantee_kind, grantee_id)
);
CREATE INDEX IF NOT EXISTS consents_grantee ON consents(grantee_kind, grantee_id);
CREATE TABLE IF NOT EXISTS consent_codes (
    code_hash     BLOB PRIMARY KEY,
    patient       TEXT NOT NULL,
    expires_at_ms INTEGER NOT NULL,
    used_height   INTEGER
);
CREATE TABLE IF NOT EXISTS records (
    record_id      TEXT PRIMARY KEY,
    patient        TEXT NOT NULL,
    doctor         TEXT NOT NULL,
    department     TEXT NOT NULL,
    content_hash   BLOB NOT NULL,
    amends         TEXT,
    rx_code_hash   BLOB,
    created_at_ms  INTEGER NOT NULL,
    height         INTEGER NOT NULL,
    via_client     INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS records_patient ON records(patient, height);
CREATE INDEX IF NOT EXISTS records_department ON records(department, height);
CREATE INDEX IF NOT EXISTS records_rx_code ON records(rx_code_hash);
CREATE TABLE IF NOT EXISTS dispenses (
    record_id TEXT PRIMARY KEY,
    pharmacy  TEXT NOT NULL,
    at_ms     INTEGER NOT NULL,
    height    INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS audit (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    patient     TEXT NOT NULL,
    reader      TEXT NOT NULL,
    reader_role TEXT NOT NULL,
    action      TEXT NOT NULL,
    reason      TEXT NOT NULL,
    at_ms       INTEGER NOT NULL,
    height      INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_patient ON audit(patient, id);
CREATE TABLE IF NOT EXISTS break_glass (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    doctor     TEXT NOT NULL,
    patient    TEXT NOT NULL,
    department TEXT NOT NULL,
    reason     TEXT NOT NULL,
    at_ms      INTEGER NOT NULL,
    until_ms   INTEGER NOT NULL,
    height     INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS break_glass_pair ON break_glass(doctor, patient);
CREATE TABLE IF NOT EXISTS outcomes (
    client     INTEGER NOT NULL,
    request_id INTEGER NOT NULL,
    -- the transaction's index in its request, or -n: all n transactions succeeded
    idx        INTEGER NOT NULL,
    height     INTEGER NOT NULL,
    outcome    TEXT NOT NULL,
    message    TEXT NOT NULL,
    PRIMARY KEY (client, request_id, idx)
);
";

/// The records state machine the store runs in each block's transaction.
#[derive(Debug)]
pub struct Ledger {
    genesis: Genesis,
}

impl Ledger {
    pub fn new(genesis: Genesis) -> Self {
        Ledger { genesis }
    }
}

impl StateMachine for Ledger {
    fn migrate(&mut self, conn: &Connection) -> rusqlite::Result<()> {
        conn.execute_batch(SCHEMA)?;
        // Before batches, outcomes had no index and payloads held one bare envelope; such a
        // chain would not replay the same way, so say so instead of running on it.
        let batched: i64 = conn.query_row(
            "SELECT COUNT(*) FROM pragma_table_info('outcomes') WHERE name = 'idx'",
            [],
            |r| r.get(0),
        )?;
        if batched == 0 {
            return Err(rusqlite::Error::ToSqlConversionFailure(
                "this database was written by an older MedChain (transactions before \
                 batching); initialise a new data directory"
                    .into(),
            ));
        }
        let seeded: Option<i64> = conn
            .query_row(
                "SELECT value FROM records_meta WHERE key = 'genesis_seeded'",
                [],
                |r| r.get(0),
            )
            .optional()?;
        if seeded.is_none() {
            conn.execute_batch("BEGIN")?;
            let r = seed_genesis(conn, &self.genesis);
            conn.execute_batch(if r.is_ok() { "COMMIT" } else { "ROLLBACK" })?;
            r?;
        }
        Ok(())
    }

    fn apply(&mut self, tx: &Transaction<'_>, block: &CommittedBlock) -> rusqlite::Result<()> {
        let now = block.header.timestamp_ms;
        let height = block.height();
        for r in &block.requests {
            let batch = match decode::<Batch>(&r.request.payload, MAX_BATCH_BYTES) {
                Ok(Batch(envs)) if (1..=MAX_BATCH_TXS).contains(&envs.len()) => envs,
                Ok(_) => {
                    record_outcome(tx, r, 0, height, &bad_batch("batch: 1 to 256 transactions"))?;
                    continue;
                }
                Err(_) => {
                    record_outcome(tx, r, 0, height, &bad_batch("payload does not decode"))?;
                    continue;
                }
            };
            let mut results = Vec::with_capacity(batch.len());
            for env in batch.iter() {
                // Counted, not encoded again: this runs for every transaction on every replica.
                let size = borsh::object_length(env).unwrap_or(usize::MAX);
                let result = if size > MAX_TX_BYTES {
                    Err((Outcome::Invalid, "transaction too large".to_string()))
                } else if writes_only_once_accepted(&env.tx) {
                    let before = tx.total_changes();
                    let result = execute(tx, env, r, now, height, self.genesis.n())?;
                    if result.is_err() && tx.total_changes() != before {
                        // A rejection after a write would leave that write behind: a bug
                        // in `writes_only_once_accepted`, and every replica would hit it
                        // alike. Stop rather than commit the partial transaction.
                        return Err(rusqlite::Error::ToSqlConversionFailure(
                            "a rejected transaction wrote without a savepoint".into(),
                        ));
                    }
                    result
                } else {
                    exec(tx, "SAVEPOINT one", [])?;
                    let result = execute(tx, env, r, now, height, self.genesis.n())?;
                    if result.is_ok() {
                        exec(tx, "RELEASE one", [])?;
                    } else {
                        // Nothing of a rejected transaction stays but its outcome.
                        exec(tx, "ROLLBACK TO one", [])?;
                        exec(tx, "RELEASE one", [])?;
                    }
                    result
                };
                results.push(result);
            }
            if results.iter().all(Result::is_ok) {
                record_all_ok(tx, r, results.len(), height)?;
            } else {
                for (index, result) in results.iter().enumerate() {
                    record_outcome(tx, r, index as i64, height, result)?;
                }
            }
        }
        Ok(())
    }
}

/// Transactions whose every rejection comes before their only write, so that they need
/// no savepoint to leave nothing behind when rejected. A savepoint copies each page it
/// first touches into the statement journal (16 KiB a page, five or so per record), a
/// fifth of the writer's time when replaying records. `add_record` with a consent code
/// is not among them: it spends the code, then may still find the record id taken.
fn writes_only_once_accepted(tx: &Tx) -> bool {
    matches!(
        tx,
        Tx::Marker
            | Tx::AuditRead { .. }
            | Tx::AddRecord {
                consent_code: None,
                ..
            }
    )
}

/// Run `sql` as a cached prepared statement: the same few statements run for every
/// transaction of every block, and parsing them each time was a measurable share of the
/// writer's time.
fn exec(conn: &Connection, sql: &str, params: impl rusqlite::Params) -> rusqlite::Result<usize> {
    conn.prepare_cached(sql)?.execute(params)
}

fn bad_batch(message: &str) -> Exec {
    Err((Outcome::Invalid, message.to_string()))
}

/// Keep that every one of the `n` transactions of request `r` succeeded, in one row with
/// `idx = -n` (see `query::outcome`). Most requests succeed entirely, and one row per
/// transaction cost about an eighth of the consensus bench's throughput (a gateway's
/// batch carries up to 256).
fn record_all_ok(
    tx: &Transaction<'_>,
    r: &medchain_types::SignedRequest,
    n: usize,
    height: u64,
) -> rusqlite::Result<()> {
    record_outcome(tx, r, -(n as i64), height, &Ok(()))
}

/// Keep what became of transaction `index` of request `r` for the gateway's answer
/// (`index = -n`: all n transactions, see `record_all_ok`).
fn record_outcome(
    tx: &Transaction<'_>,
    r: &medchain_types::SignedRequest,
    index: i64,
    height: u64,
    result: &Exec,
) -> rusqlite::Result<()> {
    let (outcome, message) = match result {
        Ok(()) => (Outcome::Ok, ""),
        Err((o, m)) => (*o, m.as_str()),
    };
    tx.prepare_cached(
        "INSERT OR REPLACE INTO outcomes (client, request_id, idx, height, outcome, message)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        r.request.client.0,
        r.request.request_id as i64,
        index,
        height as i64,
        outcome.as_str(),
        message
    ])?;
    Ok(())
}

fn seed_genesis(conn: &Connection, g: &Genesis) -> rusqlite::Result<()> {
    for u in &g.users {
        conn.execute(
            "INSERT OR IGNORE INTO users VALUES (?1, ?2, ?3, ?4, ?5, 1, 0)",
            params![
                u.user_id,
                u.role.as_str(),
                u.organisation.0,
                u.department,
                u.display_name
            ],
        )?;
    }
    for c in &g.consents {
        conn.execute(
            "INSERT OR IGNORE INTO consents VALUES (?1, 'doctor', ?2, 0, NULL, NULL, 0)",
            params![c.patient, c.doctor],
        )?;
    }
    conn.execute(
        "INSERT INTO records_meta (key, value) VALUES ('genesis_seeded', 1)",
        [],
    )?;
    Ok(())
}

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

pub fn parse_role(s: &str) -> Option<UserRole> {
    match s {
        "doctor" => Some(UserRole::Doctor),
        "patient" => Some(UserRole::Patient),
        "pharmacy" => Some(UserRole::Pharmacy),
        "department" => Some(UserRole::Department),
        _ => None,
    }
}

/// Look a user up (active or not).
pub fn user(conn: &Connection, id: &str) -> rusqlite::Result<Option<UserRow>> {
    conn.prepare_cached(
        "SELECT user_id, role, organisation, department, display_name, active
         FROM users WHERE user_id = ?1",
    )?
    .query_row(params![id], |r| {
        Ok(UserRow {
            user_id: r.get(0)?,
            role: parse_role(&r.get::<_, String>(1)?).unwrap_or(UserRole::Patient),
            organisation: r.get(2)?,
            department: r.get(3)?,
            display_name: r.get(4)?,
            active: r.get::<_, i64>(5)? != 0,
        })
    })
    .optional()
}

/// Whether `patient` has an unexpired, unrevoked consent to this grantee at `now_ms`.
pub fn consent_active(
    conn: &Connection,
    patient: &str,
    grantee: &Grantee,
    now_ms: u64,
) -> rusqlite::Result<bool> {
    let row: Option<(Option<i64>, Option<i64>)> = conn
        .prepare_cached(
            "SELECT expires_at_ms, revoked_at_ms FROM consents
             WHERE patient = ?1 AND grantee_kind = ?2 AND grantee_id = ?3",
        )?
        .query_row(params![patient, grantee.kind(), grantee.id()], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?;
    Ok(matches!(row, Some((exp, None)) if exp.is_none_or(|e| (e as u64) > now_ms)))
}

/// Whether a doctor may see a patient's records through consent (their own, or their
/// department's).
pub fn doctor_has_consent(
    conn: &Connection,
    doctor: &UserRow,
    patient: &str,
    now_ms: u64,
) -> rusqlite::Result<bool> {
    Ok(consent_active(
        conn,
        patient,
        &Grantee::Doctor(doctor.user_id.clone()),
        now_ms,
    )? || consent_active(
        conn,
        patient,
        &Grantee::Department(doctor.department.clone()),
        now_ms,
    )?)
}

/// When a doctor's latest break-glass access to a patient ends (or ended), if ever granted.
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

fn active_user(conn: &Connection, id: &str) -> Result<UserRow, Rejection> {
    match user(conn, id) {
        Ok(Some(u)) if u.active => Ok(u),
        Ok(Some(_)) => reject(Outcome::Forbidden, format!("user {id} is deactivated")),
        Ok(None) => reject(Outcome::NotFound, format!("no user {id}")),
        Err(_) => reject(Outcome::Invalid, "state unreadable"),
    }
}

fn need_role(u: &UserRow, role: UserRole) -> Exec {
    if u.role == role {
        Ok(())
    } else {
        reject(
            Outcome::Forbidden,
            format!(
                "{} is a {}, not a {}",
                u.user_id,
                u.role.as_str(),
                role.as_str()
            ),
        )
    }
}

fn text_ok(s: &str, field: &str, max_chars: usize) -> Exec {
    if s.chars().count() > max_chars {
        reject(
            Outcome::Invalid,
            format!("{field} is longer than {max_chars} characters"),
        )
    } else {
        Ok(())
    }
}

/// Execute one transaction. The outer `Result` is SQLite failing (fatal); the inner one
/// is the rules saying no (recorded).
fn execute(
    tx: &Transaction<'_>,
    env: &Envelope,
    r: &medchain_types::SignedRequest,
    now: u64,
    height: u64,
    n_replicas: usize,
) -> rusqlite::Result<Exec> {
    // Clients 0..n are the replicas' gateways, n..2n their operators (the CLI's user
    // administration); either way client c belongs to organisation c mod n.
    let client = usize::from(r.request.client.0);
    let org = (client % n_replicas.max(1)) as u16;
    let actor = match &env.actor {
        Actor::Operator if client < n_replicas => {
            return Ok(reject(
                Outcome::Forbidden,
                "only an operator key may act as the operator",
            ))
        }
        Actor::Operator => None,
        Actor::User(id) => match active_user(tx, id) {
            Ok(u) => Some(u),
            Err(rej) => return Ok(Err(rej)),
        },
    };
    let h = height as i64;
    let now_i = now as i64;
    Ok(match &env.tx {
        Tx::RegisterUser {
            user_id,
            role,
            department,
            display_name,
        } => {
            let check = (|| {
                if !medchain_types::genesis::valid_user_id(user_id) {
                    return reject(
                        Outcome::Invalid,
                        "user_id: 1 to 64 letters, digits, '-', '_' or '.'",
                    );
                }
                text_ok(display_name, "display_name", 100)?;
                text_ok(department, "department", 64)?;
                if let Some(a) = &actor {
                    need_role(a, UserRole::Department)?;
                    let own_dept = matches!(role, UserRole::Doctor | UserRole::Patient)
                        && *department == a.department;
                    if !(own_dept || *role == UserRole::Pharmacy) {
                        return reject(
                            Outcome::Forbidden,
                            "a department registers doctors and patients of its own department, and pharmacies",
                        );
                    }
                }
                Ok(())
            })();
            match check {
                Err(e) => Err(e),
                Ok(()) => {
                    if user(tx, user_id)?.is_some() {
                        Err((Outcome::Conflict, format!("user {user_id} already exists")))
                    } else {
                        let org = actor.as_ref().map_or(org, |a| a.organisation);
                        exec(
                            tx,
                            "INSERT INTO users VALUES (?1, ?2, ?3, ?4, ?5, 1, ?6)",
                            params![user_id, role.as_str(), org, department, display_name, h],
                        )?;
                        Ok(())
                    }
                }
            }
        }
        Tx::DeactivateUser { user_id } => match user(tx, user_id)? {
            None => Err((Outcome::NotFound, format!("no user {user_id}"))),
            Some(target) => {
                let allowed = match &actor {
                    None => target.organisation == org,
                    Some(a) => {
                        a.role == UserRole::Department
                            && matches!(target.role, UserRole::Doctor | UserRole::Patient)
                            && target.department == a.department
                    }
                };
                if allowed {
                    exec(
                        tx,
                        "UPDATE users SET active = 0 WHERE user_id = ?1",
                        params![user_id],
                    )?;
                    Ok(())
                } else {
                    Err((
                        Outcome::Forbidden,
                        "only the user's department (or organisation) may deactivate them".into(),
                    ))
                }
            }
        },
        Tx::GrantConsent {
            grantee,
            expires_at_ms,
        } => match patient_actor(&actor) {
            Err(e) => Err(e),
            Ok(p) => match grantee_exists(tx, grantee)? {
                Err(e) => Err(e),
                Ok(()) => {
                    exec(
                        tx,
                        "INSERT OR REPLACE INTO consents VALUES (?1, ?2, ?3, ?4, ?5, NULL, ?6)",
                        params![
                            p.user_id,
                            grantee.kind(),
                            grantee.id(),
                            now_i,
                            expires_at_ms.map(|e| e as i64),
                            h
                        ],
                    )?;
                    Ok(())
                }
            },
        },
        Tx::RevokeConsent { grantee } => match patient_actor(&actor) {
            Err(e) => Err(e),
            Ok(p) => {
                let n = exec(
                    tx,
                    "UPDATE consents SET revoked_at_ms = ?4, height = ?5
                     WHERE patient = ?1 AND grantee_kind = ?2 AND grantee_id = ?3
                       AND revoked_at_ms IS NULL",
                    params![p.user_id, grantee.kind(), grantee.id(), now_i, h],
                )?;
                if n == 0 {
                    Err((Outcome::NotFound, "no active consent to revoke".into()))
                } else {
                    Ok(())
                }
            }
        },
        Tx::CreateConsentCode { code_hash } => match patient_actor(&actor) {
            Err(e) => Err(e),
            Ok(p) => {
                let n = exec(
                    tx,
                    "INSERT OR IGNORE INTO consent_codes VALUES (?1, ?2, ?3, NULL)",
                    params![
                        &code_hash.0[..],
                        p.user_id,
                        now_i + CONSENT_CODE_TTL_MS as i64
                    ],
                )?;
                if n == 0 {
                    Err((Outcome::Conflict, "code already exists".into()))
                } else {
                    Ok(())
                }
            }
        },
        Tx::AddRecord {
            record_id,
            patient,
            content_hash,
            consent_code,
            amends,
            prescription_code_hash: rx,
        } => add_record(
            tx,
            &actor,
            AddRecord {
                record_id,
                patient,
                content_hash,
                consent_code: consent_code.as_deref(),
                amends: amends.as_deref(),
                rx: rx.as_ref(),
                request_content: &r.request.content_hashes,
            },
            now,
            height,
            org,
        )?,
        Tx::Dispense { record_id, code } => {
            dispense(tx, &actor, record_id, code.as_deref(), now, height)?
        }
        Tx::AuditRead {
            patient,
            action,
            reason,
        } => match (
            &actor,
            text_ok(reason, "reason", MAX_REASON_CHARS),
            text_ok(action, "action", 64),
        ) {
            (_, Err(e), _) | (_, _, Err(e)) => Err(e),
            (None, ..) => Err((
                Outcome::Forbidden,
                "the operator does not read records".into(),
            )),
            (Some(a), ..) => {
                exec(
                    tx,
                    "INSERT INTO audit (patient, reader, reader_role, action, reason, at_ms, height)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    params![patient, a.user_id, a.role.as_str(), action, reason, now_i, h],
                )?;
                Ok(())
            }
        },
        Tx::BreakGlass {
            patient,
            reason,
            duration_ms,
        } => {
            let check = (|| {
                let a = actor.as_ref().ok_or((
                    Outcome::Forbidden,
                    "only a doctor may break the glass".to_string(),
                ))?;
                need_role(a, UserRole::Doctor)?;
                if reason.trim().is_empty() {
                    return reject(Outcome::Invalid, "reason: required");
                }
                text_ok(reason, "reason", MAX_REASON_CHARS)?;
                if *duration_ms == 0 || *duration_ms > crate::tx::BREAK_GLASS_DEFAULT_MS {
                    return reject(Outcome::Invalid, "duration: 1 ms to 1 hour");
                }
                let p = active_user(tx, patient)?;
                need_role(&p, UserRole::Patient)?;
                Ok(a.clone())
            })();
            match check {
                Err(e) => Err(e),
                Ok(a) => {
                    exec(
                    tx,
                        "INSERT INTO break_glass (doctor, patient, department, reason, at_ms, until_ms, height)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                        params![a.user_id, patient, a.department, reason, now_i, now_i + *duration_ms as i64, h],
                    )?;
                    exec(
                    tx,
                        "INSERT INTO audit (patient, reader, reader_role, action, reason, at_ms, height)
                         VALUES (?1, ?2, 'doctor', 'break_glass', ?3, ?4, ?5)",
                        params![patient, a.user_id, reason, now_i, h],
                    )?;
                    Ok(())
                }
            }
        }
        Tx::Marker => Ok(()),
    })
}

fn patient_actor(actor: &Option<UserRow>) -> Result<&UserRow, Rejection> {
    match actor {
        Some(u) if u.role == UserRole::Patient => Ok(u),
        _ => reject(Outcome::Forbidden, "only the patient may do this"),
    }
}

fn grantee_exists(conn: &Connection, g: &Grantee) -> rusqlite::Result<Exec> {
    Ok(match g {
        Grantee::Department(d) => {
            let n: i64 = conn.query_row(
                "SELECT COUNT(*) FROM users WHERE department = ?1",
                params![d],
                |r| r.get(0),
            )?;
            if n > 0 {
                Ok(())
            } else {
                Err((Outcome::NotFound, format!("no department {d}")))
            }
        }
        Grantee::Doctor(id) | Grantee::Pharmacy(id) => {
            let want = if matches!(g, Grantee::Doctor(_)) {
                UserRole::Doctor
            } else {
                UserRole::Pharmacy
            };
            match user(conn, id)? {
                Some(u) if u.role == want && u.active => Ok(()),
                Some(_) => Err((
                    Outcome::Invalid,
                    format!("{id} is not an active {}", want.as_str()),
                )),
                None => Err((Outcome::NotFound, format!("no user {id}"))),
            }
        }
    })
}

struct AddRecord<'a> {
    record_id: &'a str,
    patient: &'a str,
    content_hash: &'a medchain_types::Hash32,
    consent_code: Option<&'a str>,
    amends: Option<&'a str>,
    rx: Option<&'a medchain_types::Hash32>,
    /// The content pieces the request carries (a batch carries one per record).
    request_content: &'a [medchain_types::Hash32],
}

fn add_record(
    tx: &Transaction<'_>,
    actor: &Option<UserRow>,
    a: AddRecord<'_>,
    now: u64,
    height: u64,
    org: u16,
) -> rusqlite::Result<Exec> {
    let doctor = match actor {
        Some(u) if u.role == UserRole::Doctor => u,
        _ => return Ok(reject(Outcome::Forbidden, "only a doctor adds records")),
    };
    if a.record_id.is_empty() || a.record_id.len() > 64 {
        return Ok(reject(Outcome::Invalid, "record_id: 1 to 64 characters"));
    }
    if !a.request_content.contains(a.content_hash) {
        return Ok(reject(
            Outcome::Invalid,
            "content hash is not the request's content",
        ));
    }
    match active_user(tx, a.patient) {
        Err(e) => return Ok(Err(e)),
        Ok(p) if p.role != UserRole::Patient => {
            return Ok(reject(
                Outcome::Invalid,
                format!("{} is not a patient", a.patient),
            ))
        }
        Ok(_) => {}
    }
    if let Some(prev) = a.amends {
        let of: Option<String> = tx
            .query_row(
                "SELECT patient FROM records WHERE record_id = ?1",
                params![prev],
                |r| r.get(0),
            )
            .optional()?;
        if of.as_deref() != Some(a.patient) {
            return Ok(reject(
                Outcome::NotFound,
                format!("amends: no record {prev} of this patient"),
            ));
        }
    }
    let mut allowed = doctor_has_consent(tx, doctor, a.patient, now)?;
    if let Some(code) = a.consent_code {
        let hash = consent_code_hash(a.patient, code);
        let n = exec(
            tx,
            "UPDATE consent_codes SET used_height = ?3
             WHERE code_hash = ?1 AND patient = ?2 AND used_height IS NULL AND expires_at_ms > ?4",
            params![&hash.0[..], a.patient, height as i64, now as i64],
        )?;
        if n == 0 && !allowed {
            return Ok(reject(
                Outcome::Forbidden,
                "consent code is wrong, used or expired",
            ));
        }
        allowed = allowed || n == 1;
    }
    if !allowed {
        return Ok(reject(
            Outcome::Forbidden,
            format!("no consent from {} for {}", a.patient, doctor.user_id),
        ));
    }
    let n = exec(
        tx,
        "INSERT OR IGNORE INTO records VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            a.record_id,
            a.patient,
            doctor.user_id,
            doctor.department,
            &a.content_hash.0[..],
            a.amends,
            a.rx.map(|h| h.0.to_vec()),
            now as i64,
            height as i64,
            org
        ],
    )?;
    Ok(if n == 0 {
        reject(Outcome::Conflict, format!("record {} exists", a.record_id))
    } else {
        Ok(())
    })
}

fn dispense(
    tx: &Transaction<'_>,
    actor: &Option<UserRow>,
    record_id: &str,
    code: Option<&str>,
    now: u64,
    height: u64,
) -> rusqlite::Result<Exec> {
    let pharmacy = match actor {
        Some(u) if u.role == UserRole::Pharmacy => u,
        _ => return Ok(reject(Outcome::Forbidden, "only a pharmacy dispenses")),
    };
    let row: Option<(String, Option<Vec<u8>>)> = tx
        .query_row(
            "SELECT patient, rx_code_hash FROM records WHERE record_id = ?1",
            params![record_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let Some((patient, rx_hash)) = row else {
        return Ok(reject(
            Outcome::NotFound,
            format!("no prescription {record_id}"),
        ));
    };
    let Some(rx_hash) = rx_hash else {
        return Ok(reject(
            Outcome::NotFound,
            format!("record {record_id} prescribes nothing"),
        ));
    };
    let by_code = code.is_some_and(|c| prescription_code_hash(c).0[..] == rx_hash[..]);
    let by_consent = consent_active(
        tx,
        &patient,
        &Grantee::Pharmacy(pharmacy.user_id.clone()),
        now,
    )?;
    if !(by_code || by_consent) {
        return Ok(reject(
            Outcome::Forbidden,
            "no consent from the patient and no valid prescription code",
        ));
    }
    let n = exec(
        tx,
        "INSERT OR IGNORE INTO dispenses VALUES (?1, ?2, ?3, ?4)",
        params![record_id, pharmacy.user_id, now as i64, height as i64],
    )?;
    Ok(if n == 0 {
        reject(
            Outcome::Conflict,
            format!("prescription {record_id} was already dispensed"),
        )
    } else {
        Ok(())
    })
}
