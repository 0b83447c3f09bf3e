//! The node's security log: failed sign-ins, refusals (403) and throttling (429),
//! password changes, ended sessions and deactivations, as JSON lines in the data
//! directory, so that an organisation's department administrators can see someone
//! guessing passwords or probing for other organisations' data (`GET /api/security_log`).
//! Bounded: past `SECURITY_LOG_MAX_BYTES` the file is rotated to `security.log.1`
//! (replacing the previous one). Never holds passwords, tokens or secrets: events carry
//! only ids, a path, an address, a status and a fixed-vocabulary detail.

use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{Extensions, StatusCode};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::private_files::append_private;

/// The log's name in a node's data directory.
pub const SECURITY_LOG_FILE: &str = "security.log";
/// Size at which the log is rotated; at most twice this is kept.
pub const SECURITY_LOG_MAX_BYTES: u64 = 4 << 20;
/// Most events one page returns.
pub const SECURITY_LOG_PAGE_MAX: usize = 200;
/// Bounds of the free-text parts of an event.
const PATH_MAX_CHARS: usize = 256;
const DETAIL_MAX_CHARS: usize = 200;
const USER_MAX_CHARS: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SecurityEventKind {
    /// A wrong password, or an account that does not exist.
    LoginFailed,
    /// A 403 answer.
    Forbidden,
    /// A 429 answer (sign-in throttling or the read budget).
    Throttled,
    /// A user changed their own password; their other sessions ended.
    PasswordChanged,
    /// A refresh token was used twice; its whole session was ended.
    RefreshReused,
    /// A department administrator deactivated a user.
    Deactivated,
    /// A wrong, replayed or throttled two-step code (sign-in or step-up).
    MfaFailed,
    /// A user set up or turned off two-step sign-in.
    MfaChanged,
}

/// One line of the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SecurityEvent {
    /// Increasing number of the event on this node (the paging cursor).
    #[serde(default)]
    pub seq: u64,
    pub time_ms: u64,
    pub kind: SecurityEventKind,
    /// The user concerned, when known (an unknown account name is not logged: people
    /// type passwords into the username field).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub addr: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

fn bounded(s: &str, max: usize) -> String {
    s.chars().filter(|c| !c.is_control()).take(max).collect()
}

impl SecurityEvent {
    pub fn new(kind: SecurityEventKind, time_ms: u64) -> SecurityEvent {
        SecurityEvent {
            seq: 0,
            time_ms,
            kind,
            user: None,
            addr: None,
            path: None,
            status: None,
            detail: None,
        }
    }
    pub fn user(mut self, user: Option<&str>) -> Self {
        self.user = user.map(|u| bounded(u, USER_MAX_CHARS));
        self
    }
    pub fn addr(mut self, addr: Option<IpAddr>) -> Self {
        self.addr = addr.map(|a| a.to_string());
        self
    }
    pub fn path(mut self, path: &str) -> Self {
        self.path = Some(bounded(path, PATH_MAX_CHARS));
        self
    }
    pub fn status(mut self, status: StatusCode) -> Self {
        self.status = Some(status.as_u16());
        self
    }
    pub fn detail(mut self, detail: &str) -> Self {
        self.detail = Some(bounded(detail, DETAIL_MAX_CHARS));
        self
    }
}

/// One page of the log, newest first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SecurityPage {
    pub events: Vec<SecurityEvent>,
    /// Pass as `cursor` for the next (older) page; absent on the last page.
    pub next_cursor: Option<u64>,
}

#[derive(Debug)]
struct Writer {
    file: Option<std::fs::File>,
    size: u64,
    next_seq: u64,
}

/// The append-only, size-bounded security log of one node.
#[derive(Debug)]
pub struct SecurityLog {
    path: PathBuf,
    rotated: PathBuf,
    writer: Mutex<Writer>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Events of one file, oldest first; unreadable lines are skipped.
fn read_events(path: &Path) -> std::io::Result<Vec<SecurityEvent>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

impl SecurityLog {
    /// Open (or start) the log in `data_dir`, continuing its numbering.
    pub fn open(data_dir: &Path) -> std::io::Result<SecurityLog> {
        let path = data_dir.join(SECURITY_LOG_FILE);
        let rotated = data_dir.join(format!("{SECURITY_LOG_FILE}.1"));
        let mut last = read_events(&path)?.last().map(|e| e.seq);
        if last.is_none() {
            last = read_events(&rotated)?.last().map(|e| e.seq);
        }
        let file = append_private(&path)?;
        let size = file.metadata()?.len();
        crate::private_files::secure_file(&rotated)?;
        Ok(SecurityLog {
            path,
            rotated,
            writer: Mutex::new(Writer {
                file: Some(file),
                size,
                next_seq: last.map_or(1, |s| s + 1),
            }),
        })
    }

    /// Append `event`. A log that cannot be written is reported to the process log and
    /// does not fail the request that caused the event.
    pub fn record(&self, mut event: SecurityEvent) {
        let mut w = lock(&self.writer);
        event.seq = w.next_seq;
        let mut line = match serde_json::to_vec(&event) {
            Ok(l) => l,
            Err(e) => return tracing::warn!(error = %e, "security log: cannot encode"),
        };
        line.push(b'\n');
        if let Err(e) = self.append(&mut w, &line) {
            tracing::warn!(error = %e, "security log: cannot write");
            return;
        }
        w.next_seq += 1;
    }

    fn append(&self, w: &mut Writer, line: &[u8]) -> std::io::Result<()> {
        if w.size + line.len() as u64 > SECURITY_LOG_MAX_BYTES || w.file.is_none() {
            w.file = None;
            if w.size > 0 {
                std::fs::rename(&self.path, &self.rotated)?;
            }
            let f = append_private(&self.path)?;
            w.size = f.metadata()?.len();
            w.file = Some(f);
        }
        if let Some(f) = w.file.as_mut() {
            f.write_all(line)?;
            w.size += line.len() as u64;
        }
        Ok(())
    }

    /// Events older than `cursor` (all when `None`), newest first, at most `limit`.
    pub fn page(&self, cursor: Option<u64>, limit: usize) -> std::io::Result<SecurityPage> {
        let limit = limit.clamp(1, SECURITY_LOG_PAGE_MAX);
        // Hold the writer so that a rotation cannot happen between the two reads.
        let _w = lock(&self.writer);
        let mut all = read_events(&self.rotated)?;
        all.extend(read_events(&self.path)?);
        let mut older: Vec<SecurityEvent> = all
            .into_iter()
            .filter(|e| cursor.is_none_or(|c| e.seq < c))
            .collect();
        let more = older.len() > limit;
        let events: Vec<SecurityEvent> = older
            .drain(older.len().saturating_sub(limit)..)
            .rev()
            .collect();
        let next_cursor = if more {
            events.last().map(|e| e.seq)
        } else {
            None
        };
        Ok(SecurityPage {
            events,
            next_cursor,
        })
    }
}

/// Who a request acted as, once an extractor knew it: the refusal middleware puts an
/// empty slot in each request, the session extractor (or login) fills it.
#[derive(Debug, Clone, Default)]
pub struct Subject(Arc<OnceLock<String>>);

impl Subject {
    /// Note `user` as the request's subject (the first one noted wins).
    pub fn note(extensions: &Extensions, user: &str) {
        if let Some(s) = extensions.get::<Subject>() {
            let _ = s.0.set(bounded(user, USER_MAX_CHARS));
        }
    }
    /// Note `user` on this slot.
    pub fn set(&self, user: &str) {
        let _ = self.0.set(bounded(user, USER_MAX_CHARS));
    }
    pub fn get(&self) -> Option<String> {
        self.0.get().cloned()
    }
}

/// A handler's handle on the slot (detached when no middleware put one in).
impl<S: Send + Sync> FromRequestParts<S> for Subject {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<Subject>()
            .cloned()
            .unwrap_or_default())
    }
}

/// The peer address of a request, when the server runs with connect info.
pub fn client_addr(extensions: &Extensions) -> Option<IpAddr> {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(a)| a.ip())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_run_newest_first_and_numbering_survives_reopening() -> std::io::Result<()> {
        let tmp = tempfile::tempdir()?;
        let log = SecurityLog::open(tmp.path())?;
        for t in 0..5 {
            log.record(SecurityEvent::new(SecurityEventKind::LoginFailed, t));
        }
        drop(log);
        let log = SecurityLog::open(tmp.path())?;
        log.record(SecurityEvent::new(SecurityEventKind::Forbidden, 9));
        let p = log.page(None, 4)?;
        let seqs: Vec<u64> = p.events.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, vec![6, 5, 4, 3]);
        assert_eq!(p.next_cursor, Some(3));
        let p = log.page(p.next_cursor, 4)?;
        let seqs: Vec<u64> = p.events.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, vec![2, 1]);
        assert_eq!(p.next_cursor, None);
        Ok(())
    }

    #[test]
    fn the_log_is_rotated_at_its_bound() -> std::io::Result<()> {
        let tmp = tempfile::tempdir()?;
        let log = SecurityLog::open(tmp.path())?;
        let detail = "x".repeat(DETAIL_MAX_CHARS);
        let n = SECURITY_LOG_MAX_BYTES / 200 + 10;
        for t in 0..n {
            log.record(SecurityEvent::new(SecurityEventKind::Throttled, t).detail(&detail));
        }
        let main = std::fs::metadata(tmp.path().join(SECURITY_LOG_FILE))?.len();
        let old = std::fs::metadata(tmp.path().join("security.log.1"))?.len();
        assert!(main <= SECURITY_LOG_MAX_BYTES && old <= SECURITY_LOG_MAX_BYTES);
        assert_eq!(log.page(None, 1)?.events[0].seq, n);
        Ok(())
    }
}
