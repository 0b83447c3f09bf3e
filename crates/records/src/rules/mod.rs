//! The records rules: what each transaction may do, by whom, in which state. One file
//! per family of transactions; this one resolves who is acting and dispatches. A rule
//! returns `Checked`: `Ok` (its writes stay), `Rejected` (recorded as the outcome, its
//! writes rolled back) or `Fatal` (the replica stops: it could not read its own state).

mod alerts;
mod audit;
mod break_glass;
mod consent;
mod dispensing;
mod keys;
mod proposals;
mod records;
mod users;

use medchain_store::rusqlite::{OptionalExtension, Transaction};
use medchain_store::ApplyError;
use medchain_types::{LedgerPolicy, SignedRequest, UserRole};

use crate::outcome::{reject, Checked, Outcome, Refusal, Rejection};
use crate::policy::{user, UserRow};
use crate::tx::{Actor, Envelope, Transaction as Tx};

/// The request a transaction came in, and the block executing it.
#[derive(Debug)]
pub(crate) struct Request<'a> {
    /// The block's SQLite transaction.
    pub conn: &'a Transaction<'a>,
    pub signed: &'a SignedRequest,
    /// The block's timestamp: the only clock the rules read.
    pub now_ms: u64,
    pub height: u64,
    pub n_replicas: usize,
    /// The organisations' encryption keys of the genesis (empty: content in clear).
    pub encryption_keys: &'a [medchain_types::EncryptionKey],
    /// The consortium's rules from the genesis.
    pub policy: &'a LedgerPolicy,
    /// Set when a transaction of the block erases a patient (the store then truncates
    /// its WAL once the block is committed).
    pub erased: &'a std::cell::Cell<bool>,
}

impl Request<'_> {
    /// The signing client: clients 0..n are the replicas' gateways, n..2n their operators
    /// (the CLI's user administration).
    fn client(&self) -> usize {
        usize::from(self.signed.request.client.0)
    }

    /// The organisation whose gateway or operator key signed the request (client c
    /// belongs to organisation c mod n).
    pub fn signer_organisation(&self) -> u16 {
        (self.client() % self.n_replicas.max(1)) as u16
    }

    fn signed_by_operator(&self) -> bool {
        self.client() >= self.n_replicas
    }

    /// Clients beyond the gateways and operators (a genesis may list more, for tools)
    /// act for no organisation.
    fn signed_by_organisation(&self) -> bool {
        self.client() < 2 * self.n_replicas
    }
}

/// Who a transaction acts as, once checked against the state.
#[derive(Debug)]
pub(crate) enum Acting {
    /// The signing organisation's operator.
    Operator,
    /// An active user the signing gateway vouches for.
    User(UserRow),
}

impl Acting {
    /// The acting user, if a user of `role`.
    fn as_role(&self, role: UserRole, what: &str) -> Checked<&UserRow> {
        match self {
            Acting::User(u) if u.role == role => Ok(u),
            _ => reject(Outcome::Forbidden, what),
        }
    }
}

/// Execute one transaction: the verdict to record, or the replica's own failure.
pub(crate) fn execute(
    r: &Request<'_>,
    env: &Envelope,
) -> Result<Result<(), Rejection>, ApplyError> {
    match resolve_actor(r, &env.actor).and_then(|actor| dispatch(r, &actor, &env.tx)) {
        Ok(()) => Ok(Ok(())),
        Err(Refusal::Rejected(rej)) => Ok(Err(rej)),
        Err(Refusal::Fatal(e)) => Err(e),
    }
}

/// Who the transaction acts as, if the signing key may act for them: an organisation's
/// operator only with its operator key, and a user only through their home
/// organisation's gateway or operator. This is the organisation boundary: another
/// organisation's node, keys and operator cannot act for a user they did not register.
fn resolve_actor(r: &Request<'_>, actor: &Actor) -> Checked<Acting> {
    if !r.signed_by_organisation() {
        return reject(
            Outcome::Forbidden,
            "this client key acts for no organisation",
        );
    }
    match actor {
        Actor::Operator if !r.signed_by_operator() => reject(
            Outcome::Forbidden,
            "only an operator key may act as the operator",
        ),
        Actor::Operator => Ok(Acting::Operator),
        Actor::User(id) => {
            let u = active_user(r, id)?;
            let signer = r.signer_organisation();
            if u.organisation != signer {
                return reject(
                    Outcome::Forbidden,
                    format!(
                        "{id} belongs to organisation {}; organisation {signer} cannot act for them",
                        u.organisation
                    ),
                );
            }
            Ok(Acting::User(u))
        }
    }
}

fn dispatch(r: &Request<'_>, actor: &Acting, tx: &Tx) -> Checked {
    match tx {
        Tx::RegisterUser {
            user_id,
            role,
            department,
            display_name,
        } => users::register(
            r,
            actor,
            users::NewUser {
                user_id,
                role: *role,
                department,
                display_name,
            },
        ),
        Tx::DeactivateUser { user_id } => users::deactivate(r, actor, user_id),
        Tx::GrantConsent {
            grantee,
            expires_at_ms,
        } => consent::grant(r, actor, grantee, *expires_at_ms),
        Tx::RevokeConsent { grantee } => consent::revoke(r, actor, grantee),
        Tx::CreateConsentCode { code_hash } => consent::create_code(r, actor, code_hash),
        Tx::AddRecord {
            record_id,
            patient,
            content_hash,
            consent_code,
            amends,
            prescription_code_hash,
        } => records::add(
            r,
            actor,
            records::NewRecord {
                record_id,
                patient,
                content_hash,
                consent_code: consent_code.as_deref(),
                amends: amends.as_deref(),
                prescription_code_hash: prescription_code_hash.as_ref(),
            },
        ),
        Tx::Dispense { record_id, code } => {
            dispensing::dispense(r, actor, record_id, code.as_deref())
        }
        Tx::AuditRead {
            patient,
            action,
            reason,
        } => audit::read(r, actor, patient, action, reason),
        Tx::BreakGlass {
            patient,
            reason,
            duration_ms,
        } => break_glass::open(r, actor, patient, reason, *duration_ms),
        Tx::ApproveBreakGlass { doctor, patient } => {
            break_glass::approve(r, actor, doctor, patient)
        }
        Tx::ReviewBreakGlass { id, note } => break_glass::review(r, actor, *id, note),
        Tx::Propose {
            proposal_id,
            action,
            ttl_ms,
        } => proposals::propose(r, actor, proposal_id, action, *ttl_ms),
        Tx::ApproveProposal { proposal_id } => proposals::approve(r, actor, proposal_id),
        Tx::ReviewAlert {
            alert_id,
            patient,
            outcome,
            note,
        } => alerts::review(r, actor, alert_id, patient, *outcome, note),
        Tx::SharePatientKey {
            epoch,
            organisation,
            sealed_hash,
        } => keys::share(r, actor, *epoch, *organisation, sealed_hash),
        Tx::Marker => Ok(()),
    }
}

/// An active user, or the rejection naming why not.
fn active_user(r: &Request<'_>, id: &str) -> Checked<UserRow> {
    match user(r.conn, id)? {
        Some(u) if u.active => Ok(u),
        Some(_) => reject(Outcome::Forbidden, format!("user {id} is deactivated")),
        None => reject(Outcome::NotFound, format!("no user {id}")),
    }
}

fn need_role(u: &UserRow, role: UserRole) -> Checked {
    if u.role == role {
        Ok(())
    } else {
        reject(
            Outcome::Forbidden,
            format!(
                "{} is a {}, not a {}",
                u.user_id,
                u.role.as_str(),
                role.as_str()
            ),
        )
    }
}

fn text_ok(s: &str, field: &str, max_chars: usize) -> Checked {
    if s.chars().count() > max_chars {
        reject(
            Outcome::Invalid,
            format!("{field} is longer than {max_chars} characters"),
        )
    } else {
        Ok(())
    }
}

/// Free text about `patient` (a break-glass reason, a department's review note) may come
/// sealed to organisations, named by the hash of a piece beside the transaction
/// (`sealed::reason_ref`): the request must carry that piece, or the ledger must keep it
/// already (a co-signed opening executes with the approval's request, its reason carried
/// by the proposal's). The ledger keeps it in `reason_pieces` for the patient's erasure
/// to find. `Ok(false)`: the text is in clear, for the caller's own checks.
fn keep_sealed_text(r: &Request<'_>, patient: &str, text: &str) -> Checked<bool> {
    let Some(hash) = crate::sealed::parse_reason_ref(text) else {
        return Ok(false);
    };
    if r.signed.request.content_hashes.contains(&hash) {
        r.conn
            .prepare_cached(
                "INSERT OR IGNORE INTO reason_pieces (hash, patient, height) VALUES (?1, ?2, ?3)",
            )?
            .execute(medchain_store::rusqlite::params![
                &hash.0[..],
                patient,
                r.height as i64
            ])?;
        return Ok(true);
    }
    let kept: Option<i64> = r
        .conn
        .prepare_cached("SELECT 1 FROM reason_pieces WHERE hash = ?1 AND patient = ?2")?
        .query_row(
            medchain_store::rusqlite::params![&hash.0[..], patient],
            |row| row.get(0),
        )
        .optional()?;
    match kept {
        Some(_) => Ok(true),
        None => reject(
            Outcome::Invalid,
            "sealed text hash is not the request's content",
        ),
    }
}
