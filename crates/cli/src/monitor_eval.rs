//! `medchain monitor-eval`: the access monitor measured on injected snooping, through the
//! real ledger code. The synthetic consortium workload (`medchain_monitor::eval`) is
//! turned into the transactions a gateway would submit (records, consents, one-time
//! codes, break-glass, audited reads), each signed by the actor's home organisation's
//! gateway key and executed by the records ledger (the same rules every replica runs, in
//! a temporary SQLite file); the facts the monitor then reads are those the node derives
//! from the committed blocks (`medchain_api::access_monitor`), with each injected
//! incident's label carried through. What the ledger refuses (a fourth break-glass in a
//! day without a second approver) simply does not happen, as in production.

use std::collections::HashMap;

use anyhow::Context;
use medchain_monitor::eval::{generate, EvalConfig, Labelled, Workload};
use medchain_monitor::{FactKind, Grantee, ReadVia, Role};
use medchain_records::tx::consent_code_hash;
use medchain_records::{Actor, Batch, Envelope, Ledger, RecordContent, Transaction};
use medchain_store::rusqlite::Connection;
use medchain_store::StateMachine;
use medchain_types::genesis::{ClientInfo, GenesisUser};
use medchain_types::{
    BlockHeader, ClientId, CommitCertificate, CommittedBlock, Genesis, Hash32, KeyPair, ReplicaId,
    ReplicaInfo, Request, UserRole,
};

#[derive(clap::Args, Debug)]
pub struct MonitorEvalArgs {
    /// Seed of the synthetic workload (the reported figures use seeds not tuned on).
    #[arg(long, default_value_t = 11)]
    pub seed: u64,
    /// Weeks simulated, two of them warm-up.
    #[arg(long, default_value_t = 6)]
    pub weeks: u32,
    #[arg(long, default_value_t = 40)]
    pub doctors: u32,
    /// Share of doctor-workdays with one injected snooping incident.
    #[arg(long, default_value_t = 0.05)]
    pub rate: f64,
    /// Learned score at or above which a reader-day counts as flagged.
    #[arg(long, default_value_t = 0.6)]
    pub threshold: f64,
    /// Feed the generated facts to the monitor directly, skipping the ledger (faster; the
    /// difference shows what the ledger's rules change).
    #[arg(long)]
    pub direct: bool,
}

/// The consortium the workload runs on: four organisations (3f+1), users from the
/// workload's registrations; deterministic keys (nothing here is a real deployment).
const ORGS: usize = 4;

fn key(i: u8) -> KeyPair {
    KeyPair::from_secret([i.wrapping_add(1); 32])
}

pub fn run(a: &MonitorEvalArgs) -> anyhow::Result<()> {
    let cfg = EvalConfig {
        seed: a.seed,
        weeks: a.weeks,
        doctors: a.doctors,
        snoop_rate: a.rate,
        score_threshold: a.threshold,
        ..EvalConfig::default()
    };
    if cfg.weeks <= cfg.warmup_weeks {
        anyhow::bail!("--weeks must exceed the {} warm-up weeks", cfg.warmup_weeks);
    }
    let started = std::time::Instant::now();
    let generated = generate(&cfg);
    let (workload, note) = if a.direct {
        (generated, "facts fed directly (no ledger)".to_string())
    } else {
        let (w, stats) = through_ledger(&generated)?;
        (w, stats)
    };
    let report = medchain_monitor::eval::evaluate_workload(&cfg, &workload);
    print!("{report}");
    println!("# {note}; {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// Execute the workload on a real records ledger and read its facts back from the blocks.
fn through_ledger(w: &Workload) -> anyhow::Result<(Workload, String)> {
    let roles = roles_of(w);
    let genesis = genesis_of(w)?;
    let dir = tempfile::tempdir()?;
    let mut conn = Connection::open(dir.path().join("records.sqlite"))?;
    // A measurement, not a deployment: durability does not change what executes.
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "OFF")?;
    let mut ledger = Ledger::new(genesis.clone());
    ledger.migrate(&conn)?;
    let org_of: HashMap<String, u16> = genesis
        .users
        .iter()
        .map(|u| (u.user_id.clone(), u.organisation.0))
        .collect();
    let mut out = Vec::with_capacity(w.facts.len());
    out.extend(
        medchain_api::access_monitor::genesis_facts(&genesis)
            .into_iter()
            .map(|fact| Labelled {
                fact,
                incident: None,
            }),
    );
    let mut sub = Submitter::default();
    let (mut refused, mut executed) = (std::collections::BTreeMap::<String, u64>::new(), 0u64);
    for l in &w.facts {
        let Some(txs) = transactions_of(&l.fact.kind, l.fact.at_ms, &roles, &mut sub) else {
            continue;
        };
        for (actor, tx, content) in txs {
            let org = match &actor {
                Actor::User(id) => org_of.get(id).copied().unwrap_or(0),
                Actor::Operator => 0,
            };
            let block = sub.block(org, l.fact.at_ms, Envelope { actor, tx }, content);
            let t = conn.transaction()?;
            ledger.apply(&t, &block)?;
            let facts = medchain_api::access_monitor::facts_of_block(&t, &block)
                .map_err(|e| anyhow::anyhow!("reading facts back: {}", e.message))?;
            let r = &block.requests[0].request;
            let outcome = medchain_records::query::outcome(&t, r.client.0, r.request_id, 0)?;
            t.commit()?;
            match outcome {
                Some((medchain_records::Outcome::Ok, _)) => executed += 1,
                // Rare: name the refused transaction's kind only then.
                _ => *refused.entry(kind_of(&block)).or_default() += 1,
            }
            out.extend(facts.into_iter().map(|fact| Labelled {
                fact,
                incident: l.incident,
            }));
        }
    }
    let refused_total: u64 = refused.values().sum();
    let by_kind: Vec<String> = refused.iter().map(|(k, n)| format!("{k} {n}")).collect();
    let note = if by_kind.is_empty() {
        format!("through the records ledger: {executed} transactions executed, none refused")
    } else {
        format!(
            "through the records ledger: {executed} transactions executed, {refused_total} refused by its rules ({})",
            by_kind.join(", ")
        )
    };
    Ok((
        Workload {
            facts: out,
            incidents: w.incidents.clone(),
            measure_from_ms: w.measure_from_ms,
        },
        note,
    ))
}

/// The kind of a one-transaction block's transaction (`BreakGlass`, ...), for the report.
fn kind_of(block: &CommittedBlock) -> String {
    let payload = &block.requests[0].request.payload;
    match medchain_types::decode::<Batch>(payload, medchain_records::limits::BATCH_MAX_BYTES) {
        Ok(Batch(envs)) => envs.first().map_or_else(String::new, |e| {
            let debug = format!("{:?}", e.tx);
            debug
                .split([' ', '{', '('])
                .next()
                .unwrap_or("")
                .to_string()
        }),
        Err(_) => "undecodable".into(),
    }
}

fn roles_of(w: &Workload) -> HashMap<String, Role> {
    w.facts
        .iter()
        .filter_map(|l| match &l.fact.kind {
            FactKind::UserRegistered { user_id, role, .. } => Some((user_id.clone(), *role)),
            _ => None,
        })
        .collect()
}

fn user_role(r: Role) -> UserRole {
    match r {
        Role::Doctor => UserRole::Doctor,
        Role::Patient => UserRole::Patient,
        Role::Pharmacy => UserRole::Pharmacy,
        Role::Department => UserRole::Department,
    }
}

/// A genesis of four organisations whose users are the workload's registrations.
fn genesis_of(w: &Workload) -> anyhow::Result<Genesis> {
    let users: Vec<GenesisUser> = w
        .facts
        .iter()
        .filter_map(|l| match &l.fact.kind {
            FactKind::UserRegistered {
                user_id,
                role,
                organisation,
                department,
                display_name,
            } => Some(GenesisUser {
                user_id: user_id.clone(),
                role: user_role(*role),
                organisation: ReplicaId(*organisation),
                department: department.clone(),
                display_name: display_name.clone(),
            }),
            _ => None,
        })
        .collect();
    let replicas = (0..ORGS)
        .map(|i| ReplicaInfo {
            id: ReplicaId(i as u16),
            organisation: format!("Organisation {i}"),
            public_key: key(100 + i as u8).public(),
            peer_addr: format!("127.0.0.1:{}", 7000 + i),
            http_addr: format!("127.0.0.1:{}", 5000 + i),
        })
        .collect();
    // Gateways 0..n, operators n..2n, as the ledger expects.
    let clients = (0..2 * ORGS)
        .map(|i| ClientInfo {
            name: format!("client {i}"),
            public_key: key(i as u8).public(),
        })
        .collect();
    let g = Genesis {
        format_version: medchain_types::codec::FORMAT_VERSION,
        chain_id: "medchain-monitor-eval".into(),
        replicas,
        clients,
        users,
        consents: Vec::new(),
        policy: Default::default(),
        encryption_keys: Vec::new(),
    };
    g.validate()
        .context("the workload does not make a valid genesis")?;
    Ok(g)
}

/// Signs each transaction as its actor's home gateway and wraps it in its own block.
#[derive(Default)]
struct Submitter {
    height: u64,
    request_ids: HashMap<u16, u64>,
    records: u64,
}

impl Submitter {
    fn block(
        &mut self,
        org: u16,
        at_ms: u64,
        env: Envelope,
        content: Vec<Vec<u8>>,
    ) -> CommittedBlock {
        self.height += 1;
        let id = self.request_ids.entry(org).or_insert(0);
        *id += 1;
        let request = Request {
            client: ClientId(org),
            request_id: *id,
            payload: Batch::one(&env),
            content_hashes: content.iter().map(|c| Hash32::sha256(c)).collect(),
        }
        .sign_with_content(&key(org as u8), content);
        let requests = vec![request];
        CommittedBlock {
            header: BlockHeader {
                height: self.height,
                view: 0,
                prev_hash: Hash32::default(),
                tx_root: medchain_types::block::tx_root(&requests),
                proposer: ReplicaId(0),
                timestamp_ms: at_ms,
            },
            requests,
            // The ledger does not check certificates (the store and `verify` do).
            certificate: CommitCertificate {
                view: 0,
                height: self.height,
                proposal_digest: Hash32::default(),
                signatures: Vec::new(),
            },
        }
    }

    fn record_id(&mut self) -> String {
        self.records += 1;
        format!("ev-{}", self.records)
    }
}

type Tx = (Actor, Transaction, Vec<Vec<u8>>);

fn grantee(g: &Grantee, roles: &HashMap<String, Role>) -> medchain_records::Grantee {
    match g {
        Grantee::User(id) if roles.get(id) == Some(&Role::Pharmacy) => {
            medchain_records::Grantee::Pharmacy(id.clone())
        }
        Grantee::User(id) => medchain_records::Grantee::Doctor(id.clone()),
        Grantee::Department {
            organisation,
            department,
        } => medchain_records::Grantee::DepartmentOf {
            organisation: *organisation,
            department: department.clone(),
        },
    }
}

fn record(
    sub: &mut Submitter,
    doctor: &str,
    patient: &str,
    prescribes: bool,
    code: Option<String>,
) -> Tx {
    let content = RecordContent {
        diagnosis: "synthetic".into(),
        prescription: if prescribes {
            "synthetic".into()
        } else {
            String::new()
        },
        ..RecordContent::default()
    }
    .to_bytes();
    let tx = Transaction::AddRecord {
        record_id: sub.record_id(),
        patient: patient.into(),
        content_hash: Hash32::sha256(&content),
        consent_code: code,
        amends: None,
        prescription_code_hash: prescribes
            .then(|| medchain_records::tx::prescription_code_hash(&format!("RX{}", sub.records))),
    };
    (Actor::User(doctor.into()), tx, vec![content])
}

/// The transactions a gateway submits for one generated fact (registrations are in the
/// genesis already).
fn transactions_of(
    k: &FactKind,
    at_ms: u64,
    roles: &HashMap<String, Role>,
    sub: &mut Submitter,
) -> Option<Vec<Tx>> {
    let user = |id: &str| Actor::User(id.into());
    Some(match k {
        FactKind::UserRegistered { .. } => return None,
        FactKind::RecordWritten {
            doctor,
            patient,
            prescribes,
            ..
        } => vec![record(sub, doctor, patient, *prescribes, None)],
        FactKind::ConsentGranted {
            patient,
            grantee: g,
        } => vec![(
            user(patient),
            Transaction::GrantConsent {
                grantee: grantee(g, roles),
                expires_at_ms: None,
            },
            Vec::new(),
        )],
        FactKind::ConsentRevoked {
            patient,
            grantee: g,
        } => vec![(
            user(patient),
            Transaction::RevokeConsent {
                grantee: grantee(g, roles),
            },
            Vec::new(),
        )],
        FactKind::ConsentCodeUsed { doctor, patient } => {
            // The patient publishes the code's hash; the doctor's record spends it.
            let code = format!("CODE{}", sub.records + 1);
            vec![
                (
                    user(patient),
                    Transaction::CreateConsentCode {
                        code_hash: consent_code_hash(patient, &code),
                    },
                    Vec::new(),
                ),
                record(sub, doctor, patient, false, Some(code)),
            ]
        }
        FactKind::BreakGlassOpened {
            doctor,
            patient,
            until_ms,
        } => vec![(
            user(doctor),
            Transaction::BreakGlass {
                patient: patient.clone(),
                reason: "synthetic emergency access".into(),
                duration_ms: until_ms.saturating_sub(at_ms).clamp(1, 60 * 60 * 1000),
            },
            Vec::new(),
        )],
        FactKind::Read {
            reader,
            patient,
            via,
        } => {
            let reason = match via {
                ReadVia::Own => "own data",
                ReadVia::BreakGlass => "break-glass",
                ReadVia::PharmacyCode => "dispensing",
                ReadVia::Department if roles.get(reader) == Some(&Role::Department) => {
                    medchain_api::audit::DEPARTMENT_READ_REASON
                }
                ReadVia::Consent | ReadVia::Department | ReadVia::ConsentCode => "consent",
            };
            vec![(
                user(reader),
                Transaction::AuditRead {
                    patient: patient.clone(),
                    action: "view_records".into(),
                    reason: reason.into(),
                },
                Vec::new(),
            )]
        }
    })
}
