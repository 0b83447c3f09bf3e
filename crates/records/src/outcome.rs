//! What the rules say about one transaction, as a type: the recorded `Outcome` with its
//! message, or a failure of the replica itself. The two never mix: a storage error is
//! never turned into a verdict, because another replica that read its state fine would
//! record a different one.

use medchain_store::rusqlite;
pub use medchain_store::ApplyError;

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

    /// The outcome stored as `s`; `None` for a string this binary never writes.
    pub fn parse(s: &str) -> Option<Outcome> {
        Some(match s {
            "ok" => Outcome::Ok,
            "forbidden" => Outcome::Forbidden,
            "conflict" => Outcome::Conflict,
            "not_found" => Outcome::NotFound,
            "invalid" => Outcome::Invalid,
            _ => return None,
        })
    }
}

/// The rules refusing a transaction: recorded as its outcome, identically on every replica.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    pub outcome: Outcome,
    pub message: String,
}

impl Rejection {
    pub fn new(outcome: Outcome, message: impl Into<String>) -> Self {
        debug_assert!(outcome != Outcome::Ok, "a rejection is never Ok");
        Rejection {
            outcome,
            message: message.into(),
        }
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(Outcome::Forbidden, message)
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(Outcome::Invalid, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(Outcome::NotFound, message)
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(Outcome::Conflict, message)
    }
}

/// Why a rule did not accept a transaction: the rules said no (recorded), or the replica
/// could not find out (fatal). Rules return `Result<T, Refusal>` so that `?` works for
/// both SQLite calls and rule checks, and the two stay apart.
#[derive(Debug)]
pub enum Refusal {
    Rejected(Rejection),
    Fatal(ApplyError),
}

impl From<Rejection> for Refusal {
    fn from(r: Rejection) -> Self {
        Refusal::Rejected(r)
    }
}

impl From<rusqlite::Error> for Refusal {
    fn from(e: rusqlite::Error) -> Self {
        Refusal::Fatal(ApplyError::Sqlite(e))
    }
}

impl From<ApplyError> for Refusal {
    fn from(e: ApplyError) -> Self {
        Refusal::Fatal(e)
    }
}

/// What a rule returns.
pub type Checked<T = ()> = Result<T, Refusal>;

/// Refuse with `outcome` and `message`.
pub fn reject<T>(outcome: Outcome, message: impl Into<String>) -> Checked<T> {
    Err(Refusal::Rejected(Rejection::new(outcome, message)))
}
