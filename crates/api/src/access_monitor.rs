//! The access monitor at a node: the committed blocks, read in order and turned into the
//! monitor's facts (`medchain-monitor`), so that a department sees the alerts every
//! replica computes alike for the same chain. Facts come from the transactions the ledger
//! accepted (its recorded outcomes), with the block's own time, never from mutable state
//! rows or the node's clock: the alerts are a function of the chain alone. Reviews are
//! ledger transactions (`ReviewAlert`); this module only computes and remembers alerts.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::Mutex;

use medchain_monitor::{
    Alert, Counters, Fact, FactKind, Grantee, Monitor, ReadVia, ReaderDay, Role,
};
use medchain_records::{query, user, Actor, Batch, Envelope, Outcome, Transaction};
use medchain_store::rusqlite::{self, Connection, OptionalExtension};
use medchain_types::{decode, CommittedBlock, Genesis, UserRole};

use crate::error::{ApiError, ApiResult};
use crate::patient_keys::PatientKeys;

/// Alerts a node keeps in memory (the oldest go first); far more than a department
/// reviews, and a bound on what a flood of reads can make the node hold.
pub const MAX_ALERTS_KEPT: usize = 100_000;
/// Finished reader-days kept for the learned score (the oldest go first).
pub const MAX_READER_DAYS_KEPT: usize = 20_000;
/// Blocks read per catch-up step, so that one request never holds the lock for long.
const BLOCKS_PER_STEP: usize = 256;
/// Catch-up steps per request: beyond them the answer says it is behind.
const STEPS_PER_REQUEST: usize = 64;

/// The monitor, fed up to some height, and the alerts it raised.
#[derive(Debug, Default)]
pub struct AccessMonitor {
    state: Mutex<Option<Fed>>,
}

#[derive(Debug)]
struct Fed {
    monitor: Monitor,
    /// The store's blocks, opened at the first request and kept.
    reader: Option<medchain_store::Reader>,
    /// The next block to read.
    next_height: u64,
    alerts: VecDeque<Alert>,
    days: VecDeque<ReaderDay>,
}

/// What a caller reads, under the monitor's lock (nothing is copied): the alerts and
/// finished reader-days, oldest first, and whether the monitor has read the whole chain.
#[derive(Debug)]
pub struct View<'a> {
    pub alerts: &'a VecDeque<Alert>,
    pub days: &'a VecDeque<ReaderDay>,
    pub caught_up: bool,
}

impl AccessMonitor {
    /// Read the blocks not yet fed (bounded per call), then let `read` look at the state.
    pub fn with_caught_up<T>(
        &self,
        conn: &Connection,
        db_path: &Path,
        genesis: &Genesis,
        keys: &PatientKeys,
        read: impl FnOnce(View<'_>) -> ApiResult<T>,
    ) -> ApiResult<T> {
        let mut guard = self
            .state
            .lock()
            .map_err(|_| ApiError::internal("access monitor lock"))?;
        let fed = guard.get_or_insert_with(|| Fed::from_genesis(genesis, conn, keys));
        // Taken out while feeding (an error drops it; the next request opens it again).
        let reader = match fed.reader.take() {
            Some(r) => r,
            None => medchain_store::Reader::open(db_path).map_err(ApiError::internal)?,
        };
        let head = reader.height().map_err(ApiError::internal)?;
        for _ in 0..STEPS_PER_REQUEST {
            if fed.next_height > head {
                break;
            }
            let blocks = reader
                .blocks(fed.next_height, BLOCKS_PER_STEP)
                .map_err(ApiError::internal)?;
            if blocks.is_empty() {
                break;
            }
            for b in &blocks {
                for fact in facts_of_block(conn, b)? {
                    let alerts = fed.monitor.apply(&with_opened_name(conn, keys, fact));
                    fed.push(alerts);
                }
                let days = fed.monitor.take_reader_days();
                fed.push_days(days);
                fed.next_height = b.height() + 1;
            }
        }
        fed.reader = Some(reader);
        read(View {
            alerts: &fed.alerts,
            days: &fed.days,
            caught_up: fed.next_height > head,
        })
    }

    /// Totals per rule and explanation so far, for `/metrics` (without catching up).
    pub fn counters(&self) -> Option<Counters> {
        let guard = self.state.lock().ok()?;
        guard.as_ref().map(|f| f.monitor.counters().clone())
    }
}

impl Fed {
    fn from_genesis(genesis: &Genesis, conn: &Connection, keys: &PatientKeys) -> Fed {
        let mut fed = Fed {
            monitor: Monitor::new(),
            reader: None,
            next_height: 1,
            alerts: VecDeque::new(),
            days: VecDeque::new(),
        };
        for fact in genesis_facts(genesis) {
            let alerts = fed.monitor.apply(&with_opened_name(conn, keys, fact));
            fed.push(alerts);
        }
        fed
    }

    fn push_days(&mut self, days: Vec<ReaderDay>) {
        for d in days {
            if self.days.len() == MAX_READER_DAYS_KEPT {
                self.days.pop_front();
            }
            self.days.push_back(d);
        }
    }

    fn push(&mut self, alerts: Vec<Alert>) {
        for a in alerts {
            if self.alerts.len() == MAX_ALERTS_KEPT {
                self.alerts.pop_front();
            }
            self.alerts.push_back(a);
        }
    }
}

/// A registration with the user's name as this node opens it: patients' names are sealed
/// on the ledger, and the same-surname rule compares names, never ciphertext (a name this
/// node holds no key for counts as none).
fn with_opened_name(conn: &Connection, keys: &PatientKeys, mut fact: Fact) -> Fact {
    if let FactKind::UserRegistered {
        user_id,
        display_name,
        ..
    } = &mut fact.kind
    {
        let opened = keys.display_name(conn, user_id, display_name);
        *display_name = if opened == crate::patient_keys::SEALED_NAME_PLACEHOLDER {
            String::new()
        } else {
            opened
        };
    }
    fact
}

/// The genesis's users and standing consents, as facts at height 0.
pub fn genesis_facts(genesis: &Genesis) -> Vec<Fact> {
    let users = genesis.users.iter().map(|u| {
        Fact::new(
            0,
            0,
            FactKind::UserRegistered {
                user_id: u.user_id.clone(),
                role: role_of(u.role),
                organisation: u.organisation.0,
                department: u.department.clone(),
                display_name: u.display_name.clone(),
            },
        )
    });
    let consents = genesis.consents.iter().map(|c| {
        Fact::new(
            0,
            0,
            FactKind::ConsentGranted {
                patient: c.patient.clone(),
                grantee: Grantee::User(c.doctor.clone()),
            },
        )
    });
    users.chain(consents).collect()
}

fn role_of(r: UserRole) -> Role {
    match r {
        UserRole::Doctor => Role::Doctor,
        UserRole::Patient => Role::Patient,
        UserRole::Pharmacy => Role::Pharmacy,
        UserRole::Department => Role::Department,
    }
}

/// The facts of one block: each transaction the ledger accepted, in order.
pub fn facts_of_block(conn: &Connection, b: &CommittedBlock) -> ApiResult<Vec<Fact>> {
    let (at, h) = (b.header.timestamp_ms, b.height());
    let mut out = Vec::new();
    for r in &b.requests {
        let Ok(Batch(envs)) = decode::<Batch>(
            &r.request.payload,
            medchain_records::limits::BATCH_MAX_BYTES,
        ) else {
            continue;
        };
        for (i, env) in envs.iter().enumerate() {
            let accepted = matches!(
                query::outcome(conn, r.request.client.0, r.request.request_id, i as u32)?,
                Some((Outcome::Ok, _))
            );
            if accepted {
                for kind in facts_of(conn, env, at, h)? {
                    out.push(Fact::new(at, h, kind));
                }
            }
        }
    }
    Ok(out)
}

/// How the audit entry says the ledger let the reader in (`ReadAccess::reason` and the
/// department's and pharmacy's reads).
fn via_of(reason: &str) -> ReadVia {
    match reason {
        "own data" => ReadVia::Own,
        "break-glass" => ReadVia::BreakGlass,
        medchain_records::tx::DEPARTMENT_READ_REASON => ReadVia::Department,
        "dispensing" => ReadVia::PharmacyCode,
        _ => ReadVia::Consent,
    }
}

/// A user as the ledger registered them (its row: the organisation is the registrar's).
fn registered(conn: &Connection, user_id: &str) -> ApiResult<Option<FactKind>> {
    Ok(user(conn, user_id)?.map(|u| FactKind::UserRegistered {
        user_id: u.user_id,
        role: role_of(u.role),
        organisation: u.organisation,
        department: u.department,
        display_name: u.display_name,
    }))
}

fn grantee_of(
    conn: &Connection,
    patient: &str,
    g: &medchain_records::Grantee,
) -> ApiResult<Grantee> {
    use medchain_records::Grantee as G;
    Ok(match g {
        G::Doctor(id) | G::Pharmacy(id) => Grantee::User(id.clone()),
        G::Department(d) => Grantee::Department {
            organisation: user(conn, patient)?.map_or(0, |p| p.organisation),
            department: d.clone(),
        },
        G::DepartmentOf {
            organisation,
            department,
        } => Grantee::Department {
            organisation: *organisation,
            department: department.clone(),
        },
    })
}

/// The facts one accepted transaction states (none for those the monitor does not read).
fn facts_of(
    conn: &Connection,
    env: &Envelope,
    at_ms: u64,
    height: u64,
) -> ApiResult<Vec<FactKind>> {
    let actor = match &env.actor {
        Actor::User(id) => id.clone(),
        Actor::Operator => String::new(),
    };
    Ok(match &env.tx {
        Transaction::RegisterUser { user_id, .. } => {
            registered(conn, user_id)?.into_iter().collect()
        }
        Transaction::Propose { proposal_id, .. } | Transaction::ApproveProposal { proposal_id } => {
            // A proposal that registered an administrator in this very block.
            let target: Option<String> = conn
                .prepare_cached(
                    "SELECT target FROM proposals
                     WHERE id = ?1 AND executed_height = ?2 AND kind = 'register_administrator'",
                )?
                .query_row(rusqlite::params![proposal_id, height as i64], |r| r.get(0))
                .optional()?;
            match target {
                Some(t) => registered(conn, &t)?.into_iter().collect(),
                None => Vec::new(),
            }
        }
        Transaction::GrantConsent { grantee, .. } => vec![FactKind::ConsentGranted {
            grantee: grantee_of(conn, &actor, grantee)?,
            patient: actor,
        }],
        Transaction::RevokeConsent { grantee } => vec![FactKind::ConsentRevoked {
            grantee: grantee_of(conn, &actor, grantee)?,
            patient: actor,
        }],
        Transaction::AddRecord {
            record_id,
            patient,
            consent_code,
            prescription_code_hash,
            ..
        } => {
            // The department the ledger recorded (the doctor's, at the time).
            let department: String = conn
                .prepare_cached("SELECT department FROM records WHERE record_id = ?1")?
                .query_row(rusqlite::params![record_id], |r| r.get(0))
                .optional()?
                .unwrap_or_default();
            let mut v = Vec::with_capacity(2);
            if consent_code.is_some() {
                // The code was spent by this record: it came first.
                v.push(FactKind::ConsentCodeUsed {
                    doctor: actor.clone(),
                    patient: patient.clone(),
                });
            }
            v.push(FactKind::RecordWritten {
                doctor: actor,
                patient: patient.clone(),
                department,
                prescribes: prescription_code_hash.is_some(),
            });
            v
        }
        Transaction::BreakGlass {
            patient,
            duration_ms,
            ..
        } => vec![FactKind::BreakGlassOpened {
            doctor: actor,
            patient: patient.clone(),
            until_ms: at_ms.saturating_add(*duration_ms),
        }],
        Transaction::AuditRead {
            patient, reason, ..
        } => vec![FactKind::Read {
            reader: actor,
            patient: patient.clone(),
            via: via_of(reason),
        }],
        _ => Vec::new(),
    })
}
