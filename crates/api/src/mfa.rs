//! Two-step sign-in with TOTP (RFC 6238: HMAC-SHA1, 6 digits, 30 s steps, one step of
//! skew either way), for a stolen password alone not to open a doctor's account, and the
//! step-up that emergency access asks for. Kept in the node-local sign-in database like
//! passwords, never on the ledger. The secret is sealed (XChaCha20-Poly1305, key derived
//! with HKDF-SHA256 from the organisation's gateway key, the user id as associated data),
//! so a copy of the database alone yields no secret; a code is accepted once (the last
//! step used is kept, RFC 6238 section 5.2); ten recovery codes, stored as SHA-256
//! hashes, each open one sign-in; wrong codes are throttled per user.

use std::sync::Mutex;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use medchain_store::rusqlite::{params, Connection, OptionalExtension};
use medchain_types::{Hash32, UserRole};
use rand::RngCore;
use subtle::ConstantTimeEq;
use totp_rs::{Algorithm, Secret, TOTP};
use zeroize::Zeroizing;

use crate::error::{ApiError, ApiResult};

/// RFC 6238's defaults, which every authenticator app understands.
const DIGITS: usize = 6;
const STEP_SECS: u64 = 30;
/// Steps of clock difference accepted either way.
const SKEW_STEPS: u64 = 1;
/// 160-bit secrets (RFC 4226 section 4 recommends at least 128, prefers 160).
const SECRET_BYTES: usize = 20;
/// Recovery codes made at confirmation; each is 10 characters of base32 (50 bits).
pub const RECOVERY_CODES: usize = 10;
const RECOVERY_CODE_CHARS: usize = 10;
/// Wrong codes per user before codes are refused for `WRONG_CODE_WINDOW_MS`.
const WRONG_CODES_MAX: i64 = 5;
const WRONG_CODE_WINDOW_MS: u64 = 15 * 60 * 1000;
/// Domain of the sealing key, so that no other use of the gateway key can collide.
const SEAL_INFO: &[u8] = b"medchain/v1/totp-secret-seal";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS totp (
    user_id TEXT PRIMARY KEY,
    nonce BLOB NOT NULL,
    sealed BLOB NOT NULL,
    confirmed INTEGER NOT NULL DEFAULT 0,
    last_step INTEGER NOT NULL DEFAULT 0,
    wrong_codes INTEGER NOT NULL DEFAULT 0,
    wrong_since_ms INTEGER NOT NULL DEFAULT 0,
    created_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS totp_recovery (
    user_id TEXT NOT NULL,
    code_hash BLOB NOT NULL,
    used_ms INTEGER,
    PRIMARY KEY (user_id, code_hash));
";

/// What `enroll` hands the user once: the secret for their app.
#[derive(Debug)]
pub struct Enrolment {
    /// Base32, as authenticator apps take it typed in.
    pub secret: String,
    pub otpauth_uri: String,
    /// The URI as a QR code (SVG), for the app's camera.
    pub qr_svg: String,
}

/// A user's two-step state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Factor {
    /// No confirmed factor.
    None,
    Enrolled,
}

/// The roles that work with other people's data, for whom a node may make MFA mandatory.
pub fn is_staff(role: UserRole) -> bool {
    matches!(
        role,
        UserRole::Doctor | UserRole::Pharmacy | UserRole::Department
    )
}

/// A row of `totp`.
struct Row {
    nonce: Vec<u8>,
    sealed: Vec<u8>,
    confirmed: bool,
    last_step: u64,
    wrong_codes: i64,
    wrong_since_ms: u64,
}

/// The node's TOTP factor store.
pub struct MfaService {
    db: Mutex<Connection>,
    seal: XChaCha20Poly1305,
    /// The organisation's name, shown by authenticator apps as the issuer.
    issuer: String,
    /// Staff (doctor, pharmacy, department) must enrol before they get a full session.
    pub required_for_staff: bool,
}

impl std::fmt::Debug for MfaService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MfaService")
            .field("required_for_staff", &self.required_for_staff)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The 6-digit code of `secret` at time step `step`.
fn code_at(secret: &[u8], step: u64) -> ApiResult<String> {
    let totp = TOTP::new_unchecked(
        Algorithm::SHA1,
        DIGITS,
        0,
        STEP_SECS,
        secret.to_vec(),
        None,
        String::new(),
    );
    Ok(totp.generate(step * STEP_SECS))
}

/// The step in `now_ms +- SKEW_STEPS` whose code is `code`, compared in constant time.
fn matching_step(secret: &[u8], code: &str, now_ms: u64) -> ApiResult<Option<u64>> {
    let now_step = now_ms / 1000 / STEP_SECS;
    let mut found = None;
    for step in now_step.saturating_sub(SKEW_STEPS)..=now_step + SKEW_STEPS {
        let expected = code_at(secret, step)?;
        if bool::from(expected.as_bytes().ct_eq(code.as_bytes())) {
            found = Some(step);
        }
    }
    Ok(found)
}

fn recovery_hash(code: &str) -> Vec<u8> {
    let normal: String = code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    Hash32::sha256(normal.as_bytes()).0.to_vec()
}

fn random_recovery_code() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut bytes = [0u8; RECOVERY_CODE_CHARS];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let chars: String = bytes
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect();
    format!("{}-{}", &chars[..5], &chars[5..])
}

/// A code as typed: 6 digits (spaces allowed), or a recovery code.
fn normalise(code: &str) -> Option<String> {
    let c: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    (c.len() <= 32 && !c.is_empty()).then_some(c)
}

impl MfaService {
    /// `seal_secret` is the organisation's gateway key (32 secret bytes); `issuer` its
    /// name. The tables live in `conn` (the node-local sign-in database).
    pub fn new(
        conn: Connection,
        seal_secret: &[u8; 32],
        issuer: &str,
        required_for_staff: bool,
    ) -> ApiResult<Self> {
        conn.execute_batch(SCHEMA)?;
        let hk = hkdf::Hkdf::<sha2::Sha256>::new(None, seal_secret);
        let mut key = Zeroizing::new([0u8; 32]);
        hk.expand(SEAL_INFO, key.as_mut())
            .map_err(|_| ApiError::internal("hkdf length"))?;
        Ok(MfaService {
            db: Mutex::new(conn),
            seal: XChaCha20Poly1305::new(key.as_ref().into()),
            issuer: issuer.to_string(),
            required_for_staff,
        })
    }

    fn row(&self, user_id: &str) -> ApiResult<Option<Row>> {
        let db = lock(&self.db);
        Ok(db
            .query_row(
                "SELECT nonce, sealed, confirmed, last_step, wrong_codes, wrong_since_ms
                 FROM totp WHERE user_id = ?1",
                params![user_id],
                |r| {
                    Ok(Row {
                        nonce: r.get(0)?,
                        sealed: r.get(1)?,
                        confirmed: r.get::<_, i64>(2)? != 0,
                        last_step: r.get::<_, i64>(3)?.max(0) as u64,
                        wrong_codes: r.get(4)?,
                        wrong_since_ms: r.get::<_, i64>(5)?.max(0) as u64,
                    })
                },
            )
            .optional()?)
    }

    fn open(&self, user_id: &str, row: &Row) -> ApiResult<Zeroizing<Vec<u8>>> {
        let nonce = XNonce::from_slice(&row.nonce);
        self.seal
            .decrypt(
                nonce,
                Payload {
                    msg: &row.sealed,
                    aad: user_id.as_bytes(),
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| ApiError::internal("a TOTP secret does not open with this node's key"))
    }

    /// Whether the user has a confirmed factor.
    pub fn factor(&self, user_id: &str) -> ApiResult<Factor> {
        Ok(match self.row(user_id)? {
            Some(r) if r.confirmed => Factor::Enrolled,
            _ => Factor::None,
        })
    }

    /// Whether this user must enrol before they get a full session.
    pub fn setup_pending(&self, user_id: &str, role: UserRole) -> ApiResult<bool> {
        Ok(self.required_for_staff && is_staff(role) && self.factor(user_id)? == Factor::None)
    }

    /// A new secret for the user, not yet in force (confirm with a first code). Replaces
    /// an unconfirmed one; a confirmed factor is never replaced here (409).
    pub fn enroll(&self, user_id: &str, now_ms: u64) -> ApiResult<Enrolment> {
        if self.factor(user_id)? == Factor::Enrolled {
            return Err(ApiError::conflict(
                "two-step sign-in is already set up for this account",
            ));
        }
        let mut secret = Zeroizing::new(vec![0u8; SECRET_BYTES]);
        rand::rngs::OsRng.fill_bytes(&mut secret);
        let mut nonce = [0u8; 24];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let sealed = self
            .seal
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: &secret,
                    aad: user_id.as_bytes(),
                },
            )
            .map_err(|_| ApiError::internal("sealing a TOTP secret"))?;
        lock(&self.db).execute(
            "INSERT OR REPLACE INTO totp (user_id, nonce, sealed, confirmed, created_ms)
             VALUES (?1, ?2, ?3, 0, ?4)",
            params![user_id, nonce.to_vec(), sealed, now_ms as i64],
        )?;
        let totp = TOTP::new_unchecked(
            Algorithm::SHA1,
            DIGITS,
            SKEW_STEPS as u8,
            STEP_SECS,
            secret.to_vec(),
            Some(self.issuer.clone()),
            user_id.to_string(),
        );
        let otpauth_uri = totp.get_url();
        let qr_svg = qrcode::QrCode::new(otpauth_uri.as_bytes())
            .map_err(ApiError::internal)?
            .render::<qrcode::render::svg::Color<'_>>()
            .min_dimensions(200, 200)
            .build();
        let encoded = match Secret::Raw(secret.to_vec()).to_encoded() {
            Secret::Encoded(s) => s,
            Secret::Raw(_) => return Err(ApiError::internal("base32 encoding")),
        };
        Ok(Enrolment {
            secret: encoded,
            otpauth_uri,
            qr_svg,
        })
    }

    /// Confirm an enrolment with a first code: the factor is in force from now on, and
    /// the recovery codes (returned once, stored hashed) are made.
    pub fn confirm(&self, user_id: &str, code: &str, now_ms: u64) -> ApiResult<Vec<String>> {
        let row = self
            .row(user_id)?
            .ok_or_else(|| ApiError::conflict("start with /api/mfa/totp/enroll"))?;
        if row.confirmed {
            return Err(ApiError::conflict("two-step sign-in is already set up"));
        }
        self.check_code(user_id, &row, code, now_ms)?;
        let codes: Vec<String> = (0..RECOVERY_CODES)
            .map(|_| random_recovery_code())
            .collect();
        let mut db = lock(&self.db);
        let tx = db.transaction()?;
        tx.execute(
            "UPDATE totp SET confirmed = 1 WHERE user_id = ?1",
            params![user_id],
        )?;
        tx.execute(
            "DELETE FROM totp_recovery WHERE user_id = ?1",
            params![user_id],
        )?;
        for c in &codes {
            tx.execute(
                "INSERT INTO totp_recovery (user_id, code_hash) VALUES (?1, ?2)",
                params![user_id, recovery_hash(c)],
            )?;
        }
        tx.commit()?;
        Ok(codes)
    }

    /// Check a code for a user with a confirmed factor: a TOTP code not used before, or
    /// an unused recovery code (at sign-in only: `recovery_allowed`). Wrong codes count
    /// toward the user's throttle.
    pub fn verify(
        &self,
        user_id: &str,
        code: &str,
        recovery_allowed: bool,
        now_ms: u64,
    ) -> ApiResult<()> {
        let row = self
            .row(user_id)?
            .filter(|r| r.confirmed)
            .ok_or_else(|| mfa_error("step_up_unavailable", "two-step sign-in is not set up"))?;
        let code = normalise(code).ok_or_else(wrong_code)?;
        if recovery_allowed && code.len() > DIGITS {
            self.throttled(&row, now_ms)?;
            let used = lock(&self.db).execute(
                "UPDATE totp_recovery SET used_ms = ?3
                 WHERE user_id = ?1 AND code_hash = ?2 AND used_ms IS NULL",
                params![user_id, recovery_hash(&code), now_ms as i64],
            )?;
            if used == 1 {
                return Ok(());
            }
            self.count_wrong(user_id, &row, now_ms)?;
            return Err(wrong_code());
        }
        self.check_code(user_id, &row, &code, now_ms)
    }

    fn throttled(&self, row: &Row, now_ms: u64) -> ApiResult<()> {
        if row.wrong_codes >= WRONG_CODES_MAX
            && now_ms < row.wrong_since_ms.saturating_add(WRONG_CODE_WINDOW_MS)
        {
            return Err(ApiError::throttled_for(
                "too many wrong codes; try again later",
                row.wrong_since_ms + WRONG_CODE_WINDOW_MS - now_ms,
            ));
        }
        Ok(())
    }

    fn count_wrong(&self, user_id: &str, row: &Row, now_ms: u64) -> ApiResult<()> {
        let fresh_window = now_ms >= row.wrong_since_ms.saturating_add(WRONG_CODE_WINDOW_MS);
        lock(&self.db).execute(
            "UPDATE totp SET wrong_codes = ?2, wrong_since_ms = ?3 WHERE user_id = ?1",
            params![
                user_id,
                if fresh_window { 1 } else { row.wrong_codes + 1 },
                if fresh_window {
                    now_ms as i64
                } else {
                    row.wrong_since_ms as i64
                }
            ],
        )?;
        Ok(())
    }

    /// A TOTP code, within the skew, for a step after the last one used.
    fn check_code(&self, user_id: &str, row: &Row, code: &str, now_ms: u64) -> ApiResult<()> {
        self.throttled(row, now_ms)?;
        let code = normalise(code).ok_or_else(wrong_code)?;
        let secret = self.open(user_id, row)?;
        let step = if code.len() == DIGITS && code.bytes().all(|b| b.is_ascii_digit()) {
            matching_step(&secret, &code, now_ms)?
        } else {
            None
        };
        match step {
            Some(s) if s > row.last_step => {
                // Only a step above the last: the same code (or an earlier one) again is
                // a replay, also when two requests race.
                let taken = lock(&self.db).execute(
                    "UPDATE totp SET last_step = ?2, wrong_codes = 0
                     WHERE user_id = ?1 AND last_step < ?2",
                    params![user_id, s as i64],
                )?;
                if taken == 1 {
                    Ok(())
                } else {
                    Err(mfa_error(
                        "code_used",
                        "this code was used already; wait for the next one",
                    ))
                }
            }
            Some(_) => Err(mfa_error(
                "code_used",
                "this code was used already; wait for the next one",
            )),
            None => {
                self.count_wrong(user_id, row, now_ms)?;
                Err(wrong_code())
            }
        }
    }

    /// Turn the factor off (the user proved it with a code first, see the route).
    pub fn disable(&self, user_id: &str) -> ApiResult<()> {
        let mut db = lock(&self.db);
        let tx = db.transaction()?;
        tx.execute("DELETE FROM totp WHERE user_id = ?1", params![user_id])?;
        tx.execute(
            "DELETE FROM totp_recovery WHERE user_id = ?1",
            params![user_id],
        )?;
        tx.commit()?;
        Ok(())
    }
}

fn mfa_error(code: &'static str, message: &str) -> ApiError {
    ApiError::new(axum::http::StatusCode::UNAUTHORIZED, code, message)
}

fn wrong_code() -> ApiError {
    mfa_error("mfa_invalid", "wrong or expired code")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA-1 rows (the 8-digit values; our 6 digits are their last
    /// six, since both are the same truncated HMAC modulo a power of ten).
    #[test]
    fn rfc_6238_test_vectors() {
        let secret = b"12345678901234567890";
        for (t, eight) in [
            (59u64, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ] {
            let code = code_at(secret, t / STEP_SECS).unwrap();
            assert_eq!(code, eight[2..], "T = {t}");
            let eight_digits = TOTP::new_unchecked(
                Algorithm::SHA1,
                8,
                0,
                30,
                secret.to_vec(),
                None,
                String::new(),
            );
            assert_eq!(eight_digits.generate(t), eight, "T = {t}");
        }
    }

    fn service(dir: &tempfile::TempDir) -> MfaService {
        let conn = Connection::open(dir.path().join("s.sqlite")).unwrap();
        MfaService::new(conn, &[7u8; 32], "St Mary's", true).unwrap()
    }

    fn secret_of(e: &Enrolment) -> Vec<u8> {
        Secret::Encoded(e.secret.clone()).to_bytes().unwrap()
    }

    #[test]
    fn enrol_confirm_then_a_code_once_within_one_step() {
        let dir = tempfile::tempdir().unwrap();
        let m = service(&dir);
        let t0 = 1_700_000_000_000u64;
        let e = m.enroll("d001", t0).unwrap();
        assert!(
            e.otpauth_uri.starts_with("otpauth://totp/"),
            "{}",
            e.otpauth_uri
        );
        assert!(e.qr_svg.contains("<svg"));
        let secret = secret_of(&e);
        let step = t0 / 1000 / STEP_SECS;
        // Not in force before confirmation.
        assert_eq!(m.factor("d001").unwrap(), Factor::None);
        assert!(m
            .verify("d001", &code_at(&secret, step).unwrap(), true, t0)
            .is_err());
        let codes = m
            .confirm("d001", &code_at(&secret, step).unwrap(), t0)
            .unwrap();
        assert_eq!(codes.len(), RECOVERY_CODES);
        assert_eq!(m.factor("d001").unwrap(), Factor::Enrolled);
        // The confirmation's code again: a replay.
        let replay = m.verify("d001", &code_at(&secret, step).unwrap(), true, t0);
        assert_eq!(replay.unwrap_err().code, "code_used");
        // The next step's code is accepted now (one step of skew), then not again.
        m.verify("d001", &code_at(&secret, step + 1).unwrap(), false, t0)
            .unwrap();
        assert!(m
            .verify("d001", &code_at(&secret, step + 1).unwrap(), false, t0)
            .is_err());
        // Two steps ahead, or an old step: outside the window.
        let later = t0 + 30_000;
        assert_eq!(
            m.verify("d001", &code_at(&secret, step + 4).unwrap(), false, later)
                .unwrap_err()
                .code,
            "mfa_invalid"
        );
        // A recovery code opens one sign-in, once; not a step-up.
        assert!(m.verify("d001", &codes[0], false, later).is_err());
        m.verify("d001", &codes[0].to_lowercase(), true, later)
            .unwrap();
        assert!(m.verify("d001", &codes[0], true, later).is_err());
        // A confirmed factor is not replaced by a new enrolment.
        assert_eq!(m.enroll("d001", later).unwrap_err().code, "conflict");
    }

    #[test]
    fn wrong_codes_are_throttled_and_the_secret_is_sealed() {
        let dir = tempfile::tempdir().unwrap();
        let m = service(&dir);
        let t0 = 1_700_000_000_000u64;
        let e = m.enroll("d001", t0).unwrap();
        let secret = secret_of(&e);
        m.confirm("d001", &code_at(&secret, t0 / 30_000).unwrap(), t0)
            .unwrap();
        for _ in 0..WRONG_CODES_MAX {
            assert_eq!(
                m.verify("d001", "000000", false, t0).unwrap_err().code,
                "mfa_invalid"
            );
        }
        let good = code_at(&secret, t0 / 30_000 + 1).unwrap();
        assert_eq!(
            m.verify("d001", &good, false, t0).unwrap_err().code,
            "throttled"
        );
        m.verify("d001", &good, false, t0 + WRONG_CODE_WINDOW_MS)
            .unwrap_err();
        // The database holds no secret: not the raw bytes, not the base32.
        drop(m);
        let file = std::fs::read(dir.path().join("s.sqlite")).unwrap();
        assert!(!file.windows(secret.len()).any(|w| w == secret.as_slice()));
        assert!(!file
            .windows(e.secret.len())
            .any(|w| w == e.secret.as_bytes()));
        // Another organisation's key cannot open it.
        let conn = Connection::open(dir.path().join("s.sqlite")).unwrap();
        let other = MfaService::new(conn, &[8u8; 32], "Elsewhere", true).unwrap();
        assert!(other
            .verify("d001", &good, false, t0 + 2 * WRONG_CODE_WINDOW_MS)
            .is_err());
    }
}
