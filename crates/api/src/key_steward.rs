//! The home organisation's duty for its patients' keys, done by its node as the ledger
//! changes: make a patient's first data key, seal it to every organisation entitled to
//! read (consent, break-glass) once the ledger says so, and start a new key epoch when an
//! organisation that held the current one is entitled no longer (revoked or expired
//! consent, a closed break-glass window), so that later content is sealed only to those
//! still entitled. Each step is a `SharePatientKey` transaction the ledger checks again.

use std::sync::Arc;
use std::time::Duration;

use medchain_records::query::{self, KeyWork};
use medchain_records::{Actor, Envelope, Transaction};
use medchain_seal::DataKey;
use medchain_types::Hash32;

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// How often the node looks for key work.
const PASS_INTERVAL: Duration = Duration::from_millis(500);
/// Most items of each kind one pass does.
const PASS_MAX_ITEMS: u32 = 64;
/// How long a writer or reader waits for a key the home organisation is to share.
pub const KEY_WAIT: Duration = Duration::from_secs(8);
/// How often it looks while waiting.
pub const KEY_POLL: Duration = Duration::from_millis(100);

/// Run the steward until the runtime stops. A chain in clear has nothing to do.
pub fn spawn(s: AppState) {
    if !s.inner.keys.encrypts() {
        return;
    }
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(PASS_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut erasures = None;
        loop {
            tick.tick().await;
            // An erasure anywhere: no key of the erased patient stays in memory here.
            if let Ok(n) = s.lookup(|c| Ok(query::erasure_count(c)?)) {
                if erasures.is_some_and(|before| n > before) {
                    s.inner.keys.forget_all();
                }
                erasures = Some(n);
            }
            if let Err(e) = pass(&s).await {
                tracing::debug!(error = %e.message, "key steward pass");
            }
        }
    });
}

/// One pass: read the work, do it, and say how many items went to the ledger.
pub async fn pass(s: &AppState) -> ApiResult<usize> {
    let home = s.inner.keys.organisation();
    let now = s.now_ms();
    let work = s
        .read(move |c| Ok(query::key_work(c, home, now, PASS_MAX_ITEMS)?))
        .await?;
    let mut done = 0;
    // Concurrently, so that the gateway batches them into a block or two.
    let mut jobs = tokio::task::JoinSet::new();
    for w in work {
        let s = s.clone();
        jobs.spawn(async move { perform(&s, w).await });
    }
    while let Some(r) = jobs.join_next().await {
        match r.map_err(ApiError::internal)? {
            Ok(()) => done += 1,
            // Another pass, or a writer making the first key, got there first.
            Err(e) if e.status == axum::http::StatusCode::CONFLICT => {}
            Err(e) => tracing::debug!(error = %e.message, "key work refused"),
        }
    }
    Ok(done)
}

/// Do `work` now rather than at the next pass (a writer at the home organisation needs
/// the patient's first key, or a new epoch before it seals new content); done already by
/// a pass or another writer counts as done.
pub async fn now(s: &AppState, work: KeyWork) -> ApiResult<()> {
    match perform(s, work).await {
        Err(e) if e.status == axum::http::StatusCode::CONFLICT => Ok(()),
        r => r,
    }
}

/// Publish `key` as `patient`'s first data key (their name was sealed under it at
/// registration).
pub async fn first_key_with(s: &AppState, patient: &str, key: DataKey) -> ApiResult<()> {
    publish(
        s,
        patient.to_string(),
        0,
        s.inner.keys.organisation(),
        Arc::new(key),
    )
    .await
}

async fn perform(s: &AppState, work: KeyWork) -> ApiResult<()> {
    let keys = &s.inner.keys;
    let home = keys.organisation();
    let (patient, epoch, to, key) = match work {
        KeyWork::FirstKey { patient } if keys.is_registering(&patient) => {
            return Err(ApiError::conflict("the registration publishes this key"))
        }
        KeyWork::FirstKey { patient } => {
            if let Some(sealed) = keys.first_keys().sealed_for(&patient) {
                return publish_genesis_key(s, patient, sealed).await;
            }
            (patient, 0, home, Arc::new(DataKey::random()))
        }
        KeyWork::NewEpoch { patient, epoch } => (patient, epoch, home, Arc::new(DataKey::random())),
        KeyWork::Share {
            patient,
            epoch,
            organisation,
        } => {
            let k = Arc::clone(keys);
            let (p, e) = (patient.clone(), epoch);
            let key = s
                .read(move |c| Ok(k.epoch_key(c, &p, e)?))
                .await?
                .ok_or_else(|| ApiError::unavailable("this node cannot open the patient's key"))?;
            (patient, epoch, organisation, key)
        }
    };
    publish(s, patient, epoch, to, key).await
}

/// Publish the first key `medchain init` made for a genesis patient (their name in the
/// genesis is sealed under it), already sealed to this organisation; then forget it.
async fn publish_genesis_key(s: &AppState, patient: String, sealed: Vec<u8>) -> ApiResult<()> {
    let env = Envelope {
        actor: Actor::User(patient.clone()),
        tx: Transaction::SharePatientKey {
            epoch: 0,
            organisation: s.inner.keys.organisation(),
            sealed_hash: Hash32::sha256(&sealed),
        },
    };
    let r = s.commit(&env, vec![sealed]).await.map(|_| ());
    match &r {
        Ok(()) => s.inner.keys.first_keys().published(&patient),
        // Published already (by an earlier pass): the file's copy is not needed either.
        Err(e) if e.status == axum::http::StatusCode::CONFLICT => {
            s.inner.keys.first_keys().published(&patient)
        }
        Err(_) => {}
    }
    r
}

/// Seal `key` (`patient`'s data key of `epoch`) to organisation `to` and submit it.
async fn publish(
    s: &AppState,
    patient: String,
    epoch: u32,
    to: u16,
    key: Arc<DataKey>,
) -> ApiResult<()> {
    let keys = &s.inner.keys;
    let home = keys.organisation();
    let recipient = s
        .lookup(|c| Ok(keys.current_key_of(c, to)?))?
        .ok_or_else(|| ApiError::internal("no encryption key for the organisation"))?;
    let sealed = keys
        .seal_to(recipient, &patient, epoch, &key)
        .map_err(ApiError::internal)?;
    let hash = Hash32::sha256(&sealed);
    if to == home {
        keys.remember(hash.0.to_vec(), key);
    }
    let env = Envelope {
        actor: Actor::User(patient),
        tx: Transaction::SharePatientKey {
            epoch,
            organisation: to,
            sealed_hash: hash,
        },
    };
    s.commit(&env, vec![sealed]).await.map(|_| ())
}
