//! Audit before serve: every read of a patient's data is first committed to the ledger
//! as an `AuditRead` in that patient's trail, and only then served. A read that cannot
//! be audited is not served. One module for the rule, used by every route that reads.

use std::collections::BTreeSet;

use medchain_records::{Actor, Envelope, Transaction};
use tokio::task::JoinSet;

use crate::access::{read_access, ReadAccess};
use crate::error::{ApiError, ApiResult};
use crate::extract::Session;
use crate::state::AppState;

/// Check access, record the read on the ledger, and only then return the data: a read
/// that cannot be audited is not served.
pub async fn audited_read(
    s: &AppState,
    who: &Session,
    patient_id: &str,
    action: &str,
) -> ApiResult<ReadAccess> {
    let now = s.now_ms();
    let (user, pid) = (who.user.clone(), patient_id.to_string());
    let access = s.read(move |c| read_access(c, &user, &pid, now)).await?;
    let env = Envelope {
        actor: Actor::User(who.user.user_id.clone()),
        tx: Transaction::AuditRead {
            patient: patient_id.to_string(),
            action: action.into(),
            reason: access.reason().into(),
        },
    };
    s.commit(&env, Vec::new()).await?;
    Ok(access)
}

/// Why a department reads its patients' data (cf. `ReadAccess::reason`); the ledger's
/// vocabulary, so that the access monitor reads it without depending on this module.
pub use medchain_records::tx::DEPARTMENT_READ_REASON;

/// Record on the ledger that the department user `reader` read data of each of `patients`
/// (one `AuditRead` per distinct patient, committed concurrently), and return only once
/// all are committed: a read that cannot be audited is not served.
pub async fn audit_department_read<'a>(
    s: &AppState,
    reader: &str,
    patients: impl IntoIterator<Item = &'a str>,
    action: &str,
) -> ApiResult<()> {
    let distinct: BTreeSet<&str> = patients.into_iter().collect();
    let mut commits = JoinSet::new();
    for patient in distinct {
        let env = Envelope {
            actor: Actor::User(reader.to_string()),
            tx: Transaction::AuditRead {
                patient: patient.to_string(),
                action: action.to_string(),
                reason: DEPARTMENT_READ_REASON.to_string(),
            },
        };
        let s = s.clone();
        commits.spawn(async move { s.commit(&env, Vec::new()).await.map(|_| ()) });
    }
    // Wait for every commit (none is abandoned half-way), then report the first failure.
    let mut outcome = Ok(());
    while let Some(done) = commits.join_next().await {
        let r = done.map_err(ApiError::internal).and_then(|r| r);
        if outcome.is_ok() {
            outcome = r;
        }
    }
    outcome
}
