//! What the home organisation's node reads as its key duty (`query::key_work`), as the
//! ledger's state changes: a first key for each of its patients, a copy for each newly
//! entitled organisation, a new epoch once an organisation that held the current one is
//! entitled no longer, and nothing for another organisation's patients.

mod common;

use common::{sample_sealed_key_hash, Chain, Signer, Submission, START_MS};
use medchain_records::query::{key_work, KeyWork};
use medchain_records::{Actor, Grantee, Outcome, Transaction};

fn by(org: u16, id: &str, tx: Transaction) -> Submission {
    Submission::one(Signer::Gateway(org), Actor::User(id.into()), tx)
}

fn share(epoch: u32, organisation: u16) -> Transaction {
    Transaction::SharePatientKey {
        epoch,
        organisation,
        sealed_hash: sample_sealed_key_hash(),
    }
}

fn work_of(chain: &Chain, org: u16, now_ms: u64) -> Vec<KeyWork> {
    key_work(chain.conn(), org, now_ms, 64).expect("query")
}

fn ok(chain: &mut Chain, now_ms: u64, sub: Submission) {
    let got = chain.apply(now_ms, &[sub]);
    assert_eq!(got[0][0].0, Outcome::Ok, "{:?}", got);
}

#[test]
fn the_home_organisation_makes_shares_and_rotates_its_patients_keys() {
    let mut chain = Chain::new();
    let t = START_MS;
    let first = |p: &str| KeyWork::FirstKey { patient: p.into() };
    // Organisation 0's patients need a first key; organisation 1's are not its work.
    assert_eq!(
        work_of(&chain, 0, t),
        vec![first("p-card"), first("p-card2")]
    );
    assert_eq!(work_of(&chain, 1, t), vec![first("p-onc")]);

    ok(&mut chain, t + 1, by(0, "p-card", share(0, 0)));
    assert_eq!(work_of(&chain, 0, t + 2), vec![first("p-card2")]);

    // Consent to organisation 1's doctor: organisation 1 gets epoch 0.
    ok(
        &mut chain,
        t + 3,
        by(
            0,
            "p-card",
            Transaction::GrantConsent {
                grantee: Grantee::Doctor("d-onc".into()),
                expires_at_ms: None,
            },
        ),
    );
    let share_to_1 = |epoch| KeyWork::Share {
        patient: "p-card".into(),
        epoch,
        organisation: 1,
    };
    assert!(work_of(&chain, 0, t + 4).contains(&share_to_1(0)));
    ok(&mut chain, t + 5, by(0, "p-card", share(0, 1)));
    assert!(!work_of(&chain, 0, t + 6).contains(&share_to_1(0)));

    // Revoked: a new epoch, and no copy of it for organisation 1.
    ok(
        &mut chain,
        t + 7,
        by(
            0,
            "p-card",
            Transaction::RevokeConsent {
                grantee: Grantee::Doctor("d-onc".into()),
            },
        ),
    );
    let rotate = KeyWork::NewEpoch {
        patient: "p-card".into(),
        epoch: 1,
    };
    assert!(work_of(&chain, 0, t + 8).contains(&rotate));
    ok(&mut chain, t + 9, by(0, "p-card", share(1, 0)));
    let after = work_of(&chain, 0, t + 10);
    assert!(!after.contains(&rotate), "{after:?}");
    assert!(!after.contains(&share_to_1(1)), "{after:?}");

    // Consent again: organisation 1 gets the epoch it lacks.
    ok(
        &mut chain,
        t + 11,
        by(
            0,
            "p-card",
            Transaction::GrantConsent {
                grantee: Grantee::Doctor("d-onc".into()),
                expires_at_ms: Some(t + 1_000),
            },
        ),
    );
    assert!(work_of(&chain, 0, t + 12).contains(&share_to_1(1)));
    ok(&mut chain, t + 13, by(0, "p-card", share(1, 1)));
    // The consent expires: organisation 1 holds the current epoch and is no longer
    // entitled, so the next epoch starts.
    assert!(work_of(&chain, 0, t + 2_000).contains(&KeyWork::NewEpoch {
        patient: "p-card".into(),
        epoch: 2,
    }));
}
