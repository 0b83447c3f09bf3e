//! Sign-in and sessions of one node: Argon2id password hashes in the node's local
//! database (never on the ledger), short-lived JWTs (HS256 pinned, `iss`/`aud`/`exp`
//! checked, lifetime capped by the server, signed with a rotatable secret from an
//! owner-only key file), sessions as token families (a refresh token used twice ends
//! its family), passwords the users choose themselves (one set by an administrator only
//! opens the password change), and throttled sign-in (`crate::throttle`).

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::Duration;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use jsonwebtoken::{Algorithm, Header, Validation};
use medchain_store::rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use medchain_types::Hash32;
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ApiResult};
use crate::keyring::{FileStamp, KeyFileError, KeyRing, MAX_KID_CHARS};
use crate::throttle::{self, Attempt};

pub use crate::keyring::{token_secret_path, TOKEN_SECRET_FILE};
pub use crate::throttle::{ACCOUNT_FREE_FAILURES, ADDRESS_MAX_FAILURES, ADDRESS_WINDOW_MS};

/// Access-token lifetime, and the longest the server accepts whatever a token says.
pub const TOKEN_TTL_MS: u64 = 15 * 60 * 1000;
/// Refresh-token lifetime.
pub const REFRESH_TTL_MS: u64 = 8 * 60 * 60 * 1000;
/// How far in the future a token's `iat` may lie (clocks of one node drift little).
pub const MAX_CLOCK_SKEW_MS: u64 = 60 * 1000;
/// Open sessions per user; signing in once more ends the oldest.
pub const MAX_SESSIONS_PER_USER: i64 = 50;
/// Longest password accepted (Argon2 work is bounded by it).
pub const MAX_PASSWORD_CHARS: usize = 128;
pub const MIN_PASSWORD_CHARS: usize = 8;

const ISSUER: &str = "medchain";
/// States of a refresh token: usable, spent by a refresh, ended (logout, password change,
/// reuse). Only a spent one presented again is a sign of theft.
const REFRESH_ACTIVE: i64 = 0;
const REFRESH_ROTATED: i64 = 1;
const REFRESH_ENDED: i64 = 2;

/// What an access token allows.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum TokenScope {
    /// Everything the user's role allows.
    Session,
    /// Only `POST /api/password`: the password was set by an administrator.
    PasswordChange,
    /// Only the two-step enrolment routes: this node requires MFA for the user's role and
    /// they have not set it up.
    MfaSetup,
}

/// The claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    pub sub: String,
    pub role: String,
    pub iss: String,
    pub aud: String,
    pub iat: u64,
    pub exp: u64,
    pub jti: String,
    /// The session (token family) this token belongs to.
    pub sid: String,
    pub scope: TokenScope,
}

/// Who chose a password: the user (or a demo seed, exempt), or an administrator, in
/// which case the user must choose their own at first sign-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordOrigin {
    ChosenByUser,
    SetByAdministrator,
}

const SCHEMA_V0: &str = "
CREATE TABLE IF NOT EXISTS credentials (user_id TEXT PRIMARY KEY, phc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS refresh_tokens (
    token_hash BLOB PRIMARY KEY, user_id TEXT NOT NULL, role TEXT NOT NULL,
    expires_at_ms INTEGER NOT NULL, revoked INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS revoked_tokens (jti TEXT PRIMARY KEY, exp_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS gateway_meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
";

/// Migrations, in order; `PRAGMA user_version` counts those applied. Version 1: sessions
/// as families (refresh tokens of version 0 had none, so they are dropped: users sign in
/// once more after the upgrade), must-change passwords, the persistent throttle.
const MIGRATIONS: [&str; 1] = ["
ALTER TABLE credentials ADD COLUMN must_change INTEGER NOT NULL DEFAULT 0;
DROP TABLE refresh_tokens;
CREATE TABLE refresh_tokens (
    token_hash BLOB PRIMARY KEY, family_id TEXT NOT NULL, user_id TEXT NOT NULL,
    role TEXT NOT NULL, expires_at_ms INTEGER NOT NULL, state INTEGER NOT NULL DEFAULT 0);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);
CREATE TABLE session_families (
    family_id TEXT PRIMARY KEY, user_id TEXT NOT NULL, created_ms INTEGER NOT NULL,
    expires_at_ms INTEGER NOT NULL, ended INTEGER NOT NULL DEFAULT 0);
CREATE INDEX session_families_user ON session_families (user_id, created_ms);
"];

fn migrate(conn: &mut Connection) -> Result<(), medchain_store::rusqlite::Error> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute_batch(SCHEMA_V0)?;
    let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let applied = usize::try_from(version).unwrap_or(0);
    if applied < MIGRATIONS.len() {
        for m in &MIGRATIONS[applied..] {
            tx.execute_batch(m)?;
        }
        tx.pragma_update(None, "user_version", MIGRATIONS.len() as i64)?;
    }
    tx.execute_batch(throttle::SCHEMA)?;
    tx.commit()
}

#[derive(Debug, thiserror::Error)]
pub enum LocalDbError {
    #[error("gateway database: {0}")]
    Sqlite(#[from] medchain_store::rusqlite::Error),
    #[error("gateway database file: {0}")]
    Io(#[from] std::io::Error),
}

/// Open the node-local gateway database (credentials, sessions, throttle), creating it
/// owner-only if needed and bringing its schema up to date.
pub fn open_local_db(path: &Path) -> Result<Connection, LocalDbError> {
    crate::private_files::prepare_database(path)?;
    let mut conn = Connection::open(path)?;
    // The node and the CLI (`medchain user`) may write at once.
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    migrate(&mut conn)?;
    crate::private_files::secure_database(path)?;
    Ok(conn)
}

/// Hash a password with Argon2id (the crate's default parameters, OWASP's minimum).
pub fn hash_password(password: &str) -> Result<String, ApiError> {
    let mut salt = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(ApiError::internal)?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(ApiError::internal)
}

/// Store (or replace) a password the user chose, or one that is exempt from the change
/// at first sign-in (the demo accounts). Same as
/// `store_password_hash(.., PasswordOrigin::ChosenByUser)`.
pub fn set_password_hash(conn: &Connection, user_id: &str, phc: &str) -> ApiResult<()> {
    store_password_hash(conn, user_id, phc, PasswordOrigin::ChosenByUser)
}

/// Store (or replace) a user's password hash in a local database and end all of the
/// user's sessions and refresh tokens (a reset must lock out whoever knew the old one).
pub fn store_password_hash(
    conn: &Connection,
    user_id: &str,
    phc: &str,
    origin: PasswordOrigin,
) -> ApiResult<()> {
    let tx = conn.unchecked_transaction()?;
    write_credentials(&tx, user_id, phc, origin)?;
    end_user_sessions(&tx, user_id, None)?;
    tx.commit()?;
    Ok(())
}

fn write_credentials(
    conn: &Connection,
    user_id: &str,
    phc: &str,
    origin: PasswordOrigin,
) -> ApiResult<()> {
    let must_change = i64::from(origin == PasswordOrigin::SetByAdministrator);
    conn.execute(
        "INSERT OR REPLACE INTO credentials (user_id, phc, must_change) VALUES (?1, ?2, ?3)",
        params![user_id, phc, must_change],
    )?;
    Ok(())
}

/// End every session of `user_id` but `keep` (the one changing its password), and every
/// refresh token of the user (the kept session gets a new one).
fn end_user_sessions(conn: &Connection, user_id: &str, keep: Option<&str>) -> ApiResult<()> {
    conn.execute(
        "UPDATE session_families SET ended = 1 WHERE user_id = ?1 AND family_id IS NOT ?2",
        params![user_id, keep],
    )?;
    conn.execute(
        "UPDATE refresh_tokens SET state = ?2 WHERE user_id = ?1",
        params![user_id, REFRESH_ENDED],
    )?;
    Ok(())
}

/// Check a new password's length.
pub fn check_password_rules(password: &str) -> ApiResult<()> {
    let n = password.chars().count();
    if !(MIN_PASSWORD_CHARS..=MAX_PASSWORD_CHARS).contains(&n) {
        return Err(ApiError::invalid(format!(
            "password: {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters"
        )));
    }
    Ok(())
}

/// Rotate the token secret in the key file `key_file` (for the CLI, with or without
/// the node running: a running node picks the new file up at its next sign-in). Returns
/// the new key id. Tokens signed with the previous secrets stay valid until they expire.
pub fn rotate_token_secret(key_file: &Path, now_ms: u64) -> Result<String, KeyFileError> {
    let ring = crate::keyring::rotate_key_file(key_file, now_ms, TOKEN_TTL_MS + MAX_CLOCK_SKEW_MS)?;
    Ok(ring.current().kid.clone())
}

/// What a successful sign-in, refresh or password change hands out.
#[derive(Debug, Clone)]
pub struct Issued {
    pub token: String,
    pub refresh_token: String,
    pub expires_in: u64,
    pub claims: Claims,
}

/// A session to issue tokens in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRef {
    pub user_id: String,
    pub family_id: String,
    /// The password was set by an administrator: tokens only open the password change.
    pub must_change: bool,
    /// MFA is required here and not set up: tokens only open the enrolment.
    pub mfa_setup: bool,
}

/// The outcome of a refresh that was not simply invalid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refreshed {
    Granted(SessionRef),
    /// The token had been spent already: someone holds a copy. Its session was ended.
    Reused {
        user_id: String,
    },
}

/// A password that matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Credential {
    pub must_change: bool,
}

#[derive(Debug)]
struct LoadedKeys {
    ring: KeyRing,
    stamp: Option<FileStamp>,
}

/// Sessions of one node.
pub struct AuthService {
    db: Mutex<Connection>,
    keys: RwLock<LoadedKeys>,
    key_file: PathBuf,
    /// The checks every access token must pass, built once (see `verify`).
    validation: Validation,
    audience: String,
    /// A real hash to verify against when the account does not exist, so that timing does
    /// not tell which accounts exist.
    dummy_phc: String,
    /// Argon2 verifications run (what throttling must bound; tests count it).
    password_checks: AtomicU64,
}

impl std::fmt::Debug for AuthService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuthService { .. }")
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn random_token() -> String {
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

fn refresh_hash(token: &str) -> Vec<u8> {
    Hash32::sha256(token.as_bytes()).0.to_vec()
}

/// A refresh token's row with its session's and its user's state.
#[derive(Debug)]
struct RefreshRow {
    family_id: String,
    user_id: String,
    expires_at_ms: i64,
    state: i64,
    /// None when the session was pruned.
    family_ended: Option<i64>,
    /// None when the user has no password here any more.
    must_change: Option<i64>,
}

fn read_refresh_row(conn: &Connection, hash: &[u8]) -> ApiResult<Option<RefreshRow>> {
    Ok(conn
        .query_row(
            "SELECT r.family_id, r.user_id, r.expires_at_ms, r.state, f.ended, c.must_change
             FROM refresh_tokens r
             LEFT JOIN session_families f ON f.family_id = r.family_id
             LEFT JOIN credentials c ON c.user_id = r.user_id
             WHERE r.token_hash = ?1",
            params![hash],
            |r| {
                Ok(RefreshRow {
                    family_id: r.get(0)?,
                    user_id: r.get(1)?,
                    expires_at_ms: r.get(2)?,
                    state: r.get(3)?,
                    family_ended: r.get(4)?,
                    must_change: r.get(5)?,
                })
            },
        )
        .optional()?)
}

/// The token secret an older version kept in the database (where anyone who read the
/// file could mint tokens); `AuthService::new` moves it into the key file.
fn take_legacy_secret(conn: &Connection) -> ApiResult<Option<Vec<u8>>> {
    Ok(conn
        .query_row(
            "SELECT value FROM gateway_meta WHERE key = 'jwt_secret'",
            [],
            |r| r.get(0),
        )
        .optional()?)
}

/// Delete the old secret once it is in the key file: overwritten (`secure_delete`), not
/// only unlinked, and the log checkpointed, so its bytes do not linger in free pages.
fn forget_legacy_secret(conn: &Connection) -> ApiResult<()> {
    conn.pragma_update(None, "secure_delete", "ON")?;
    conn.execute("DELETE FROM gateway_meta WHERE key = 'jwt_secret'", [])?;
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    Ok(())
}

impl AuthService {
    /// `audience` names this node's API (tokens of another node are refused); `key_file`
    /// holds the token secrets (created owner-only if missing, see `crate::keyring`).
    pub fn new(
        conn: Connection,
        audience: String,
        key_file: &Path,
        now_ms: u64,
    ) -> ApiResult<Self> {
        let legacy = take_legacy_secret(&conn)?;
        let had_legacy = legacy.is_some();
        let ring = KeyRing::load_or_create(key_file, legacy, now_ms).map_err(ApiError::internal)?;
        if had_legacy {
            forget_legacy_secret(&conn)?;
        }
        let dummy_phc = hash_password("not a real password")?;
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[&audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        // Expiry is checked in `verify` against the service clock, with no leeway.
        validation.validate_exp = false;
        Ok(AuthService {
            db: Mutex::new(conn),
            keys: RwLock::new(LoadedKeys {
                ring,
                stamp: FileStamp::of(key_file).ok(),
            }),
            key_file: key_file.to_path_buf(),
            validation,
            audience,
            dummy_phc,
            password_checks: AtomicU64::new(0),
        })
    }

    /// Argon2 verifications run so far.
    pub fn password_checks(&self) -> u64 {
        self.password_checks.load(Ordering::SeqCst)
    }

    /// Whether `user_id` has a password on this node (so a failure may name the account).
    pub fn has_credentials(&self, user_id: &str) -> ApiResult<bool> {
        let found: Option<i64> = lock(&self.db)
            .prepare_cached("SELECT 1 FROM credentials WHERE user_id = ?1")?
            .query_row(params![user_id], |r| r.get(0))
            .optional()?;
        Ok(found.is_some())
    }

    /// Check a password, throttled: the attempt is reserved before Argon2 runs and given
    /// back only if the password is right (see `crate::throttle`).
    pub fn check_password(
        &self,
        user_id: &str,
        password: &str,
        addr: Option<IpAddr>,
        now: u64,
    ) -> ApiResult<Credential> {
        let attempt = Attempt::new(user_id, addr);
        let stored: Option<(String, i64)> = {
            let mut db = lock(&self.db);
            throttle::reserve(&mut db, &attempt, now)?;
            let found = db
                .prepare_cached("SELECT phc, must_change FROM credentials WHERE user_id = ?1")?
                .query_row(params![user_id], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            found
        };
        // Argon2 runs outside the database lock: sign-ins do not queue behind it.
        self.password_checks.fetch_add(1, Ordering::SeqCst);
        let phc = stored
            .as_ref()
            .map_or(self.dummy_phc.as_str(), |s| s.0.as_str());
        let parsed = PasswordHash::new(phc).map_err(ApiError::internal)?;
        let matches = Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok();
        match stored {
            Some((_, must_change)) if matches => {
                throttle::succeeded(&mut lock(&self.db), &attempt)?;
                Ok(Credential {
                    must_change: must_change != 0,
                })
            }
            _ => Err(ApiError::unauthorized("wrong username or password")),
        }
    }

    /// Start a session (token family) for a user who just signed in, and issue its first
    /// tokens. Expired sessions are pruned, and the user's oldest beyond
    /// `MAX_SESSIONS_PER_USER` ended.
    pub fn start_session(
        &self,
        user_id: &str,
        role: &str,
        must_change: bool,
        mfa_setup: bool,
        now: u64,
    ) -> ApiResult<Issued> {
        let family_id = random_token();
        {
            let mut db = lock(&self.db);
            let tx = db.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let stale = now.saturating_sub(REFRESH_TTL_MS + TOKEN_TTL_MS) as i64;
            tx.execute(
                "DELETE FROM session_families WHERE expires_at_ms < ?1",
                params![stale],
            )?;
            tx.execute(
                "DELETE FROM refresh_tokens WHERE expires_at_ms < ?1",
                params![now as i64],
            )?;
            tx.execute(
                "INSERT INTO session_families (family_id, user_id, created_ms, expires_at_ms)
                 VALUES (?1, ?2, ?3, ?4)",
                params![
                    family_id,
                    user_id,
                    now as i64,
                    (now + REFRESH_TTL_MS) as i64
                ],
            )?;
            tx.execute(
                "UPDATE session_families SET ended = 1 WHERE family_id IN (
                   SELECT family_id FROM session_families WHERE user_id = ?1 AND ended = 0
                   ORDER BY created_ms DESC LIMIT -1 OFFSET ?2)",
                params![user_id, MAX_SESSIONS_PER_USER],
            )?;
            tx.commit()?;
        }
        let session = SessionRef {
            user_id: user_id.into(),
            family_id,
            must_change,
            mfa_setup,
        };
        self.issue(&session, role, now)
    }

    /// Issue an access token and a new refresh token in an existing session.
    pub fn issue(&self, session: &SessionRef, role: &str, now: u64) -> ApiResult<Issued> {
        let claims = Claims {
            sub: session.user_id.clone(),
            role: role.into(),
            iss: ISSUER.into(),
            aud: self.audience.clone(),
            iat: now / 1000,
            exp: (now + TOKEN_TTL_MS) / 1000,
            jti: random_token(),
            sid: session.family_id.clone(),
            scope: if session.must_change {
                TokenScope::PasswordChange
            } else if session.mfa_setup {
                TokenScope::MfaSetup
            } else {
                TokenScope::Session
            },
        };
        let token = self.sign(&claims)?;
        let refresh_token = random_token();
        let expires = (now + REFRESH_TTL_MS) as i64;
        let db = lock(&self.db);
        db.execute(
            "INSERT INTO refresh_tokens (token_hash, family_id, user_id, role, expires_at_ms, state)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                refresh_hash(&refresh_token),
                session.family_id,
                session.user_id,
                role,
                expires,
                REFRESH_ACTIVE
            ],
        )?;
        db.execute(
            "UPDATE session_families SET expires_at_ms = MAX(expires_at_ms, ?2) WHERE family_id = ?1",
            params![session.family_id, expires],
        )?;
        Ok(Issued {
            token,
            refresh_token,
            expires_in: TOKEN_TTL_MS / 1000,
            claims,
        })
    }

    /// Sign with the newest secret of the key file (re-read if it was rotated on disk).
    fn sign(&self, claims: &Claims) -> ApiResult<String> {
        self.reload_keys_if_changed();
        let keys = self
            .keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let key = keys.ring.current();
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(key.kid.clone());
        jsonwebtoken::encode(&header, claims, &key.encoding).map_err(ApiError::internal)
    }

    /// Re-read the key file when it is not the version loaded (another process rotated
    /// it). A file that cannot be read leaves the loaded keys in place.
    fn reload_keys_if_changed(&self) {
        let stamp = FileStamp::of(&self.key_file).ok();
        {
            let keys = self
                .keys
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if stamp.is_some() && keys.stamp == stamp {
                return;
            }
        }
        match KeyRing::load(&self.key_file) {
            Ok(ring) => {
                *self
                    .keys
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) =
                    LoadedKeys { ring, stamp };
            }
            Err(e) => tracing::warn!(error = %e, "keeping the loaded token keys"),
        }
    }

    /// Rotate this node's token secret; returns the new key id.
    pub fn rotate_secret(&self, now_ms: u64) -> ApiResult<String> {
        let ring = crate::keyring::rotate_key_file(
            &self.key_file,
            now_ms,
            TOKEN_TTL_MS + MAX_CLOCK_SKEW_MS,
        )
        .map_err(ApiError::internal)?;
        let kid = ring.current().kid.clone();
        *self
            .keys
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = LoadedKeys {
            ring,
            stamp: FileStamp::of(&self.key_file).ok(),
        };
        Ok(kid)
    }

    /// The key id new tokens are signed with.
    pub fn current_kid(&self) -> String {
        self.reload_keys_if_changed();
        let keys = self
            .keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        keys.ring.current().kid.clone()
    }

    /// Check the signature with the key the header names (pinned algorithm, issuer,
    /// audience); an unknown key id re-reads the key file once.
    fn decode(&self, token: &str) -> ApiResult<Claims> {
        let invalid = || ApiError::unauthorized("invalid token");
        let header = jsonwebtoken::decode_header(token).map_err(|_| invalid())?;
        let kid = header
            .kid
            .filter(|k| !k.is_empty() && k.len() <= MAX_KID_CHARS)
            .ok_or_else(invalid)?;
        let known = {
            let keys = self
                .keys
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            keys.ring.get(&kid).is_some()
        };
        if !known {
            self.reload_keys_if_changed();
        }
        let keys = self
            .keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let key = keys.ring.get(&kid).ok_or_else(invalid)?;
        jsonwebtoken::decode::<Claims>(token, &key.decoding, &self.validation)
            .map(|d| d.claims)
            .map_err(|_| invalid())
    }

    /// Verify an access token: signature, issuer, audience; expiry against `now` (the
    /// injected clock); a lifetime no longer than `TOKEN_TTL_MS` and an `iat` not in the
    /// future, whatever the token says (a leaked secret cannot mint a year-long token);
    /// not revoked, and its session not ended. The scope is the extractors' to check.
    pub fn verify(&self, token: &str, now: u64) -> ApiResult<Claims> {
        let c = self.decode(token)?;
        if c.exp.saturating_mul(1000) <= now {
            return Err(ApiError::unauthorized("token expired"));
        }
        if c.exp.saturating_sub(c.iat) > TOKEN_TTL_MS / 1000 {
            return Err(ApiError::unauthorized("token lifetime exceeds the limit"));
        }
        if c.iat.saturating_mul(1000) > now + MAX_CLOCK_SKEW_MS {
            return Err(ApiError::unauthorized("token issued in the future"));
        }
        let db = lock(&self.db);
        // Every request asks these: the statements stay prepared.
        let revoked: Option<i64> = db
            .prepare_cached("SELECT 1 FROM revoked_tokens WHERE jti = ?1")?
            .query_row(params![c.jti], |r| r.get(0))
            .optional()?;
        if revoked.is_some() {
            return Err(ApiError::unauthorized("token revoked"));
        }
        let ended: Option<i64> = db
            .prepare_cached(
                "SELECT ended FROM session_families WHERE family_id = ?1 AND user_id = ?2",
            )?
            .query_row(params![c.sid, c.sub], |r| r.get(0))
            .optional()?;
        if ended != Some(0) {
            return Err(ApiError::unauthorized("session ended; sign in again"));
        }
        Ok(c)
    }

    /// Spend a refresh token. A token spent before ends its whole session (whoever
    /// refreshed first, the user or a thief, loses it too) and is reported as `Reused`.
    pub fn refresh(&self, refresh_token: &str, now: u64) -> ApiResult<Refreshed> {
        let hash = refresh_hash(refresh_token);
        let mut db = lock(&self.db);
        let tx = db.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let invalid = || ApiError::unauthorized("invalid or expired refresh token");
        let RefreshRow {
            family_id,
            user_id,
            expires_at_ms: expires,
            state,
            family_ended: ended,
            must_change,
        } = read_refresh_row(&tx, &hash)?.ok_or_else(invalid)?;
        if state == REFRESH_ROTATED {
            tx.execute(
                "UPDATE session_families SET ended = 1 WHERE family_id = ?1",
                params![family_id],
            )?;
            tx.execute(
                "UPDATE refresh_tokens SET state = ?2 WHERE family_id = ?1",
                params![family_id, REFRESH_ENDED],
            )?;
            tx.commit()?;
            return Ok(Refreshed::Reused { user_id });
        }
        let live = state == REFRESH_ACTIVE && ended == Some(0) && expires as u64 > now;
        let Some(must_change) = must_change.filter(|_| live) else {
            return Err(invalid());
        };
        tx.execute(
            "UPDATE refresh_tokens SET state = ?2 WHERE token_hash = ?1",
            params![hash, REFRESH_ROTATED],
        )?;
        tx.commit()?;
        // Whether MFA setup is still pending is the caller's to decide (it knows the
        // role and the node's MFA setting); until then, assume it is.
        Ok(Refreshed::Granted(SessionRef {
            user_id,
            family_id,
            must_change: must_change != 0,
            mfa_setup: true,
        }))
    }

    /// Revoke an access token (until it would have expired) and, if given, a refresh token.
    pub fn logout(&self, claims: &Claims, refresh_token: Option<&str>, now: u64) -> ApiResult<()> {
        let db = lock(&self.db);
        db.execute(
            "INSERT OR IGNORE INTO revoked_tokens (jti, exp_ms) VALUES (?1, ?2)",
            params![claims.jti, (claims.exp * 1000) as i64],
        )?;
        db.execute(
            "DELETE FROM revoked_tokens WHERE exp_ms < ?1",
            params![now as i64],
        )?;
        if let Some(t) = refresh_token {
            db.execute(
                "UPDATE refresh_tokens SET state = ?3 WHERE token_hash = ?1 AND user_id = ?2",
                params![refresh_hash(t), claims.sub, REFRESH_ENDED],
            )?;
        }
        Ok(())
    }

    /// Set a password as an administrator (a department registering a user): the user
    /// must choose their own at first sign-in, and any session they had ends.
    pub fn set_password(&self, user_id: &str, password: &str) -> ApiResult<()> {
        check_password_rules(password)?;
        let phc = hash_password(password)?;
        store_password_hash(
            &lock(&self.db),
            user_id,
            &phc,
            PasswordOrigin::SetByAdministrator,
        )
    }

    /// A signed-in user changes their own password (throttled like a sign-in, since it
    /// checks the current one). Every other session and every refresh token of the user
    /// ends; this session continues with the new tokens returned (and a token that only
    /// allowed the change is revoked).
    pub fn change_password(
        &self,
        claims: &Claims,
        current: &str,
        new: &str,
        addr: Option<IpAddr>,
        mfa_setup: bool,
        now: u64,
    ) -> ApiResult<Issued> {
        check_password_rules(new).map_err(|e| {
            ApiError::invalid(e.message.replacen("password", "new_password", 1))
                .with_field("new_password")
        })?;
        if current == new {
            return Err(
                ApiError::invalid("new_password: must differ from the current one")
                    .with_field("new_password"),
            );
        }
        self.check_password(&claims.sub, current, addr, now)
            .map_err(|e| match e.status.as_u16() {
                401 => ApiError::forbidden("current_password: wrong password")
                    .with_field("current_password"),
                _ => e,
            })?;
        let phc = hash_password(new)?;
        {
            let mut db = lock(&self.db);
            let tx = db.transaction_with_behavior(TransactionBehavior::Immediate)?;
            write_credentials(&tx, &claims.sub, &phc, PasswordOrigin::ChosenByUser)?;
            end_user_sessions(&tx, &claims.sub, Some(&claims.sid))?;
            if claims.scope == TokenScope::PasswordChange {
                tx.execute(
                    "INSERT OR IGNORE INTO revoked_tokens (jti, exp_ms) VALUES (?1, ?2)",
                    params![claims.jti, (claims.exp * 1000) as i64],
                )?;
            }
            tx.commit()?;
        }
        let session = SessionRef {
            user_id: claims.sub.clone(),
            family_id: claims.sid.clone(),
            must_change: false,
            mfa_setup,
        };
        self.issue(&session, &claims.role, now)
    }
}
