//! Why a benchmark record was not committed: the key of the report's
//! `failures_by_status`, shared by the drivers that submit and the recorder that counts.

/// Why a record was not committed; the key in `failures_by_status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The API answered with this status instead of 200.
    Status(u16),
    /// No answer: "timeout", "connect", "disconnected", "not_started", ...
    Other(&'static str),
}

impl Failure {
    pub fn key(self) -> String {
        match self {
            Failure::Status(s) => s.to_string(),
            Failure::Other(s) => s.to_string(),
        }
    }

    pub fn from_reqwest(e: &reqwest::Error) -> Failure {
        if e.is_timeout() {
            Failure::Other("timeout")
        } else if e.is_connect() {
            Failure::Other("connect")
        } else if e.is_decode() || e.is_body() {
            Failure::Other("bad_body")
        } else {
            Failure::Other("http_error")
        }
    }
}
