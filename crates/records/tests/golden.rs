//! Golden vectors pinning the records payload byte for byte.
//!
//! Every block on every replica holds these bytes, and a replica replaying the chain
//! must decode them exactly as they were meant when signed. If a vector here changes
//! (a variant or field reordered, a type widened, a hash tag or the content JSON
//! changed), the ledger format changed: that needs a version bump and a migration of
//! stored chains, and the old vectors kept beside the new. Do not just paste the new
//! values in.
//!
//! The fixtures are spelled out here rather than shared with other tests, so that
//! editing a test helper can never look like a format change.

use medchain_records::limits::{
    BATCH_MAX_BYTES, BATCH_MAX_TXS, BREAK_GLASS_MAX_MS, CONSENT_CODE_TTL_MS, REASON_MAX_CHARS,
    TX_MAX_BYTES,
};
use medchain_records::tx::{consent_code_hash, normalise_code, prescription_code_hash};
use medchain_records::{Actor, Batch, Envelope, Grantee, Medication, RecordContent, Transaction};
use medchain_types::{encode, Hash32, UserRole};

fn hex_of<T: borsh::BorshSerialize>(value: &T) -> String {
    hex::encode(encode(value))
}

fn transactions() -> Vec<(&'static str, Transaction)> {
    vec![
        (
            "tx/register-user",
            Transaction::RegisterUser {
                user_id: "d-new".into(),
                role: UserRole::Doctor,
                department: "cardiology".into(),
                display_name: "Dr New".into(),
            },
        ),
        (
            "tx/deactivate-user",
            Transaction::DeactivateUser {
                user_id: "p1".into(),
            },
        ),
        (
            "tx/grant-consent",
            Transaction::GrantConsent {
                grantee: Grantee::Doctor("d1".into()),
                expires_at_ms: Some(1_800_000_000_000),
            },
        ),
        (
            "tx/revoke-consent",
            Transaction::RevokeConsent {
                grantee: Grantee::Pharmacy("ph1".into()),
            },
        ),
        (
            "tx/create-consent-code",
            Transaction::CreateConsentCode {
                code_hash: consent_code_hash("p1", "ABCD-1234"),
            },
        ),
        (
            "tx/add-record",
            Transaction::AddRecord {
                record_id: "r2".into(),
                patient: "p1".into(),
                content_hash: Hash32::sha256(b"diagnosis: asthma"),
                consent_code: Some("ABCD-1234".into()),
                amends: Some("r1".into()),
                prescription_code_hash: Some(prescription_code_hash("RX-1111")),
            },
        ),
        (
            "tx/dispense",
            Transaction::Dispense {
                record_id: "r2".into(),
                code: Some("RX-1111".into()),
            },
        ),
        (
            "tx/audit-read",
            Transaction::AuditRead {
                patient: "p1".into(),
                action: "view_records".into(),
                reason: "follow-up".into(),
            },
        ),
        (
            "tx/break-glass",
            Transaction::BreakGlass {
                patient: "p1".into(),
                reason: "unconscious".into(),
                duration_ms: 1_800_000,
            },
        ),
        ("tx/marker", Transaction::Marker),
        (
            "tx/approve-break-glass",
            Transaction::ApproveBreakGlass {
                doctor: "d1".into(),
                patient: "p1".into(),
            },
        ),
        (
            "tx/review-break-glass",
            Transaction::ReviewBreakGlass {
                id: 7,
                note: "ok".into(),
            },
        ),
        (
            "tx/propose",
            Transaction::Propose {
                proposal_id: "p1".into(),
                action: medchain_records::ProposedAction::RegisterAdministrator {
                    user_id: "a1".into(),
                    department: "x".into(),
                    display_name: "X".into(),
                },
                ttl_ms: 3_600_000,
            },
        ),
        (
            "tx/approve-proposal",
            Transaction::ApproveProposal {
                proposal_id: "p1".into(),
            },
        ),
        (
            "tx/review-alert",
            Transaction::ReviewAlert {
                alert_id: "5-0".into(),
                patient: "p1".into(),
                outcome: medchain_records::ReviewOutcome::Violation,
                note: "ok".into(),
            },
        ),
        (
            "tx/share-patient-key",
            Transaction::SharePatientKey {
                epoch: 2,
                organisation: 1,
                sealed_hash: Hash32([0xab; 32]),
            },
        ),
    ]
}

fn envelope() -> Envelope {
    Envelope {
        actor: Actor::User("d1".into()),
        tx: Transaction::Dispense {
            record_id: "r2".into(),
            code: None,
        },
    }
}

fn batch() -> Batch {
    Batch(vec![
        envelope(),
        Envelope {
            actor: Actor::Operator,
            tx: Transaction::Marker,
        },
    ])
}

fn content() -> RecordContent {
    RecordContent {
        department: "cardiology".into(),
        diagnosis: "hypertension".into(),
        prescription: "amlodipine".into(),
        notes: "review in 4 weeks".into(),
        medications: vec![Medication {
            name: "amlodipine".into(),
            dose: "5 mg".into(),
            route: "oral".into(),
            frequency: "daily".into(),
            duration: "28 days".into(),
            quantity: "28".into(),
        }],
    }
}

/// Every pinned value: (name, hex of the bytes or hash, or the JSON text).
fn vectors() -> Vec<(&'static str, String)> {
    let mut v: Vec<(&'static str, String)> = transactions()
        .iter()
        .map(|(name, tx)| (*name, hex_of(tx)))
        .collect();
    v.extend([
        ("actor/user", hex_of(&Actor::User("d1".into()))),
        ("actor/operator", hex_of(&Actor::Operator)),
        ("grantee/doctor", hex_of(&Grantee::Doctor("d1".into()))),
        (
            "grantee/department",
            hex_of(&Grantee::Department("cardiology".into())),
        ),
        ("grantee/pharmacy", hex_of(&Grantee::Pharmacy("ph1".into()))),
        (
            "grantee/department-of",
            hex_of(&Grantee::DepartmentOf {
                organisation: 1,
                department: "oncology".into(),
            }),
        ),
        ("envelope", hex_of(&envelope())),
        ("batch", hex::encode(batch().encode())),
        (
            "consent-code-hash",
            consent_code_hash("p1", "ABCD-1234").to_hex(),
        ),
        (
            "prescription-code-hash",
            prescription_code_hash("RX-1111").to_hex(),
        ),
        (
            "record-content",
            String::from_utf8(content().to_bytes()).expect("JSON is UTF-8"),
        ),
    ]);
    v
}

// Generated once from the code (MEDCHAIN_PRINT_GOLDEN=1 prints the current values, for
// adding a vector); the two code hashes were cross-checked with Python's hashlib as
// SHA-256 of tag || normalised text, the grant's expiry and the break-glass duration
// by hand as little-endian u64. A change here is a ledger format change that needs a
// version bump and a migration: see the module comment.
const EXPECTED: &[(&str, &str)] = &[
    ("tx/register-user", "0005000000642d6e6577000a00000063617264696f6c6f6779060000004472204e6577"),
    ("tx/deactivate-user", "01020000007031"),
    ("tx/grant-consent", "02000200000064310100505c18a3010000"),
    ("tx/revoke-consent", "030203000000706831"),
    ("tx/create-consent-code", "0477cecfcc8828a4d6b3d7253a958f334ac7f57e7e94fd2e39d8066cba179bb17d"),
    ("tx/add-record", "05020000007232020000007031dd7629fa10516e25361db4ab21d5b6e827704a0c0d804a53afe9b694d1ce9e710109000000414243442d313233340102000000723101b0e06c0ac81c7e61e866d17c4fc68472627cdb995743df797d1e9bf5775893f0"),
    ("tx/dispense", "06020000007232010700000052582d31313131"),
    ("tx/audit-read", "070200000070310c000000766965775f7265636f72647309000000666f6c6c6f772d7570"),
    ("tx/break-glass", "080200000070310b000000756e636f6e7363696f757340771b0000000000"),
    ("tx/marker", "09"),
    // Written by hand: variant 10 with two strings; variant 11 with a u64 and a string.
    ("tx/approve-break-glass", "0a020000006431020000007031"),
    ("tx/review-break-glass", "0b0700000000000000020000006f6b"),
    // Written by hand: variant 12 with a string, action variant 0 with three strings, and
    // 3,600,000 as a little-endian u64; variant 13 with a string.
    ("tx/propose", "0c020000007031000200000061310100000078010000005880ee360000000000"),
    ("tx/approve-proposal", "0d020000007031"),
    // Written by hand: variant 14 with two strings, outcome variant 1, and a string.
    ("tx/review-alert", "0e03000000352d3002000000703101020000006f6b"),
    // Written by hand: variant 15, epoch 2 as a little-endian u32, organisation 1 as a
    // little-endian u16, then the 32 hash bytes.
    ("tx/share-patient-key", "0f020000000100abababababababababababababababababababababababababababababababab"),
    ("actor/user", "00020000006431"),
    ("actor/operator", "01"),
    ("grantee/doctor", "00020000006431"),
    ("grantee/department", "010a00000063617264696f6c6f6779"),
    ("grantee/pharmacy", "0203000000706831"),
    // Written by hand: variant 3, organisation 1 as little-endian u16, then the name.
    ("grantee/department-of", "030100080000006f6e636f6c6f6779"),
    ("envelope", "000200000064310602000000723200"),
    ("batch", "020000000002000000643106020000007232000109"),
    ("consent-code-hash", "77cecfcc8828a4d6b3d7253a958f334ac7f57e7e94fd2e39d8066cba179bb17d"),
    ("prescription-code-hash", "b0e06c0ac81c7e61e866d17c4fc68472627cdb995743df797d1e9bf5775893f0"),
    ("record-content", "{\"department\":\"cardiology\",\"diagnosis\":\"hypertension\",\"prescription\":\"amlodipine\",\"notes\":\"review in 4 weeks\",\"medications\":[{\"name\":\"amlodipine\",\"dose\":\"5 mg\",\"route\":\"oral\",\"frequency\":\"daily\",\"duration\":\"28 days\",\"quantity\":\"28\"}]}"),
];

#[test]
fn golden_vectors_match() {
    let actual = vectors();
    if std::env::var_os("MEDCHAIN_PRINT_GOLDEN").is_some() {
        for (name, value) in &actual {
            println!("    ({name:?}, {value:?}),");
        }
    }
    let names: Vec<_> = actual.iter().map(|(n, _)| *n).collect();
    let expected_names: Vec<_> = EXPECTED.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, expected_names, "the set of golden vectors changed");
    let changed: Vec<_> = actual
        .iter()
        .zip(EXPECTED)
        .filter(|((_, a), (_, e))| a != e)
        .map(|((n, a), (_, e))| format!("{n}:\n  expected {e}\n  actual   {a}"))
        .collect();
    assert!(
        changed.is_empty(),
        "the records payload format changed (needs a version bump and a migration):\n{}",
        changed.join("\n")
    );
}

#[test]
fn every_transaction_variant_is_pinned() {
    // A new variant fails to compile here until it has a vector above.
    let pinned = |tx: &Transaction| match tx {
        Transaction::RegisterUser { .. }
        | Transaction::DeactivateUser { .. }
        | Transaction::GrantConsent { .. }
        | Transaction::RevokeConsent { .. }
        | Transaction::CreateConsentCode { .. }
        | Transaction::AddRecord { .. }
        | Transaction::Dispense { .. }
        | Transaction::AuditRead { .. }
        | Transaction::BreakGlass { .. }
        | Transaction::Marker
        | Transaction::ApproveBreakGlass { .. }
        | Transaction::ReviewBreakGlass { .. }
        | Transaction::Propose { .. }
        | Transaction::ApproveProposal { .. }
        | Transaction::ReviewAlert { .. }
        | Transaction::SharePatientKey { .. } => true,
    };
    let txs = transactions();
    assert!(txs.iter().all(|(_, tx)| pinned(tx)));
    assert_eq!(txs.len(), 16, "one vector per variant");
}

#[test]
fn a_batch_of_one_is_a_batch() {
    // The gateway's shortcut must give the very bytes the ledger decodes as a batch.
    assert_eq!(Batch::one(&envelope()), Batch(vec![envelope()]).encode());
    assert_eq!(Batch::count_in(&batch().encode()), 2);
}

#[test]
fn codes_normalise_as_typed_aloud() {
    assert_eq!(normalise_code(" abcd-1234 "), "ABCD1234");
    assert_eq!(
        consent_code_hash("p1", "abcd 1234"),
        consent_code_hash("p1", "ABCD-1234")
    );
    assert_ne!(
        consent_code_hash("p2", "ABCD-1234"),
        consent_code_hash("p1", "ABCD-1234"),
        "a consent code is bound to its patient"
    );
}

#[test]
fn limits_are_pinned() {
    // The limits are rules every replica applies alike: changing one changes which
    // transactions are valid, which is a ledger rule change like a format change.
    assert_eq!(TX_MAX_BYTES, 16 * 1024);
    assert_eq!(BATCH_MAX_TXS, 256);
    assert_eq!(BATCH_MAX_BYTES, 1024 * 1024);
    assert_eq!(REASON_MAX_CHARS, 500);
    assert_eq!(CONSENT_CODE_TTL_MS, 5 * 60 * 1000);
    assert_eq!(BREAK_GLASS_MAX_MS, 60 * 60 * 1000);
}
