//! Co-signed proposals, tested at the ledger itself: each approval is a signed request
//! through the approver's own organisation's key, and the rules are what the executor
//! decides, whatever a gateway pre-checks. The rule under test is the one for department
//! administrators: the organisation's operator and one other administrator.

mod common;

use common::{Chain, Signer, Submission, START_MS};
use medchain_records::query::open_proposals;
use medchain_records::Outcome::{self, Conflict, Forbidden, NotFound};
use medchain_records::{user, Actor, ProposedAction, Transaction};
use medchain_types::UserRole;

const OK: Outcome = Outcome::Ok;
const HOUR_MS: u64 = 60 * 60 * 1000;

/// A bounded-time chain: each call is one block one second after the previous.
struct Run {
    chain: Chain,
    now: u64,
}

impl Run {
    fn new() -> Self {
        Run {
            chain: Chain::new(),
            now: START_MS,
        }
    }

    fn at(&mut self, now: u64, sub: Submission) -> (Outcome, String) {
        self.now = now;
        self.chain.apply(now, &[sub]).remove(0).remove(0)
    }

    fn next(&mut self, sub: Submission) -> (Outcome, String) {
        let t = self.now + 1_000;
        self.at(t, sub)
    }

    fn admin(&self, id: &str) -> Option<(bool, u16)> {
        user(self.chain.conn(), id)
            .expect("read user")
            .filter(|u| u.role == UserRole::Department)
            .map(|u| (u.active, u.organisation))
    }

    fn open(&self, org: u16) -> Vec<(String, Vec<String>)> {
        open_proposals(self.chain.conn(), org, self.now)
            .expect("read proposals")
            .into_iter()
            .map(|p| (p.proposal_id, p.approvals))
            .collect()
    }
}

fn operator(org: u16, tx: Transaction) -> Submission {
    Submission::one(Signer::Operator(org), Actor::Operator, tx)
}

/// `id` acting through organisation `org`'s gateway (their home one, unless the test
/// plays a faulty organisation).
fn via(org: u16, id: &str, tx: Transaction) -> Submission {
    Submission::one(Signer::Gateway(org), Actor::User(id.into()), tx)
}

fn register_admin(proposal: &str, id: &str) -> Transaction {
    Transaction::Propose {
        proposal_id: proposal.into(),
        action: ProposedAction::RegisterAdministrator {
            user_id: id.into(),
            department: "radiology".into(),
            display_name: "Radiology office".into(),
        },
        ttl_ms: HOUR_MS,
    }
}

fn approve(proposal: &str) -> Transaction {
    Transaction::ApproveProposal {
        proposal_id: proposal.into(),
    }
}

#[test]
fn a_second_administrator_needs_the_operator_and_an_administrator() {
    let mut run = Run::new();
    // Org 0 already has an administrator (dep-card): its operator alone cannot add one.
    let (o, msg) = run.next(operator(
        0,
        Transaction::RegisterUser {
            user_id: "dep-rad".into(),
            role: UserRole::Department,
            department: "radiology".into(),
            display_name: "Radiology office".into(),
        },
    ));
    assert_eq!(o, Forbidden, "{msg}");
    assert!(msg.contains("proposal"), "{msg}");

    // The operator's proposal is one signature of the two: k - 1 executes nothing.
    assert_eq!(
        run.next(operator(0, register_admin("prop-1", "dep-rad"))).0,
        OK
    );
    assert_eq!(
        run.admin("dep-rad"),
        None,
        "executed with one signature of two"
    );
    assert_eq!(
        run.open(0),
        vec![("prop-1".to_string(), vec!["@operator".to_string()])]
    );
    // The administrator's approval completes it in this block.
    assert_eq!(run.next(via(0, "dep-card", approve("prop-1"))).0, OK);
    assert_eq!(run.admin("dep-rad"), Some((true, 0)));
    assert!(
        run.open(0).is_empty(),
        "an executed proposal is no longer open"
    );
    // And once executed it cannot be approved again.
    let (o, msg) = run.next(operator(0, approve("prop-1")));
    assert_eq!((o, msg.contains("executed")), (Conflict, true), "{msg}");
}

#[test]
fn the_same_approver_twice_counts_once() {
    let mut run = Run::new();
    assert_eq!(
        run.next(via(0, "dep-card", register_admin("p", "dep-rad")))
            .0,
        OK
    );
    let (o, msg) = run.next(via(0, "dep-card", approve("p")));
    assert_eq!(o, Conflict, "{msg}");
    assert!(msg.contains("counts once"), "{msg}");
    assert_eq!(run.admin("dep-rad"), None);
    // Two administrators without the operator do not meet the rule either.
    let mut run = Run::new();
    assert_eq!(run.next(operator(0, register_admin("a", "dep-rad"))).0, OK);
    assert_eq!(run.next(via(0, "dep-card", approve("a"))).0, OK);
    assert_eq!(
        run.next(via(0, "dep-card", register_admin("b", "dep-xr")))
            .0,
        OK
    );
    assert_eq!(run.next(via(0, "dep-rad", approve("b"))).0, OK);
    assert_eq!(run.admin("dep-xr"), None, "two administrators, no operator");
    assert_eq!(run.next(operator(0, approve("b"))).0, OK);
    assert_eq!(run.admin("dep-xr"), Some((true, 0)));
}

#[test]
fn approvals_from_another_organisation_do_not_count() {
    let mut run = Run::new();
    assert_eq!(run.next(operator(0, register_admin("p", "dep-rad"))).0, OK);
    // Org 1's administrator, through its own gateway.
    let (o, msg) = run.next(via(1, "dep-onc", approve("p")));
    assert_eq!(o, Forbidden, "{msg}");
    // Org 1's operator, with its own operator key.
    assert_eq!(run.next(operator(1, approve("p"))).0, Forbidden);
    // Org 1's node vouching for org 0's administrator: the ledger refuses the actor.
    assert_eq!(run.next(via(1, "dep-card", approve("p"))).0, Forbidden);
    // A doctor of org 0 is no administrator.
    assert_eq!(run.next(via(0, "d-card", approve("p"))).0, Forbidden);
    assert_eq!(run.admin("dep-rad"), None, "no refused approval counted");
    assert_eq!(run.open(0)[0].1, vec!["@operator".to_string()]);
    // A proposal that does not exist, and one in another organisation's name.
    assert_eq!(run.next(operator(0, approve("nope"))).0, NotFound);
}

#[test]
fn an_expired_proposal_cannot_be_completed() {
    let mut run = Run::new();
    assert_eq!(run.next(operator(0, register_admin("p", "dep-rad"))).0, OK);
    let late = run.now + HOUR_MS + 1;
    let (o, msg) = run.at(late, via(0, "dep-card", approve("p")));
    assert_eq!(o, Conflict, "{msg}");
    assert!(msg.contains("expired"), "{msg}");
    assert_eq!(run.admin("dep-rad"), None);
    assert!(
        run.open(0).is_empty(),
        "an expired proposal is not listed as open"
    );
    // The same id cannot be reused; a new proposal can be made.
    assert_eq!(
        run.next(operator(0, register_admin("p", "dep-rad"))).0,
        Conflict
    );
    assert_eq!(run.next(operator(0, register_admin("p2", "dep-rad"))).0, OK);
    let ttl_too_long = Transaction::Propose {
        proposal_id: "p3".into(),
        action: ProposedAction::DeactivateAdministrator {
            user_id: "dep-card".into(),
        },
        ttl_ms: 8 * 24 * HOUR_MS,
    };
    assert_eq!(run.next(operator(0, ttl_too_long)).0, Outcome::Invalid);
}

#[test]
fn the_first_administrator_is_the_operators_and_removing_one_takes_two() {
    let mut run = Run::new();
    // Org 2 has no administrator yet: its operator makes the first one alone, directly
    // or by a proposal that its own signature completes.
    assert_eq!(
        run.next(operator(
            2,
            Transaction::RegisterUser {
                user_id: "dep-2".into(),
                role: UserRole::Department,
                department: "general".into(),
                display_name: "General office".into(),
            }
        ))
        .0,
        OK
    );
    assert_eq!(run.admin("dep-2"), Some((true, 2)));
    // From now on a second one takes the operator and dep-2.
    assert_eq!(run.next(operator(2, register_admin("p", "dep-2b"))).0, OK);
    assert_eq!(run.admin("dep-2b"), None);
    assert_eq!(run.next(via(2, "dep-2", approve("p"))).0, OK);
    assert_eq!(run.admin("dep-2b"), Some((true, 2)));

    // Deactivating dep-2b: the operator directly is refused, the target cannot approve
    // its own removal, the operator and dep-2 together can.
    assert_eq!(
        run.next(operator(
            2,
            Transaction::DeactivateUser {
                user_id: "dep-2b".into()
            }
        ))
        .0,
        Forbidden
    );
    let remove = Transaction::Propose {
        proposal_id: "rm".into(),
        action: ProposedAction::DeactivateAdministrator {
            user_id: "dep-2b".into(),
        },
        ttl_ms: HOUR_MS,
    };
    assert_eq!(run.next(operator(2, remove)).0, OK);
    let (o, msg) = run.next(via(2, "dep-2b", approve("rm")));
    assert_eq!(o, Forbidden, "{msg}");
    assert_eq!(run.admin("dep-2b"), Some((true, 2)));
    assert_eq!(run.next(via(2, "dep-2", approve("rm"))).0, OK);
    assert_eq!(run.admin("dep-2b"), Some((false, 2)));
}

#[test]
fn replicas_executing_the_same_approvals_reach_the_same_state() {
    let subs = || {
        vec![
            operator(0, register_admin("p", "dep-rad")),
            via(1, "dep-onc", approve("p")),
            via(0, "dep-card", approve("p")),
            via(0, "dep-card", approve("p")),
        ]
    };
    let mut a = Run::new();
    let mut b = Run::new();
    for s in subs() {
        a.next(s);
    }
    for s in subs() {
        b.next(s);
    }
    assert_eq!(a.chain.everything(), b.chain.everything());
    assert!(a
        .chain
        .everything()
        .iter()
        .any(|r| r.starts_with("proposal_approvals: ")));
}

fn erase(proposal: &str, patient: &str, ttl_ms: u64) -> Transaction {
    Transaction::Propose {
        proposal_id: proposal.into(),
        action: ProposedAction::ErasePatient {
            patient: patient.into(),
            sealed_reason: hex::encode(b"a reason sealed under the patient's key"),
        },
        ttl_ms,
    }
}

fn content_rows(run: &Run, patient: &str) -> i64 {
    run.chain
        .conn()
        .query_row(
            "SELECT COUNT(*) FROM content c JOIN records r
               ON c.height = r.height AND c.hash = r.content_hash WHERE r.patient = ?1",
            [patient],
            |r| r.get(0),
        )
        .expect("count")
}

/// The erasure rule: the patient asks, an administrator of the patient's own department
/// approves; nobody else's signature counts, another organisation cannot act for either,
/// it executes once, and an expired request cannot be completed.
#[test]
fn an_erasure_needs_the_patient_and_their_own_department() {
    let mut run = Run::new();
    let record = Transaction::AddRecord {
        record_id: "r-erase".into(),
        patient: "p-card".into(),
        content_hash: common::sample_content_hash(),
        consent_code: None,
        amends: None,
        prescription_code_hash: None,
    };
    assert_eq!(run.next(via(0, "d-card", record.clone())).0, OK);
    assert_eq!(content_rows(&run, "p-card"), 1);

    assert_eq!(
        run.next(via(0, "dep-card", erase("e0", "p-card", HOUR_MS)))
            .0,
        Forbidden
    );
    assert_eq!(
        run.next(via(1, "p-card", erase("e1", "p-card", HOUR_MS))).0,
        Forbidden
    );
    assert_eq!(
        run.next(via(0, "p-card", erase("e2", "p-card", HOUR_MS))).0,
        OK
    );
    let erased = |run: &Run| medchain_records::query::erased_at(run.chain.conn(), "p-card");
    assert_eq!(erased(&run).expect("query"), None, "asked is not erased");

    for (org, who) in [
        (1, "dep-onc"),
        (0, "d-card"),
        (1, "dep-card"),
        (0, "p-card2"),
    ] {
        let (outcome, message) = run.next(via(org, who, approve("e2")));
        assert!(
            matches!(outcome, Forbidden | NotFound),
            "{who} via {org}: {outcome:?} {message}"
        );
    }
    assert_eq!(
        run.next(via(0, "p-card", approve("e2"))).0,
        Conflict,
        "once each"
    );
    assert_eq!(erased(&run).expect("query"), None);

    assert_eq!(run.next(via(0, "dep-card", approve("e2"))).0, OK);
    assert!(erased(&run).expect("query").is_some());
    assert_eq!(
        content_rows(&run, "p-card"),
        0,
        "the record's content is deleted"
    );
    let p = user(run.chain.conn(), "p-card")
        .expect("read")
        .expect("the id stays");
    assert!(!p.active && p.display_name.is_empty(), "{p:?}");
    assert_eq!(run.next(via(0, "dep-card", approve("e2"))).0, Conflict);
    let Transaction::AddRecord { content_hash, .. } = record else {
        unreachable!("an AddRecord")
    };
    let again = Transaction::AddRecord {
        record_id: "r-after".into(),
        patient: "p-card".into(),
        content_hash,
        consent_code: None,
        amends: None,
        prescription_code_hash: None,
    };
    assert_eq!(
        run.next(via(0, "d-card", again)).0,
        Forbidden,
        "no new data"
    );

    // An expired request cannot be completed.
    assert_eq!(
        run.next(via(0, "p-card2", erase("e3", "p-card2", 500))).0,
        OK
    );
    assert_eq!(run.next(via(0, "dep-card", approve("e3"))).0, Conflict);
    let kept = medchain_records::query::erased_at(run.chain.conn(), "p-card2").expect("query");
    assert_eq!(kept, None);
}

fn break_glass(patient: &str) -> Transaction {
    Transaction::BreakGlass {
        patient: patient.into(),
        reason: "unconscious in A&E".into(),
        duration_ms: 60_000,
    }
}

fn ask_break_glass(proposal: &str, patient: &str) -> Transaction {
    Transaction::Propose {
        proposal_id: proposal.into(),
        action: ProposedAction::OpenBreakGlass {
            patient: patient.into(),
            reason: "unconscious in A&E again".into(),
            duration_ms: 60_000,
        },
        ttl_ms: HOUR_MS,
    }
}

fn openings(run: &Run, doctor: &str) -> i64 {
    run.chain
        .conn()
        .query_row(
            "SELECT COUNT(*) FROM break_glass WHERE doctor = ?1",
            [doctor],
            |r| r.get(0),
        )
        .expect("count")
}

/// Break-glass beyond the daily limit as a proposal: the doctor asks; their own second
/// signature, a doctor of another organisation and the operator do not count; the
/// patient's department (of another organisation here) or a colleague of the doctor's
/// organisation opens it, once.
#[test]
fn break_glass_beyond_the_limit_opens_with_a_second_signature() {
    let mut run = Run::new();
    for _ in 0..3 {
        assert_eq!(run.next(via(0, "d-card", break_glass("p-onc"))).0, OK);
    }
    let (o, msg) = run.next(via(0, "d-card", break_glass("p-onc")));
    assert_eq!(o, Forbidden, "the fourth in 24 hours: {msg}");
    assert_eq!(
        run.next(via(0, "dep-card", ask_break_glass("bg0", "p-onc")))
            .0,
        Forbidden
    );
    assert_eq!(
        run.next(via(0, "d-card", ask_break_glass("bg1", "p-onc")))
            .0,
        OK
    );
    assert_eq!(openings(&run, "d-card"), 3, "asking opens nothing");
    assert_eq!(run.next(via(0, "d-card", approve("bg1"))).0, Conflict);
    for (org, who) in [(1, "d-onc"), (0, "dep-card"), (1, "d-card2")] {
        let (o, msg) = run.next(via(org, who, approve("bg1")));
        assert!(matches!(o, Forbidden), "{who} via {org}: {o:?} {msg}");
    }
    assert_eq!(run.next(operator(0, approve("bg1"))).0, Forbidden);
    assert_eq!(openings(&run, "d-card"), 3);
    // p-onc's department (organisation 1) co-signs through its own node.
    assert_eq!(run.next(via(1, "dep-onc", approve("bg1"))).0, OK);
    assert_eq!(openings(&run, "d-card"), 4);
    let now = run.now;
    assert!(
        medchain_records::break_glass_active(run.chain.conn(), "d-card", "p-onc", now)
            .expect("query")
    );
    assert_eq!(
        run.next(via(0, "d-card2", approve("bg1"))).0,
        Conflict,
        "once"
    );

    // A colleague of the doctor's own organisation co-signs as well.
    assert_eq!(
        run.next(via(0, "d-card", ask_break_glass("bg2", "p-card2")))
            .0,
        OK
    );
    assert_eq!(run.next(via(0, "d-card2", approve("bg2"))).0, OK);
    assert_eq!(openings(&run, "d-card"), 5);
}

fn rotate(proposal: &str, org: u16, key: [u8; 32]) -> Transaction {
    Transaction::Propose {
        proposal_id: proposal.into(),
        action: ProposedAction::RotateEncryptionKey {
            organisation: org,
            public_key: hex::encode(key),
        },
        ttl_ms: HOUR_MS,
    }
}

fn org_key(run: &Run, org: u16) -> Option<[u8; 32]> {
    medchain_records::policy::organisation_key(
        run.chain.conn(),
        &common::genesis().encryption_keys,
        org,
    )
    .expect("query")
}

/// An organisation-level change: organisation 0's encryption key is replaced only once
/// the operators of 2f+1 = 3 organisations (its own among them) have signed; users,
/// another organisation proposing it, and one operator twice do not count. Copies of
/// patient keys sealed to the old key may then be sealed again, once.
#[test]
fn an_organisation_key_rotation_needs_the_operators_of_2f_plus_1_organisations() {
    let mut run = Run::new();
    let genesis_key = org_key(&run, 0).expect("a genesis key");
    let new_key = [42u8; 32];
    let share = |epoch| Transaction::SharePatientKey {
        epoch,
        organisation: 0,
        sealed_hash: common::sample_sealed_key_hash(),
    };
    assert_eq!(run.next(via(0, "p-card", share(0))).0, OK);

    assert_eq!(run.next(operator(1, rotate("k0", 0, new_key))).0, Forbidden);
    assert_eq!(
        run.next(via(0, "dep-card", rotate("k1", 0, new_key))).0,
        Forbidden
    );
    assert_eq!(run.next(operator(0, rotate("k2", 0, new_key))).0, OK);
    assert_eq!(
        run.next(operator(0, approve("k2"))).0,
        Conflict,
        "once per organisation"
    );
    assert_eq!(run.next(via(1, "dep-onc", approve("k2"))).0, Forbidden);
    assert_eq!(run.next(operator(1, approve("k2"))).0, OK);
    assert_eq!(
        org_key(&run, 0),
        Some(genesis_key),
        "two of three organisations"
    );
    // The copy is sealed to the genesis key still: sealing it again is refused.
    assert_eq!(run.next(via(0, "p-card", share(0))).0, Conflict);

    assert_eq!(run.next(operator(2, approve("k2"))).0, OK);
    assert_eq!(org_key(&run, 0), Some(new_key), "three of four: 2f+1");
    let work = medchain_records::query::key_work(run.chain.conn(), 0, run.now, 64).expect("query");
    assert!(
        work.contains(&medchain_records::query::KeyWork::Share {
            patient: "p-card".into(),
            epoch: 0,
            organisation: 0,
        }),
        "the home organisation seals its copy again: {work:?}"
    );
    assert_eq!(
        run.next(via(0, "p-card", share(0))).0,
        OK,
        "sealed again to the new key"
    );
    assert_eq!(
        run.next(via(0, "p-card", share(0))).0,
        Conflict,
        "and only once"
    );
    assert_eq!(
        run.next(operator(3, approve("k2"))).0,
        Conflict,
        "executed already"
    );
}

/// No one account fills its organisation's proposals: at most four open per proposer,
/// and the organisation's allowance is per kind, so patients' requests never crowd out
/// an administrator change.
#[test]
fn open_proposals_are_bounded_per_proposer_and_per_kind() {
    let mut run = Run::new();
    for i in 0..4 {
        let (o, msg) = run.next(via(0, "p-card", erase(&format!("e{i}"), "p-card", HOUR_MS)));
        assert_eq!(o, OK, "{msg}");
    }
    let (o, msg) = run.next(via(0, "p-card", erase("e4", "p-card", HOUR_MS)));
    assert_eq!(o, Conflict, "{msg}");
    assert!(msg.contains("4 open proposals"), "{msg}");
    assert_eq!(
        run.next(via(0, "p-card2", erase("f0", "p-card2", HOUR_MS)))
            .0,
        OK
    );
    assert_eq!(run.next(operator(0, register_admin("a0", "dep-rad"))).0, OK);
}
