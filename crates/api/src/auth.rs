//! Login and sessions: Argon2id password hashes in the node's local database (never on
//! the ledger), short-lived JWTs (HS256 pinned, `iss`/`aud`/`exp` checked, 15 minutes),
//! rotating refresh tokens, logout that revokes, and login throttling per account and
//! per client address.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Mutex;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use medchain_store::rusqlite::{params, Connection, OptionalExtension};
use medchain_types::Hash32;
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ApiResult};

/// Access-token lifetime (the issue's ceiling).
pub const TOKEN_TTL_MS: u64 = 15 * 60 * 1000;
/// Refresh-token lifetime.
pub const REFRESH_TTL_MS: u64 = 8 * 60 * 60 * 1000;
/// Failed logins tolerated per account or per address within `THROTTLE_WINDOW_MS`.
pub const MAX_FAILURES: u32 = 5;
pub const THROTTLE_WINDOW_MS: u64 = 15 * 60 * 1000;
/// Most throttle entries kept (oldest dropped first), so a flood cannot grow memory.
const MAX_THROTTLE_ENTRIES: usize = 10_000;
/// Longest password accepted (Argon2 work is bounded by it).
pub const MAX_PASSWORD_CHARS: usize = 128;
pub const MIN_PASSWORD_CHARS: usize = 8;

const ISSUER: &str = "medchain";

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
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS credentials (user_id TEXT PRIMARY KEY, phc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS refresh_tokens (
    token_hash BLOB PRIMARY KEY, user_id TEXT NOT NULL, role TEXT NOT NULL,
    expires_at_ms INTEGER NOT NULL, revoked INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS revoked_tokens (jti TEXT PRIMARY KEY, exp_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS gateway_meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
";

/// Open the node-local gateway database (credentials, sessions), creating it if needed.
pub fn open_local_db(path: &Path) -> Result<Connection, medchain_store::rusqlite::Error> {
    let conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.execute_batch(SCHEMA)?;
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

/// Store (or replace) a user's password hash in a local database.
pub fn set_password_hash(conn: &Connection, user_id: &str, phc: &str) -> ApiResult<()> {
    conn.execute(
        "INSERT OR REPLACE INTO credentials (user_id, phc) VALUES (?1, ?2)",
        params![user_id, phc],
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

#[derive(Debug, Default)]
struct Throttle {
    /// key -> (failures in window, window start)
    failures: HashMap<String, (u32, u64)>,
}

impl Throttle {
    fn blocked(&self, key: &str, now: u64) -> bool {
        self.failures
            .get(key)
            .is_some_and(|(n, start)| *n >= MAX_FAILURES && now < start + THROTTLE_WINDOW_MS)
    }
    fn fail(&mut self, key: String, now: u64) {
        if self.failures.len() >= MAX_THROTTLE_ENTRIES {
            self.failures
                .retain(|_, (_, start)| now < *start + THROTTLE_WINDOW_MS);
            if self.failures.len() >= MAX_THROTTLE_ENTRIES {
                if let Some(oldest) = self
                    .failures
                    .iter()
                    .min_by_key(|(_, (_, s))| *s)
                    .map(|(k, _)| k.clone())
                {
                    self.failures.remove(&oldest);
                }
            }
        }
        let e = self.failures.entry(key).or_insert((0, now));
        if now >= e.1 + THROTTLE_WINDOW_MS {
            *e = (0, now);
        }
        e.0 += 1;
    }
    fn clear(&mut self, key: &str) {
        self.failures.remove(key);
    }
}

/// What a successful login or refresh hands out.
#[derive(Debug, Clone)]
pub struct Issued {
    pub token: String,
    pub refresh_token: String,
    pub expires_in: u64,
    pub claims: Claims,
}

/// Sessions of one node.
pub struct AuthService {
    db: Mutex<Connection>,
    encoding: EncodingKey,
    decoding: DecodingKey,
    /// The checks every access token must pass, built once (see `verify`).
    validation: Validation,
    audience: String,
    throttle: Mutex<Throttle>,
    /// A real hash to verify against when the account does not exist, so that timing does
    /// not tell which accounts exist.
    dummy_phc: String,
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

impl AuthService {
    /// `audience` names this node's API (tokens of another node are refused).
    pub fn new(conn: Connection, audience: String) -> ApiResult<Self> {
        let secret: Option<Vec<u8>> = conn
            .query_row(
                "SELECT value FROM gateway_meta WHERE key = 'jwt_secret'",
                [],
                |r| r.get(0),
            )
            .optional()?;
        let secret = match secret {
            Some(s) => s,
            None => {
                let mut s = vec![0u8; 32];
                rand::rngs::OsRng.fill_bytes(&mut s);
                conn.execute(
                    "INSERT INTO gateway_meta (key, value) VALUES ('jwt_secret', ?1)",
                    params![s],
                )?;
                s
            }
        };
        let dummy_phc = hash_password("not a real password")?;
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[&audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        // Expiry is checked in `verify` against the service clock, with no leeway.
        validation.validate_exp = false;
        Ok(AuthService {
            db: Mutex::new(conn),
            encoding: EncodingKey::from_secret(&secret),
            decoding: DecodingKey::from_secret(&secret),
            validation,
            audience,
            throttle: Mutex::new(Throttle::default()),
            dummy_phc,
        })
    }

    /// Check a password (throttled), without issuing anything.
    pub fn check_password(
        &self,
        user_id: &str,
        password: &str,
        addr: Option<IpAddr>,
        now: u64,
    ) -> ApiResult<()> {
        let account_key = format!("u:{user_id}");
        let addr_key = addr.map(|a| format!("a:{a}"));
        {
            let t = lock(&self.throttle);
            if t.blocked(&account_key, now) || addr_key.as_ref().is_some_and(|k| t.blocked(k, now))
            {
                return Err(ApiError::throttled(
                    "too many failed logins; try again in 15 minutes",
                ));
            }
        }
        let phc: Option<String> = lock(&self.db)
            .query_row(
                "SELECT phc FROM credentials WHERE user_id = ?1",
                params![user_id],
                |r| r.get(0),
            )
            .optional()?;
        let ok = {
            let stored = phc.as_deref().unwrap_or(&self.dummy_phc);
            let parsed = PasswordHash::new(stored).map_err(ApiError::internal)?;
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
                && phc.is_some()
        };
        let mut t = lock(&self.throttle);
        if ok {
            t.clear(&account_key);
            Ok(())
        } else {
            t.fail(account_key, now);
            if let Some(k) = addr_key {
                t.fail(k, now);
            }
            Err(ApiError::unauthorized("wrong username or password"))
        }
    }

    /// Issue an access token and a refresh token.
    pub fn issue(&self, user_id: &str, role: &str, now: u64) -> ApiResult<Issued> {
        let claims = Claims {
            sub: user_id.into(),
            role: role.into(),
            iss: ISSUER.into(),
            aud: self.audience.clone(),
            iat: now / 1000,
            exp: (now + TOKEN_TTL_MS) / 1000,
            jti: random_token(),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(ApiError::internal)?;
        let refresh_token = random_token();
        lock(&self.db).execute(
            "INSERT INTO refresh_tokens (token_hash, user_id, role, expires_at_ms) VALUES (?1, ?2, ?3, ?4)",
            params![&Hash32::sha256(refresh_token.as_bytes()).0[..], user_id, role, (now + REFRESH_TTL_MS) as i64],
        )?;
        Ok(Issued {
            token,
            refresh_token,
            expires_in: TOKEN_TTL_MS / 1000,
            claims,
        })
    }

    /// Verify an access token: signature with the pinned algorithm, issuer, audience,
    /// expiry against `now` (the injected clock), and not revoked.
    pub fn verify(&self, token: &str, now: u64) -> ApiResult<Claims> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|_| ApiError::unauthorized("invalid token"))?;
        let c = data.claims;
        if c.exp * 1000 <= now {
            return Err(ApiError::unauthorized("token expired"));
        }
        // Every request asks this: the statement stays prepared.
        let revoked: Option<i64> = lock(&self.db)
            .prepare_cached("SELECT 1 FROM revoked_tokens WHERE jti = ?1")?
            .query_row(params![c.jti], |r| r.get(0))
            .optional()?;
        if revoked.is_some() {
            return Err(ApiError::unauthorized("token revoked"));
        }
        Ok(c)
    }

    /// Exchange a refresh token for new tokens; the old refresh token is spent.
    pub fn refresh(&self, refresh_token: &str, now: u64) -> ApiResult<(String, String)> {
        let hash = Hash32::sha256(refresh_token.as_bytes());
        let db = lock(&self.db);
        let row: Option<(String, String, i64, i64)> = db
            .query_row(
                "SELECT user_id, role, expires_at_ms, revoked FROM refresh_tokens WHERE token_hash = ?1",
                params![&hash.0[..]],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()?;
        match row {
            Some((user, role, exp, 0)) if exp as u64 > now => {
                db.execute(
                    "UPDATE refresh_tokens SET revoked = 1 WHERE token_hash = ?1",
                    params![&hash.0[..]],
                )?;
                Ok((user, role))
            }
            _ => Err(ApiError::unauthorized("invalid or expired refresh token")),
        }
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
                "UPDATE refresh_tokens SET revoked = 1 WHERE token_hash = ?1 AND user_id = ?2",
                params![&Hash32::sha256(t.as_bytes()).0[..], claims.sub],
            )?;
        }
        Ok(())
    }

    /// Set a user's password on this node.
    pub fn set_password(&self, user_id: &str, password: &str) -> ApiResult<()> {
        check_password_rules(password)?;
        let phc = hash_password(password)?;
        set_password_hash(&lock(&self.db), user_id, &phc)
    }
}
