//! The one place these tests touch the records `Ledger` and its outcome table: a fresh
//! SQLite database, migrated, with blocks of real signed requests applied to it. The
//! ledger's internals are being reorganised; if `migrate`, `apply` or `query::outcome`
//! change shape, this file is the only one that needs an edit.
//!
//! The genesis has four organisations (so that some gateways are foreign to every user),
//! users in two departments of two of them, and standing consents.
#![allow(dead_code)] // each test binary uses a different part of the harness

use medchain_records::query;
use medchain_records::{Actor, Batch, Envelope, Ledger, Outcome, RecordContent, Transaction};
use medchain_store::rusqlite::{types::ValueRef, Connection};
use medchain_store::StateMachine;
use medchain_testkit::{GenesisBuilder, TestKeys};
use medchain_types::block::tx_root;
use medchain_types::genesis::GenesisUser;
use medchain_types::{
    BlockHeader, ClientId, CommitCertificate, CommittedBlock, Genesis, Hash32, KeyPair, ReplicaId,
    Request, SignedRequest, UserRole,
};

/// Number of organisations, each with one replica, one gateway and one operator key.
pub const ORGS: u16 = 4;
/// "Now" of the first block; later blocks are later.
pub const START_MS: u64 = 1_800_000_000_000;

/// Genesis users: (id, role, organisation, department).
pub const USERS: &[(&str, UserRole, u16, &str)] = &[
    ("dep-card", UserRole::Department, 0, "cardiology"),
    ("d-card", UserRole::Doctor, 0, "cardiology"),
    ("d-card2", UserRole::Doctor, 0, "cardiology"),
    ("p-card", UserRole::Patient, 0, "cardiology"),
    ("p-card2", UserRole::Patient, 0, "cardiology"),
    ("ph-0", UserRole::Pharmacy, 0, "pharmacy"),
    ("dep-onc", UserRole::Department, 1, "oncology"),
    ("d-onc", UserRole::Doctor, 1, "oncology"),
    ("p-onc", UserRole::Patient, 1, "oncology"),
    ("ph-1", UserRole::Pharmacy, 1, "pharmacy"),
];

/// Standing consents of the genesis: (patient, doctor).
pub const CONSENTS: &[(&str, &str)] = &[("p-card", "d-card"), ("p-onc", "d-onc")];

/// The test chain's keys (the shared test kit's, under this suite's prefix).
pub const KEYS: TestKeys = TestKeys::new("rules-");

/// Which key signs a request: an organisation's gateway or its operator (the CLI).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signer {
    Gateway(u16),
    Operator(u16),
}

impl Signer {
    /// The genesis client index: gateways are 0..n, operators n..2n.
    pub fn client(self) -> u16 {
        match self {
            Signer::Gateway(org) => org,
            Signer::Operator(org) => ORGS + org,
        }
    }

    fn key(self) -> KeyPair {
        KEYS.client(usize::from(self.client()))
    }
}

/// What a request carries: a batch as an honest gateway encodes it, or any bytes at all
/// (what a faulty one might send).
#[derive(Clone, Debug)]
pub enum Payload {
    Batch(Vec<Envelope>),
    Raw(Vec<u8>),
}

/// One request before it is signed.
#[derive(Clone, Debug)]
pub struct Submission {
    pub signer: Signer,
    pub payload: Payload,
}

impl Submission {
    /// One transaction by `actor`.
    pub fn one(signer: Signer, actor: Actor, tx: Transaction) -> Self {
        Submission {
            signer,
            payload: Payload::Batch(vec![Envelope { actor, tx }]),
        }
    }

    fn bytes(&self) -> Vec<u8> {
        match &self.payload {
            Payload::Batch(envs) => Batch(envs.clone()).encode(),
            Payload::Raw(bytes) => bytes.clone(),
        }
    }

    /// A request that adds a record carries the sample content, as the gateway would;
    /// a record naming any other hash names content the request does not hold.
    fn content(&self) -> Vec<Vec<u8>> {
        let adds_record = match &self.payload {
            Payload::Batch(envs) => envs
                .iter()
                .any(|e| matches!(e.tx, Transaction::AddRecord { .. })),
            Payload::Raw(_) => false,
        };
        let shares_key = match &self.payload {
            Payload::Batch(envs) => envs
                .iter()
                .any(|e| matches!(e.tx, Transaction::SharePatientKey { .. })),
            Payload::Raw(_) => false,
        };
        let seals_reason = match &self.payload {
            Payload::Batch(envs) => envs.iter().any(|e| match &e.tx {
                Transaction::BreakGlass { reason, .. } => *reason == sample_reason_ref(),
                Transaction::Propose {
                    action: medchain_records::ProposedAction::OpenBreakGlass { reason, .. },
                    ..
                } => *reason == sample_reason_ref(),
                Transaction::ReviewBreakGlass { note, .. }
                | Transaction::ReviewAlert { note, .. } => *note == sample_reason_ref(),
                _ => false,
            }),
            Payload::Raw(_) => false,
        };
        let mut out = Vec::new();
        if seals_reason {
            out.push(SAMPLE_SEALED_REASON.to_vec());
        }
        if adds_record {
            out.push(sample_content().to_bytes());
        }
        if shares_key {
            out.push(SAMPLE_SEALED_KEY.to_vec());
        }
        out
    }
}

/// The clinical content every test record holds.
pub fn sample_content() -> RecordContent {
    RecordContent {
        department: "cardiology".into(),
        diagnosis: "hypertension".into(),
        prescription: "amlodipine 5 mg daily".into(),
        notes: "review in four weeks".into(),
        medications: Vec::new(),
    }
}

/// The hash under which the request carries `sample_content`.
pub fn sample_content_hash() -> Hash32 {
    Hash32::sha256(&sample_content().to_bytes())
}

/// The bytes every test `SharePatientKey` carries as its sealed key (the ledger cannot
/// look inside sealed bytes, so their form does not matter to the rules).
pub const SAMPLE_SEALED_KEY: &[u8] = b"a data key sealed to an organisation";

/// The hash under which the request carries `SAMPLE_SEALED_KEY`.
pub fn sample_sealed_key_hash() -> Hash32 {
    Hash32::sha256(SAMPLE_SEALED_KEY)
}

/// The piece a test break-glass with a sealed reason carries (its form does not matter
/// to the rules either).
pub const SAMPLE_SEALED_REASON: &[u8] = b"MCB1 a reason sealed to two organisations";

/// How a break-glass names `SAMPLE_SEALED_REASON`.
pub fn sample_reason_ref() -> String {
    medchain_records::sealed::reason_ref(SAMPLE_SEALED_REASON)
}

/// The organisation of a genesis user (panics on a typo in a test).
pub fn home_of(user: &str) -> u16 {
    USERS
        .iter()
        .find(|u| u.0 == user)
        .map(|u| u.2)
        .unwrap_or_else(|| panic!("{user} is not a genesis user"))
}

pub fn genesis() -> Genesis {
    let mut b = GenesisBuilder::new("records-rules", KEYS)
        .encrypted()
        .replicas(usize::from(ORGS))
        .clients(2 * usize::from(ORGS))
        .organisations(|i| format!("Org {i}"))
        .client_names(|i| format!("client {i}"));
    for (id, role, org, dept) in USERS {
        b = b.user(GenesisUser {
            user_id: (*id).into(),
            role: *role,
            organisation: ReplicaId(*org),
            department: (*dept).into(),
            display_name: format!("User {id}"),
        });
    }
    for (patient, doctor) in CONSENTS {
        b = b.consent(patient, doctor);
    }
    b.build()
}

/// A fresh ledger database and the blocks applied to it so far.
#[derive(Debug)]
pub struct Chain {
    conn: Connection,
    ledger: Ledger,
    height: u64,
    next_request_id: u64,
    _dir: tempfile::TempDir,
}

/// What the ledger recorded for one transaction.
pub type Recorded = (Outcome, String);

impl Chain {
    pub fn new() -> Self {
        let g = genesis();
        g.validate().expect("the test genesis is valid");
        let dir = tempfile::tempdir().expect("a temporary directory");
        let conn = Connection::open(dir.path().join("records.sqlite")).expect("open sqlite");
        // The store runs WAL with full syncs; what these tests check does not depend on
        // durability, and syncing every block of a hundred and more fresh databases
        // would dominate their run time.
        conn.pragma_update(None, "journal_mode", "WAL")
            .expect("journal mode");
        conn.pragma_update(None, "synchronous", "OFF")
            .expect("synchronous");
        // The store's content table (as `medchain-store` lays it out): the ledger reads
        // sealed keys from it and an erasure deletes from it.
        conn.execute_batch(
            "CREATE TABLE content (id INTEGER PRIMARY KEY, height INTEGER NOT NULL,
                                   hash BLOB NOT NULL, bytes BLOB NOT NULL);
             CREATE UNIQUE INDEX content_at ON content(height, hash);",
        )
        .expect("content table");
        let mut ledger = Ledger::new(g);
        ledger.migrate(&conn).expect("migrate a fresh database");
        Chain {
            conn,
            ledger,
            height: 0,
            next_request_id: 1,
            _dir: dir,
        }
    }

    /// Apply one block holding `subs` at `now_ms`, and return what became of each
    /// transaction of each submission, in order.
    pub fn apply(&mut self, now_ms: u64, subs: &[Submission]) -> Vec<Vec<Recorded>> {
        self.height += 1;
        let requests: Vec<SignedRequest> = subs.iter().map(|s| self.sign(s)).collect();
        let block = block(self.height, now_ms, requests.clone());
        let tx = self.conn.transaction().expect("begin");
        // As the store does: the block's content beside it, in the same transaction.
        for r in &block.requests {
            for (hash, bytes) in r.request.content_hashes.iter().zip(&r.content) {
                tx.execute(
                    "INSERT OR IGNORE INTO content (height, hash, bytes) VALUES (?1, ?2, ?3)",
                    medchain_store::rusqlite::params![self.height as i64, &hash.0[..], bytes],
                )
                .expect("content");
            }
        }
        self.ledger.apply(&tx, &block).expect("apply never fails");
        tx.commit().expect("commit");
        requests.iter().map(|r| self.recorded(r)).collect()
    }

    fn sign(&mut self, s: &Submission) -> SignedRequest {
        let content = s.content();
        let request_id = self.next_request_id;
        self.next_request_id += 1;
        Request {
            client: ClientId(s.signer.client()),
            request_id,
            payload: s.bytes(),
            content_hashes: content.iter().map(|c| Hash32::sha256(c)).collect(),
        }
        .sign_with_content(&s.signer.key(), content)
    }

    /// Outcomes of indices 0, 1, ... until the ledger has none (a refused batch has one).
    fn recorded(&self, r: &SignedRequest) -> Vec<Recorded> {
        let mut out = Vec::new();
        while let Some(o) = query::outcome(
            &self.conn,
            r.request.client.0,
            r.request.request_id,
            out.len() as u32,
        )
        .expect("read outcome")
        {
            out.push(o);
        }
        assert!(!out.is_empty(), "no outcome recorded for a request");
        out
    }

    /// The ledger's database, for reading the state the way the API does.
    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    /// Every row of every table but the outcomes: what a rejected transaction must not
    /// change.
    pub fn state(&self) -> Vec<String> {
        // Content is the store's, written for every request whatever its outcome.
        self.dump(|t| t != "outcomes" && t != "content")
    }

    /// Every row of every table, outcomes included: what replicas must agree on.
    pub fn everything(&self) -> Vec<String> {
        self.dump(|_| true)
    }

    fn dump(&self, keep: impl Fn(&str) -> bool) -> Vec<String> {
        let mut stmt = self
            .conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            .expect("list tables");
        let tables: Vec<String> = stmt
            .query_map([], |r| r.get(0))
            .expect("list tables")
            .collect::<Result<_, _>>()
            .expect("table names");
        tables
            .into_iter()
            .filter(|t| keep(t))
            .flat_map(|t| self.rows_of(&t))
            .collect()
    }

    fn rows_of(&self, table: &str) -> Vec<String> {
        let mut stmt = self
            .conn
            .prepare(&format!("SELECT * FROM \"{table}\""))
            .expect("select table");
        let width = stmt.column_count();
        let mut rows = stmt.query([]).expect("query table");
        let mut out = Vec::new();
        while let Some(row) = rows.next().expect("next row") {
            let cells: Vec<String> = (0..width)
                .map(|i| cell(row.get_ref(i).expect("cell")))
                .collect();
            out.push(format!("{table}: {}", cells.join(" | ")));
        }
        // Compared as sets of rows: the order SQLite returns them in is not the state.
        out.sort();
        out
    }
}

impl Default for Chain {
    fn default() -> Self {
        Self::new()
    }
}

fn cell(v: ValueRef<'_>) -> String {
    match v {
        ValueRef::Null => "NULL".into(),
        ValueRef::Integer(i) => i.to_string(),
        ValueRef::Real(f) => f.to_string(),
        ValueRef::Text(t) => format!("{:?}", String::from_utf8_lossy(t)),
        ValueRef::Blob(b) => format!("x'{}'", hex::encode(b)),
    }
}

/// A block as the store would hand it to the ledger. The certificate is empty: the
/// ledger does not check it (the store and the verifier do, before).
fn block(height: u64, now_ms: u64, requests: Vec<SignedRequest>) -> CommittedBlock {
    let header = BlockHeader {
        height,
        view: 0,
        prev_hash: Hash32::default(),
        tx_root: tx_root(&requests),
        proposer: ReplicaId(0),
        timestamp_ms: now_ms,
    };
    CommittedBlock {
        header,
        requests,
        certificate: CommitCertificate {
            view: 0,
            height,
            proposal_digest: Hash32::default(),
            signatures: Vec::new(),
        },
    }
}
