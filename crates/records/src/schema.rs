//! The records state's tables and how a database gets them: created on first start,
//! seeded from the genesis (its users and standing consents), and refused when an older
//! MedChain wrote it in a layout this one cannot replay.

use medchain_store::rusqlite::{params, Connection, OptionalExtension};
use medchain_store::ApplyError;
use medchain_types::Genesis;

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
CREATE INDEX IF NOT EXISTS users_org_department ON users(organisation, department, role);
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
    height     INTEGER NOT NULL,
    -- the patient's department's review (see ReviewBreakGlass)
    reviewed_by    TEXT,
    review_note    TEXT,
    reviewed_at_ms INTEGER
);
CREATE INDEX IF NOT EXISTS break_glass_pair ON break_glass(doctor, patient);
CREATE INDEX IF NOT EXISTS break_glass_patient ON break_glass(patient, until_ms);
CREATE TABLE IF NOT EXISTS break_glass_approvals (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    doctor      TEXT NOT NULL,
    patient     TEXT NOT NULL,
    approver    TEXT NOT NULL,
    at_ms       INTEGER NOT NULL,
    height      INTEGER NOT NULL,
    used_height INTEGER
);
CREATE INDEX IF NOT EXISTS break_glass_approvals_pair ON break_glass_approvals(doctor, patient);
-- Co-signed actions (Propose / ApproveProposal): one row per proposal, one per approval.
CREATE TABLE IF NOT EXISTS proposals (
    id              TEXT PRIMARY KEY,
    organisation    INTEGER NOT NULL,
    kind            TEXT NOT NULL,
    -- the action, as its JSON (ProposedAction)
    action          TEXT NOT NULL,
    target          TEXT NOT NULL,
    proposer        TEXT NOT NULL,
    created_ms      INTEGER NOT NULL,
    expires_ms      INTEGER NOT NULL,
    height          INTEGER NOT NULL,
    executed_height INTEGER
);
CREATE INDEX IF NOT EXISTS proposals_open ON proposals(organisation, executed_height);
CREATE TABLE IF NOT EXISTS proposal_approvals (
    proposal_id TEXT NOT NULL,
    -- a user id, or '@operator' for the organisation's operator (no user id has an '@')
    approver    TEXT NOT NULL,
    at_ms       INTEGER NOT NULL,
    height      INTEGER NOT NULL,
    PRIMARY KEY (proposal_id, approver)
);
-- The department's reviews of access-monitor alerts (ReviewAlert); the alerts themselves
-- are computed from the ledger by every replica alike, not stored as transactions.
CREATE TABLE IF NOT EXISTS alert_reviews (
    alert_id    TEXT PRIMARY KEY,
    patient     TEXT NOT NULL,
    reviewer    TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    note        TEXT NOT NULL,
    at_ms       INTEGER NOT NULL,
    height      INTEGER NOT NULL
);
-- A patient's data key of each epoch, sealed to each organisation holding it
-- (SharePatientKey); the sealed bytes are content of block `height` under `hash`.
CREATE TABLE IF NOT EXISTS patient_keys (
    patient      TEXT NOT NULL,
    epoch        INTEGER NOT NULL,
    organisation INTEGER NOT NULL,
    hash         BLOB NOT NULL,
    height       INTEGER NOT NULL,
    -- the organisation's encryption key the copy is sealed to (its genesis key if NULL)
    recipient_key BLOB,
    PRIMARY KEY (patient, epoch, organisation)
);
-- Organisations' encryption keys replaced since the genesis (RotateEncryptionKey).
CREATE TABLE IF NOT EXISTS organisation_keys (
    organisation INTEGER PRIMARY KEY,
    public_key   BLOB NOT NULL,
    height       INTEGER NOT NULL
);
-- Patients erased at their request (ErasePatient): their content, sealed keys and name
-- are gone from the state; their records' metadata and the audit trail stay.
CREATE TABLE IF NOT EXISTS erasures (
    patient     TEXT PRIMARY KEY,
    proposal_id TEXT NOT NULL,
    at_ms       INTEGER NOT NULL,
    height      INTEGER NOT NULL
);
-- Break-glass reasons sealed to organisations: content of block `height` under `hash`,
-- about `patient` (shredded with the patient's keys).
CREATE TABLE IF NOT EXISTS reason_pieces (
    hash    BLOB PRIMARY KEY,
    patient TEXT NOT NULL,
    height  INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS reason_pieces_patient ON reason_pieces(patient);
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

/// The records state's layout version, kept in `records_meta` (the store's own tables
/// are versioned by SQLite's `user_version`).
pub const RECORDS_SCHEMA_VERSION: i64 = 6;

/// Upgrades from version `i + 1` to `i + 2`. Each must give exactly the state that
/// replaying the chain from the genesis under the current rules gives, and must be safe
/// to run on tables that `SCHEMA` already brought up to date.
const UPGRADES: &[Upgrade] = &[
    departments_per_organisation,
    break_glass_reviews,
    co_signed_proposals,
    patient_keys,
    sealed_reasons,
];

/// One step of [`UPGRADES`].
type Upgrade = fn(&Connection) -> Result<(), ApplyError>;

/// 2: departments are named per organisation. A consent to a department always meant
/// the department of the patient's own organisation, which is how the current rules
/// execute those old transactions too.
fn departments_per_organisation(conn: &Connection) -> Result<(), ApplyError> {
    conn.execute_batch(
        "UPDATE consents SET grantee_id =
             (SELECT organisation FROM users WHERE users.user_id = consents.patient)
             || ':' || grantee_id
         WHERE grantee_kind = 'department' AND instr(grantee_id, ':') = 0;
         DROP INDEX IF EXISTS users_department;",
    )?;
    Ok(())
}

/// 3: break-glass events are reviewed by the patient's department (the approvals table
/// is new, so `SCHEMA` creates it).
fn break_glass_reviews(conn: &Connection) -> Result<(), ApplyError> {
    for (column, ty) in [
        ("reviewed_by", "TEXT"),
        ("review_note", "TEXT"),
        ("reviewed_at_ms", "INTEGER"),
    ] {
        let present: i64 = conn.query_row(
            "SELECT COUNT(*) FROM pragma_table_info('break_glass') WHERE name = ?1",
            params![column],
            |r| r.get(0),
        )?;
        if present == 0 {
            conn.execute_batch(&format!("ALTER TABLE break_glass ADD COLUMN {column} {ty}"))?;
        }
    }
    Ok(())
}

/// 4: co-signed proposals and alert reviews. Their tables are new (`SCHEMA` creates
/// them). An older chain
/// in which an operator registered or deactivated a second department administrator
/// alone would now replay with that transaction refused; no such chain was deployed.
fn co_signed_proposals(_conn: &Connection) -> Result<(), ApplyError> {
    Ok(())
}

/// 5: patients' data keys sealed to organisations, and erasures. The tables are new (`SCHEMA` creates
/// it); a chain from before has no encryption keys in its genesis and keeps its content
/// in clear.
fn patient_keys(_conn: &Connection) -> Result<(), ApplyError> {
    // (`SCHEMA` creates `patient_keys` and `erasures`.)
    Ok(())
}

/// 6: break-glass reasons sealed to organisations. The table is new (`SCHEMA` creates
/// it); a chain from before has its reasons in clear, which still read.
fn sealed_reasons(_conn: &Connection) -> Result<(), ApplyError> {
    Ok(())
}

/// Create or check the tables, and seed the genesis state once.
pub fn migrate(conn: &Connection, genesis: &Genesis) -> Result<(), ApplyError> {
    conn.execute_batch(SCHEMA)?;
    // Before batches, outcomes had no index and payloads held one bare envelope; such a
    // chain would not replay the same way, so say so instead of running on it.
    let batched: i64 = conn.query_row(
        "SELECT COUNT(*) FROM pragma_table_info('outcomes') WHERE name = 'idx'",
        [],
        |r| r.get(0),
    )?;
    if batched == 0 {
        return Err(ApplyError::Unsupported(
            "this database was written by an older MedChain (transactions before \
             batching); initialise a new data directory",
        ));
    }
    let seeded: Option<i64> = conn
        .query_row(
            "SELECT value FROM records_meta WHERE key = 'genesis_seeded'",
            [],
            |r| r.get(0),
        )
        .optional()?;
    conn.execute_batch("BEGIN")?;
    let r = if seeded.is_none() {
        seed_genesis(conn, genesis)
    } else {
        upgrade(conn)
    };
    conn.execute_batch(if r.is_ok() { "COMMIT" } else { "ROLLBACK" })?;
    r
}

/// Bring a database of an older layout to the current one (inside the caller's
/// transaction).
fn upgrade(conn: &Connection) -> Result<(), ApplyError> {
    let version: i64 = conn
        .query_row(
            "SELECT value FROM records_meta WHERE key = 'schema_version'",
            [],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or(1);
    if version > RECORDS_SCHEMA_VERSION {
        return Err(ApplyError::Unsupported(
            "the records state was written by a newer MedChain",
        ));
    }
    for upgrade in UPGRADES.iter().skip((version - 1) as usize) {
        upgrade(conn)?;
    }
    set_version(conn)
}

fn set_version(conn: &Connection) -> Result<(), ApplyError> {
    conn.execute(
        "INSERT OR REPLACE INTO records_meta (key, value) VALUES ('schema_version', ?1)",
        params![RECORDS_SCHEMA_VERSION],
    )?;
    Ok(())
}

fn seed_genesis(conn: &Connection, g: &Genesis) -> Result<(), ApplyError> {
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
    set_version(conn)
}

#[cfg(test)]
mod tests {
    use super::*;
    use medchain_types::genesis::{GenesisConsent, GenesisUser, UserRole};
    use medchain_types::ReplicaId;

    fn genesis() -> Genesis {
        let user = |id: &str, role, org| GenesisUser {
            user_id: id.into(),
            role,
            organisation: ReplicaId(org),
            department: "cardiology".into(),
            display_name: id.into(),
        };
        Genesis {
            format_version: medchain_types::codec::FORMAT_VERSION,
            chain_id: "schema-test".into(),
            replicas: Vec::new(),
            clients: Vec::new(),
            users: vec![
                user("p0", UserRole::Patient, 0),
                user("p2", UserRole::Patient, 2),
            ],
            consents: vec![GenesisConsent {
                patient: "p0".into(),
                doctor: "d0".into(),
            }],
            policy: Default::default(),
            encryption_keys: Vec::new(),
        }
    }

    /// A version-1 database (department consents keyed by the bare name) comes out keyed
    /// by the patient's organisation, as replaying the chain under the current rules
    /// would key them; a second start changes nothing.
    #[test]
    fn version_1_department_consents_are_keyed_by_the_patients_organisation() {
        let conn = Connection::open_in_memory().expect("db");
        migrate(&conn, &genesis()).expect("fresh");
        conn.execute_batch(
            "INSERT INTO consents VALUES ('p0', 'department', 'cardiology', 1, NULL, NULL, 1);
             INSERT INTO consents VALUES ('p2', 'department', 'cardiology', 1, NULL, NULL, 1);
             DELETE FROM records_meta WHERE key = 'schema_version';",
        )
        .expect("a version-1 state");
        for _ in 0..2 {
            migrate(&conn, &genesis()).expect("upgrade");
            let mut ids: Vec<String> = conn
                .prepare("SELECT grantee_id FROM consents WHERE grantee_kind = 'department' ORDER BY patient")
                .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
                .expect("read");
            ids.sort();
            assert_eq!(ids, ["0:cardiology", "2:cardiology"]);
        }
        let v: i64 = conn
            .query_row(
                "SELECT value FROM records_meta WHERE key = 'schema_version'",
                [],
                |r| r.get(0),
            )
            .expect("version");
        assert_eq!(v, RECORDS_SCHEMA_VERSION);
    }
}
