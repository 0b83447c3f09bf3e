//! The sealed first keys of a genesis's patients. `medchain init` seals each genesis
//! patient's name under a data key and leaves that key, sealed to the patient's home
//! organisation, in that organisation's data folder (`FIRST_PATIENT_KEYS_FILE`). The key
//! steward publishes it as the patient's first key, after which it is removed from the
//! file (the file itself once empty), so that no copy outlives an erasure on the ledger.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;

use medchain_store::rusqlite::{params, Connection, OptionalExtension};

/// Most entries the file may hold (it lists genesis patients of one organisation).
const MAX_ENTRIES: usize = 100_000;

/// The first keys still to publish, by patient, and the file they came from.
#[derive(Debug, Default)]
pub struct FirstKeys {
    path: Option<PathBuf>,
    pending: Mutex<BTreeMap<String, String>>,
}

impl FirstKeys {
    /// Read `path` if it exists; entries the ledger already holds (a restart after
    /// publishing, before the file was rewritten) are dropped from it at once.
    pub fn load(path: PathBuf, conn: &Connection) -> Result<FirstKeys, String> {
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(FirstKeys::default()),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        let mut pending: BTreeMap<String, String> =
            toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        if pending.len() > MAX_ENTRIES {
            return Err(format!("{}: more than {MAX_ENTRIES} keys", path.display()));
        }
        let mut published = Vec::new();
        for patient in pending.keys() {
            let has: Option<i64> = conn
                .query_row(
                    "SELECT 1 FROM patient_keys WHERE patient = ?1 AND epoch = 0 LIMIT 1",
                    params![patient],
                    |r| r.get(0),
                )
                .optional()
                .map_err(|e| e.to_string())?;
            if has.is_some() {
                published.push(patient.clone());
            }
        }
        for p in &published {
            pending.remove(p);
        }
        let keys = FirstKeys {
            path: Some(path),
            pending: Mutex::new(pending),
        };
        if !published.is_empty() {
            keys.rewrite().map_err(|e| e.to_string())?;
        }
        Ok(keys)
    }

    /// `patient`'s sealed first key, if it is still to be published.
    pub fn sealed_for(&self, patient: &str) -> Option<Vec<u8>> {
        hex::decode(self.lock().get(patient)?).ok()
    }

    /// The ledger now holds `patient`'s first key: forget it here and on disk.
    pub fn published(&self, patient: &str) {
        if self.lock().remove(patient).is_some() {
            if let Err(e) = self.rewrite() {
                tracing::warn!(error = %e, "could not rewrite the first-keys file");
            }
        }
    }

    fn rewrite(&self) -> std::io::Result<()> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let pending = self.lock().clone();
        if pending.is_empty() {
            return match std::fs::remove_file(path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            };
        }
        let text = toml::to_string(&pending).map_err(std::io::Error::other)?;
        // The file exists (owner-only, as init made it); writing keeps its mode.
        std::fs::write(path, text)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, String>> {
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
