//! The token-signing secrets of a node, in their own owner-only key file instead of
//! `gateway.sqlite` (anyone who could read that file could mint tokens). The file holds
//! the current secret and the previous ones, each with a key id (`kid`) that tokens carry
//! in their header: after a rotation new tokens are signed with the newest secret while
//! tokens signed with an older one stay valid until they expire.
//!
//! Format, one key a line, oldest first: `v1 <kid> <created_ms> <secret as hex>`.

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use jsonwebtoken::{DecodingKey, EncodingKey};
use rand::RngCore;

use crate::private_files::{create_private, secure_dir, secure_file};

/// The key file's name in a node's data directory.
pub const TOKEN_SECRET_FILE: &str = "token-secret.key";
/// Bytes of one secret (HS256 wants at least 32).
const SECRET_BYTES: usize = 32;
/// Most keys a file holds; older ones signed tokens that have long expired.
pub const MAX_KEYS: usize = 16;
/// A larger key file is refused rather than read.
const MAX_KEY_FILE_BYTES: u64 = 64 * 1024;
/// Longest key id accepted in a token header.
pub const MAX_KID_CHARS: usize = 32;

/// The key file of the node whose data directory is `data_dir`.
pub fn token_secret_path(data_dir: &Path) -> PathBuf {
    data_dir.join(TOKEN_SECRET_FILE)
}

#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("token key file: {0}")]
    Io(#[from] std::io::Error),
    #[error("token key file {path}: {reason}")]
    Malformed { path: String, reason: String },
}

/// One signing secret. Its bytes never leave this module except as jsonwebtoken keys.
pub struct SigningKey {
    pub kid: String,
    pub created_ms: u64,
    secret: Vec<u8>,
    pub(crate) encoding: EncodingKey,
    pub(crate) decoding: DecodingKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey {{ kid: {}, .. }}", self.kid)
    }
}

impl SigningKey {
    fn new(kid: String, created_ms: u64, secret: Vec<u8>) -> SigningKey {
        SigningKey {
            encoding: EncodingKey::from_secret(&secret),
            decoding: DecodingKey::from_secret(&secret),
            kid,
            created_ms,
            secret,
        }
    }

    fn fresh(created_ms: u64) -> SigningKey {
        let mut secret = vec![0u8; SECRET_BYTES];
        rand::rngs::OsRng.fill_bytes(&mut secret);
        let mut kid = [0u8; 8];
        rand::rngs::OsRng.fill_bytes(&mut kid);
        SigningKey::new(hex::encode(kid), created_ms, secret)
    }
}

/// What identifies one version of the key file on disk (a rotation writes a new file
/// and renames it over the old, so the inode changes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStamp {
    ino: u64,
    len: u64,
    mtime_ns: i128,
}

impl FileStamp {
    pub fn of(path: &Path) -> std::io::Result<FileStamp> {
        let m = std::fs::metadata(path)?;
        Ok(FileStamp {
            ino: m.ino(),
            len: m.len(),
            mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
        })
    }
}

/// The keys of one key file, oldest first; never empty.
#[derive(Debug)]
pub struct KeyRing {
    keys: Vec<SigningKey>,
}

impl KeyRing {
    /// The key new tokens are signed with.
    pub fn current(&self) -> &SigningKey {
        // Never empty: every constructor holds at least one key.
        &self.keys[self.keys.len() - 1]
    }

    pub fn get(&self, kid: &str) -> Option<&SigningKey> {
        self.keys.iter().find(|k| k.kid == kid)
    }

    pub fn kids(&self) -> Vec<String> {
        self.keys.iter().map(|k| k.kid.clone()).collect()
    }

    /// Read the key file (refusing one that is too large or malformed), tightening its
    /// mode if someone loosened it.
    pub fn load(path: &Path) -> Result<KeyRing, KeyFileError> {
        let malformed = |reason: &str| KeyFileError::Malformed {
            path: path.display().to_string(),
            reason: reason.into(),
        };
        if std::fs::metadata(path)?.len() > MAX_KEY_FILE_BYTES {
            return Err(malformed("larger than 64 KiB"));
        }
        secure_file(path)?;
        let text = std::fs::read_to_string(path)?;
        let mut keys = Vec::new();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let f: Vec<&str> = line.split_whitespace().collect();
            let ["v1", kid, created, secret] = f.as_slice() else {
                return Err(malformed("expected 'v1 <kid> <created_ms> <hex>' lines"));
            };
            let created_ms = created.parse().map_err(|_| malformed("bad created_ms"))?;
            let secret = hex::decode(secret).map_err(|_| malformed("bad secret hex"))?;
            if secret.len() < SECRET_BYTES || kid.is_empty() || kid.len() > MAX_KID_CHARS {
                return Err(malformed("secret shorter than 32 bytes or bad kid"));
            }
            keys.push(SigningKey::new((*kid).to_string(), created_ms, secret));
        }
        if keys.is_empty() || keys.len() > MAX_KEYS {
            return Err(malformed("expected 1 to 16 keys"));
        }
        Ok(KeyRing { keys })
    }

    /// Load the key file, or create it (owner-only, `create_new`) holding `legacy` (a
    /// secret moved out of an older database) or a fresh secret. The folder is made
    /// owner-only too. Two processes creating it at once: one wins, the other loads.
    pub fn load_or_create(
        path: &Path,
        legacy: Option<Vec<u8>>,
        now_ms: u64,
    ) -> Result<KeyRing, KeyFileError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            secure_dir(dir)?;
        }
        if path.exists() {
            return KeyRing::load(path);
        }
        let key = match legacy {
            Some(secret) if secret.len() >= SECRET_BYTES => {
                let mut kid = [0u8; 8];
                rand::rngs::OsRng.fill_bytes(&mut kid);
                SigningKey::new(hex::encode(kid), now_ms, secret)
            }
            _ => SigningKey::fresh(now_ms),
        };
        let ring = KeyRing { keys: vec![key] };
        match create_private(path) {
            Ok(mut f) => {
                f.write_all(ring.render().as_bytes())?;
                f.sync_all()?;
                Ok(ring)
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => KeyRing::load(path),
            Err(e) => Err(e.into()),
        }
    }

    fn render(&self) -> String {
        self.keys
            .iter()
            .map(|k| format!("v1 {} {} {}\n", k.kid, k.created_ms, hex::encode(&k.secret)))
            .collect()
    }

    /// This ring with a new current key, keeping the previous keys whose tokens may still
    /// be valid: a key retired (its successor created) more than `keep_ms` ago signed
    /// only tokens that have expired by now.
    fn rotated(self, now_ms: u64, keep_ms: u64) -> KeyRing {
        let mut keys = self.keys;
        keys.push(SigningKey::fresh(now_ms));
        let retired_at: Vec<u64> = keys.iter().skip(1).map(|k| k.created_ms).collect();
        let mut kept: Vec<SigningKey> = keys
            .into_iter()
            .enumerate()
            .filter(|(i, _)| retired_at.get(*i).is_none_or(|r| r + keep_ms > now_ms))
            .map(|(_, k)| k)
            .collect();
        if kept.len() > MAX_KEYS {
            kept.drain(..kept.len() - MAX_KEYS);
        }
        KeyRing { keys: kept }
    }
}

/// Rotate the key file at `path`: add a new current secret and drop the secrets whose
/// tokens have all expired (those retired more than `keep_ms` ago). The new file is
/// written beside the old (owner-only, `create_new`) and renamed over it, so a reader
/// sees the old file or the new, never half of one. Returns the ring now in the file.
pub fn rotate_key_file(path: &Path, now_ms: u64, keep_ms: u64) -> Result<KeyRing, KeyFileError> {
    let ring = KeyRing::load(path)?.rotated(now_ms, keep_ms);
    let mut suffix = [0u8; 6];
    rand::rngs::OsRng.fill_bytes(&mut suffix);
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".{}.tmp", hex::encode(suffix)));
    let tmp = PathBuf::from(tmp);
    let written = (|| {
        let mut f = create_private(&tmp)?;
        f.write_all(ring.render().as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e.into());
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        // The rename is durable once the folder is.
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(ring)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_keeps_the_keys_of_live_tokens_only() -> Result<(), KeyFileError> {
        let tmp = tempfile::tempdir()?;
        let path = tmp.path().join(TOKEN_SECRET_FILE);
        let first = KeyRing::load_or_create(&path, None, 1_000)?;
        let k1 = first.current().kid.clone();
        let ring = rotate_key_file(&path, 2_000, 500)?;
        assert_eq!(ring.kids().len(), 2, "k1 retired 0 ms ago is kept");
        assert!(ring.get(&k1).is_some());
        let ring = rotate_key_file(&path, 10_000, 500)?;
        assert_eq!(ring.kids().len(), 2, "k1, retired 8 s ago, is dropped");
        assert!(ring.get(&k1).is_none());
        let loaded = KeyRing::load(&path)?;
        assert_eq!(loaded.kids(), ring.kids());
        Ok(())
    }

    #[test]
    fn a_malformed_or_weak_key_file_is_refused() -> Result<(), KeyFileError> {
        let tmp = tempfile::tempdir()?;
        let path = tmp.path().join(TOKEN_SECRET_FILE);
        std::fs::write(&path, "v1 k 1 abcd\n")?;
        assert!(matches!(
            KeyRing::load(&path),
            Err(KeyFileError::Malformed { .. })
        ));
        std::fs::write(&path, "")?;
        assert!(KeyRing::load(&path).is_err());
        Ok(())
    }
}
