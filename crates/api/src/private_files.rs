//! Owner-only files: a node's data directory holds the token-signing secret, password
//! hashes, sessions, the security log and the ledger, and none of them may be readable
//! by another account on the machine (the issue found them 0644 in 0755 folders). Every
//! file the API creates goes through here, and the node tightens what it finds at start.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Folders of the data directory: owner only.
pub const PRIVATE_DIR_MODE: u32 = 0o700;
/// Files of the data directory: owner read and write only.
pub const PRIVATE_FILE_MODE: u32 = 0o600;
/// How deep `secure_data_dir` descends (the data directory is flat today; the bound keeps
/// a symlink loop or a mistaken path from walking a whole disk).
const MAX_DEPTH: usize = 4;
/// Most entries `secure_data_dir` visits.
const MAX_ENTRIES: usize = 10_000;

/// Set `path` to `mode` if it exists and differs (a missing file is not an error: a
/// database's `-wal` and `-shm` come and go).
fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => Ok(()),
        Ok(m) if m.permissions().mode() & 0o777 != mode => {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        }
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Make `path` readable and writable by its owner only, if it exists.
pub fn secure_file(path: &Path) -> io::Result<()> {
    set_mode(path, PRIVATE_FILE_MODE)
}

/// Make the folder `path` accessible to its owner only, if it exists.
pub fn secure_dir(path: &Path) -> io::Result<()> {
    set_mode(path, PRIVATE_DIR_MODE)
}

/// A SQLite database and the files SQLite keeps beside it. SQLite gives a new `-wal`
/// or `-shm` the mode of the database file, so once the main file is 0600 they follow.
pub fn secure_database(path: &Path) -> io::Result<()> {
    secure_file(path)?;
    for suffix in ["-wal", "-shm", "-journal"] {
        let mut side = path.as_os_str().to_owned();
        side.push(suffix);
        secure_file(Path::new(&side))?;
    }
    Ok(())
}

/// Create the database file `path` as 0600 before SQLite opens it (SQLite would create
/// it with the process umask, usually 0644), and tighten an existing one.
pub fn prepare_database(path: &Path) -> io::Result<()> {
    match create_private(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => secure_database(path),
        Err(e) => Err(e),
    }
}

/// Create a new file, readable by its owner only; fails if it exists, so that a secret
/// is never written into a file someone else prepared.
pub fn create_private(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(PRIVATE_FILE_MODE)
        .open(path)
}

/// Open `path` for appending, creating it owner-only if needed.
pub fn append_private(path: &Path) -> io::Result<File> {
    let f = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(PRIVATE_FILE_MODE)
        .open(path)?;
    secure_file(path)?;
    Ok(f)
}

/// Tighten a whole data directory: the folder and every folder below it 0700, every
/// file 0600 (databases, their `-wal`/`-shm`, the key file, the security log). Symbolic
/// links are left alone.
pub fn secure_data_dir(dir: &Path) -> io::Result<()> {
    let mut stack = vec![(dir.to_path_buf(), 0usize)];
    let mut visited = 0usize;
    while let Some((folder, depth)) = stack.pop() {
        secure_dir(&folder)?;
        for entry in std::fs::read_dir(&folder)? {
            visited += 1;
            if visited > MAX_ENTRIES {
                return Ok(());
            }
            let entry = entry?;
            let kind = entry.file_type()?;
            if kind.is_dir() && depth < MAX_DEPTH {
                stack.push((entry.path(), depth + 1));
            } else if kind.is_file() {
                secure_file(&entry.path())?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p)
            .map(|m| m.permissions().mode() & 0o777)
            .unwrap_or(0)
    }

    #[test]
    fn a_data_dir_is_made_owner_only() -> io::Result<()> {
        let tmp = tempfile::tempdir()?;
        let data = tmp.path().join("node0");
        let sub = data.join("content");
        std::fs::create_dir_all(&sub)?;
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755))?;
        std::fs::set_permissions(&sub, std::fs::Permissions::from_mode(0o755))?;
        let db = data.join("medchain.sqlite");
        std::fs::write(&db, b"x")?;
        std::fs::write(data.join("medchain.sqlite-wal"), b"x")?;
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644))?;
        secure_data_dir(&data)?;
        assert_eq!(mode(&data), 0o700);
        assert_eq!(mode(&sub), 0o700);
        assert_eq!(mode(&db), 0o600);
        assert_eq!(mode(&data.join("medchain.sqlite-wal")), 0o600);
        Ok(())
    }

    #[test]
    fn create_private_refuses_an_existing_file() -> io::Result<()> {
        let tmp = tempfile::tempdir()?;
        let p = tmp.path().join("secret");
        create_private(&p)?;
        assert_eq!(mode(&p), 0o600);
        assert_eq!(
            create_private(&p).map(|_| ()).map_err(|e| e.kind()),
            Err(io::ErrorKind::AlreadyExists)
        );
        Ok(())
    }
}
