//! Every bound of the records service in one place, each with its unit in its name. The
//! ledger enforces them at execution (against any gateway), the API checks them first
//! for a friendly answer, and the OpenAPI schema publishes them as `maxLength`, so the
//! three can never disagree.

/// Largest encoded transaction (the request payload limit is larger; this is tighter).
pub const TX_MAX_BYTES: usize = 16 << 10;
/// Most transactions one request carries (a gateway batches its users' transactions so
/// that signatures and consensus messages are paid per batch, not per record).
pub const BATCH_MAX_TXS: usize = 256;
/// Largest encoded batch: the request payload limit of the ledger.
pub const BATCH_MAX_BYTES: usize = 1 << 20;

/// Longest user id (see `medchain_types::genesis::valid_user_id`), patient ids included.
pub const USER_ID_MAX_CHARS: usize = 64;
/// Longest record id, in bytes (ids are ASCII when the API makes them).
pub const RECORD_ID_MAX_BYTES: usize = 64;
/// Longest display name of a user.
pub const DISPLAY_NAME_MAX_CHARS: usize = 100;
/// Longest sealed display name: the prefix, then hex of the header, the envelope's
/// overhead and a name of `DISPLAY_NAME_MAX_CHARS` characters of up to 4 bytes each.
pub const SEALED_DISPLAY_NAME_MAX_CHARS: usize =
    7 + 2 * (8 + medchain_seal::envelope::OVERHEAD + 4 * DISPLAY_NAME_MAX_CHARS);
/// Longest department name.
pub const DEPARTMENT_MAX_CHARS: usize = 64;
/// Longest free-text reason (audit, break-glass).
pub const REASON_MAX_CHARS: usize = 500;
/// Longest audited action name.
pub const ACTION_MAX_CHARS: usize = 64;
/// Longest one-time consent code or prescription code as typed.
pub const CODE_MAX_CHARS: usize = 32;
/// Longest search text of a patient or user search.
pub const SEARCH_MAX_CHARS: usize = 64;

/// Longest diagnosis of a record.
pub const DIAGNOSIS_MAX_CHARS: usize = 2_000;
/// Longest free-text prescription of a record.
pub const PRESCRIPTION_MAX_CHARS: usize = 2_000;
/// Longest notes of a record.
pub const NOTES_MAX_CHARS: usize = 10_000;
/// Most structured medication lines in one record.
pub const MEDICATION_LINES_MAX: usize = 20;
/// Longest medication name.
pub const MEDICATION_NAME_MAX_CHARS: usize = 200;
/// Longest other field of a medication line (dose, route, frequency, duration, quantity).
pub const MEDICATION_FIELD_MAX_CHARS: usize = 100;

/// How long a one-time consent code is valid.
pub const CONSENT_CODE_TTL_MS: u64 = 5 * 60 * 1000;
/// Shortest break-glass reason: a reason has to say something.
pub const BREAK_GLASS_REASON_MIN_CHARS: usize = 10;
/// The window of the per-doctor break-glass limit (`LedgerPolicy`).
pub const BREAK_GLASS_LIMIT_WINDOW_MS: u64 = 24 * 60 * 60 * 1000;
/// How long a second approver's approval of a break-glass opening stays usable.
pub const BREAK_GLASS_APPROVAL_TTL_MS: u64 = 60 * 60 * 1000;
/// Longest review note of a break-glass event.
pub const REVIEW_NOTE_MAX_CHARS: usize = 1_000;
/// Longest (and default) break-glass access.
pub const BREAK_GLASS_MAX_MS: u64 = 60 * 60 * 1000;
/// A proposal waits at most a week for its approvers: long enough for a weekend, short
/// enough that a forgotten one cannot be completed months later by surprise.
pub const PROPOSAL_TTL_MAX_MS: u64 = 7 * 24 * 60 * 60 * 1000;
/// Open proposals of one kind one organisation may have at once (each is a row every
/// replica keeps). Counted per kind, so that patients' erasure requests or doctors'
/// break-glass requests cannot crowd out its administrators' changes.
pub const PROPOSALS_OPEN_MAX: i64 = 64;
/// Open proposals one proposer may have at once (a user, or an organisation's operator),
/// so that one account cannot take a kind's whole allowance.
pub const PROPOSALS_OPEN_PER_PROPOSER: i64 = 4;
