//! Free text about a patient that is not clinical content but may say as much (a
//! break-glass reason, a department's review note): sealed to the organisations that
//! read it before it reaches the ledger (`medchain_records::sealed::seal_reason`).

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// Free text about `patient` (a break-glass reason, a review note) as the ledger gets it,
/// and the pieces the request must carry. On a chain with encryption keys it is sealed to
/// the patient's home organisation and to the writer's (for a break-glass reason: the
/// patient, their department and the doctor's colleagues read it there) and travels as a
/// content piece beside the transaction, named in it by its hash, so that the patient's
/// erasure deletes it. In clear on a chain without encryption keys.
pub async fn seal(s: &AppState, patient: &str, text: String) -> ApiResult<(String, Vec<Vec<u8>>)> {
    if !s.inner.keys.encrypts() {
        return Ok((text, Vec::new()));
    }
    let keys = std::sync::Arc::clone(&s.inner.keys);
    let mine = keys.organisation();
    let p = patient.to_string();
    let recipients = s
        .read(move |c| {
            let Some(home) = medchain_records::user(c, &p)?.map(|u| u.organisation) else {
                return Err(ApiError::not_found(format!("no patient {p}")));
            };
            let orgs = if home == mine {
                vec![home]
            } else {
                vec![home, mine]
            };
            let mut out = Vec::new();
            for org in orgs {
                let key = keys
                    .current_key_of(c, org)?
                    .ok_or_else(|| ApiError::internal("an organisation without encryption key"))?;
                out.push((org, medchain_seal::OrgPublicKey(key)));
            }
            Ok(out)
        })
        .await?;
    let piece = medchain_records::sealed::seal_reason(&recipients, patient, &text)
        .map_err(ApiError::internal)?;
    Ok((medchain_records::sealed::reason_ref(&piece), vec![piece]))
}
