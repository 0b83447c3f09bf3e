//! `medchain backup` and `medchain restore`: a consistent copy of a replica's ledger
//! database taken while it runs (SQLite's online backup API), and putting one back
//! without undoing any erasure committed since the copy was taken. The copy holds what
//! the replica held (ciphertext and sealed keys only); a copy kept outside MedChain's
//! reach is outside its erasures too, which is why restore re-applies them and the
//! printed advice is to delete old backups.

use std::path::PathBuf;

use anyhow::{bail, Context};
use medchain_node::NodeFiles;
use rusqlite::{Connection, OpenFlags};

#[derive(clap::Args, Debug)]
pub struct BackupArgs {
    /// The replica's config file (DIR/nodeI.toml); the replica may be running.
    #[arg(long)]
    pub config: PathBuf,
    /// Where to write the copy (owner-only); an existing file is never overwritten.
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(clap::Args, Debug)]
pub struct RestoreArgs {
    /// The replica's config file (DIR/nodeI.toml); the replica must be stopped.
    #[arg(long)]
    pub config: PathBuf,
    /// A copy made by `medchain backup`.
    #[arg(long)]
    pub from: PathBuf,
}

/// Pages copied per step of the online backup (the writer may commit in between).
const PAGES_PER_STEP: std::ffi::c_int = 256;

pub fn backup(a: &BackupArgs) -> anyhow::Result<()> {
    let files = NodeFiles::load(&a.config)?;
    let db = files.db_path();
    if !db.exists() {
        bail!(
            "{} does not exist: this replica has never run",
            db.display()
        );
    }
    if a.out.exists() {
        bail!("{} exists; refusing to overwrite it", a.out.display());
    }
    // Owner-only from its first byte: the copy holds a replica's whole ledger.
    crate::ceremony::write_private(&a.out, "")?;
    let src = Connection::open_with_flags(&db, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let mut dst = Connection::open(&a.out)?;
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template("backing up {bar:40} {pos}/{len} pages")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    {
        use rusqlite::backup::{Backup, StepResult};
        let b = Backup::new(&src, &mut dst)?;
        // Bounded: a busy or locked source is retried for at most a minute.
        let mut waits = 0;
        loop {
            let step = b.step(PAGES_PER_STEP)?;
            let p = b.progress();
            bar.set_length(p.pagecount.max(0) as u64);
            bar.set_position((p.pagecount - p.remaining).max(0) as u64);
            match step {
                StepResult::Done => break,
                StepResult::More => {}
                _ if waits < 12_000 => {
                    waits += 1;
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
                _ => bail!("the database stayed busy for a minute; try again"),
            }
        }
    }
    bar.finish_and_clear();
    let height: i64 = dst.query_row("SELECT COALESCE(MAX(height), 0) FROM blocks", [], |r| {
        r.get(0)
    })?;
    drop(dst);
    let bytes = std::fs::metadata(&a.out)?.len();
    println!(
        "backup of replica {} at height {height}: {} ({:.1} MB)",
        files.id(),
        a.out.display(),
        bytes as f64 / 1e6
    );
    println!(
        "It holds this replica's ledger as it is now (ciphertext and sealed keys, no clear \
         text). `medchain restore` re-applies every erasure committed after this point; a \
         copy of this file kept elsewhere is beyond MedChain's reach, so delete old backups."
    );
    Ok(())
}

pub fn restore(a: &RestoreArgs) -> anyhow::Result<()> {
    let files = NodeFiles::load(&a.config)?;
    if std::net::TcpStream::connect(&files.config.http_listen).is_ok() {
        bail!(
            "something answers on {}: stop the replica before restoring",
            files.config.http_listen
        );
    }
    let db = files.db_path();
    let staged = files.data_dir.join("medchain.sqlite.restoring");
    if staged.exists() {
        std::fs::remove_file(&staged)?;
    }
    crate::ceremony::write_private(&staged, "")?;
    {
        let src = Connection::open_with_flags(&a.from, OpenFlags::SQLITE_OPEN_READ_ONLY)
            .with_context(|| format!("opening {}", a.from.display()))?;
        let mut dst = Connection::open(&staged)?;
        rusqlite::backup::Backup::new(&src, &mut dst)?.run_to_completion(
            PAGES_PER_STEP,
            std::time::Duration::ZERO,
            None::<fn(rusqlite::backup::Progress)>,
        )?;
    }
    // Erasures the replica committed since the copy: shred those patients in the copy
    // too, before it is put in place. (Replaying the later blocks would do the same, but
    // only once the replica has caught up; until then the copy would hold them.)
    let erased = if db.exists() {
        erasures(&Connection::open_with_flags(
            &db,
            OpenFlags::SQLITE_OPEN_READ_ONLY,
        )?)?
    } else {
        Vec::new()
    };
    let conn = Connection::open(&staged)?;
    conn.pragma_update(None, "secure_delete", "ON")?;
    conn.pragma_update(None, "journal_mode", "MEMORY")?;
    let already: Vec<String> = erasures(&conn)?.into_iter().map(|(p, _)| p).collect();
    let mut reapplied = Vec::new();
    for (patient, height) in erased {
        if already.contains(&patient) {
            continue;
        }
        medchain_records::sealed::shred(&conn, &patient)?;
        reapplied.push(format!("{patient} (block {height})"));
    }
    conn.execute_batch("VACUUM")?;
    drop(conn);
    for suffix in ["-wal", "-shm"] {
        let mut p = db.clone().into_os_string();
        p.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(p));
    }
    std::fs::rename(&staged, &db)?;
    println!(
        "restored {} from {}; erasures since the backup re-applied: {}",
        db.display(),
        a.from.display(),
        if reapplied.is_empty() {
            "none".to_string()
        } else {
            reapplied.join(", ")
        }
    );
    println!("Start the replica: it catches up the blocks after the backup from its peers.");
    Ok(())
}

/// The patients erased in a ledger database, with the block of each erasure (none in a
/// database older than erasures).
fn erasures(conn: &Connection) -> anyhow::Result<Vec<(String, i64)>> {
    let exists: i64 = conn.query_row(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'erasures'",
        [],
        |r| r.get(0),
    )?;
    if exists == 0 {
        return Ok(Vec::new());
    }
    let mut stmt = conn.prepare("SELECT patient, height FROM erasures ORDER BY height")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}
