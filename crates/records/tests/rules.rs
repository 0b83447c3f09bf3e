//! The records rules, tested at the ledger itself rather than through the API.
//!
//! The gateway checks the same rules before it submits, so API tests never see what the
//! ledger does with a transaction a faulty (or hostile) gateway sends anyway. This is
//! a table of transaction x actor x state -> outcome, run against the deterministic
//! executor with real signed requests, including rows a faulty gateway would send
//! (`faulty_gateway`) and rows another organisation would send with its own node, keys
//! and operator (`faulty organisation:`), each refused by the ledger itself.

mod common;

use common::{
    home_of, sample_content_hash, sample_reason_ref, sample_sealed_key_hash, Chain, Payload,
    Signer, Submission, START_MS,
};
use medchain_records::limits::{
    BATCH_MAX_BYTES, BATCH_MAX_TXS, BREAK_GLASS_MAX_MS, CONSENT_CODE_TTL_MS, REASON_MAX_CHARS,
    TX_MAX_BYTES,
};
use medchain_records::tx::{consent_code_hash, prescription_code_hash};
use medchain_records::Outcome::{self, Conflict, Forbidden, Invalid, NotFound};
use medchain_records::{Actor, Batch, Envelope, Grantee, Transaction};
use medchain_types::{Hash32, UserRole};

const OK: Outcome = Outcome::Ok;
/// The row's block comes this long after the first set-up block, so that set-up
/// timestamps (one millisecond apart) never reach it.
const SETUP_SPAN_MS: u64 = 1_000;

/// One rule: after `setup` (each accepted, each in its own block), `sub` in the next
/// block `after_ms` later gives `expect` for its first transaction.
#[derive(Clone, Debug)]
struct Row {
    name: &'static str,
    /// A transaction the API's pre-check refuses, so only a faulty gateway sends it.
    faulty_gateway: bool,
    setup: Vec<Submission>,
    after_ms: u64,
    sub: Submission,
    expect: Outcome,
    /// Part of the ledger's message, where the outcome alone does not say which rule
    /// refused.
    saying: Option<&'static str>,
}

fn row(name: &'static str, sub: Submission, expect: Outcome) -> Row {
    Row {
        name,
        faulty_gateway: false,
        setup: Vec::new(),
        after_ms: 0,
        sub,
        expect,
        saying: None,
    }
}

impl Row {
    fn after(mut self, setup: Vec<Submission>) -> Self {
        self.setup = setup;
        self
    }
    fn later_ms(mut self, ms: u64) -> Self {
        self.after_ms = ms;
        self
    }
    fn faulty(mut self) -> Self {
        self.faulty_gateway = true;
        self
    }
    fn saying(mut self, part: &'static str) -> Self {
        self.saying = Some(part);
        self
    }
}

// ---- who sends it ----------------------------------------------------------------

fn user(id: &str) -> Actor {
    Actor::User(id.into())
}

/// A genesis user's transaction through their own organisation's gateway.
fn by(id: &str, tx: Transaction) -> Submission {
    via(home_of(id), id, tx)
}

/// A user's transaction through the gateway of organisation `org`.
fn via(org: u16, id: &str, tx: Transaction) -> Submission {
    Submission::one(Signer::Gateway(org), user(id), tx)
}

/// The operator of organisation `org` (the CLI, with the operator key).
fn operator(org: u16, tx: Transaction) -> Submission {
    Submission::one(Signer::Operator(org), Actor::Operator, tx)
}

fn raw(bytes: Vec<u8>) -> Submission {
    Submission {
        signer: Signer::Gateway(0),
        payload: Payload::Raw(bytes),
    }
}

fn batch_of(envs: Vec<Envelope>) -> Submission {
    Submission {
        signer: Signer::Gateway(0),
        payload: Payload::Batch(envs),
    }
}

// ---- transactions ----------------------------------------------------------------

fn register(id: &str, role: UserRole, department: &str) -> Transaction {
    Transaction::RegisterUser {
        user_id: id.into(),
        role,
        department: department.into(),
        display_name: format!("New {id}"),
    }
}

fn review_alert(alert: &str, patient: &str, note: &str) -> Transaction {
    Transaction::ReviewAlert {
        alert_id: alert.into(),
        patient: patient.into(),
        outcome: medchain_records::ReviewOutcome::Justified,
        note: note.into(),
    }
}

fn propose_admin(proposal: &str, id: &str) -> Transaction {
    Transaction::Propose {
        proposal_id: proposal.into(),
        action: medchain_records::ProposedAction::RegisterAdministrator {
            user_id: id.into(),
            department: "radiology".into(),
            display_name: "Radiology office".into(),
        },
        ttl_ms: 60 * 60 * 1000,
    }
}

fn deactivate(id: &str) -> Transaction {
    Transaction::DeactivateUser { user_id: id.into() }
}

fn doctor(id: &str) -> Grantee {
    Grantee::Doctor(id.into())
}
fn department(id: &str) -> Grantee {
    Grantee::Department(id.into())
}
fn pharmacy(id: &str) -> Grantee {
    Grantee::Pharmacy(id.into())
}

fn grant(grantee: Grantee) -> Transaction {
    Transaction::GrantConsent {
        grantee,
        expires_at_ms: None,
    }
}

fn grant_until(grantee: Grantee, at_ms: u64) -> Transaction {
    Transaction::GrantConsent {
        grantee,
        expires_at_ms: Some(at_ms),
    }
}

fn revoke(grantee: Grantee) -> Transaction {
    Transaction::RevokeConsent { grantee }
}

fn new_code(patient: &str, code: &str) -> Transaction {
    Transaction::CreateConsentCode {
        code_hash: consent_code_hash(patient, code),
    }
}

/// Options of an `AddRecord`; the content is always the request's sample content.
#[derive(Default)]
struct Rec<'a> {
    code: Option<&'a str>,
    amends: Option<&'a str>,
    rx_code: Option<&'a str>,
}

fn record_with(id: &str, patient: &str, o: Rec<'_>) -> Transaction {
    Transaction::AddRecord {
        record_id: id.into(),
        patient: patient.into(),
        content_hash: sample_content_hash(),
        consent_code: o.code.map(Into::into),
        amends: o.amends.map(Into::into),
        prescription_code_hash: o.rx_code.map(prescription_code_hash),
    }
}

fn record(id: &str, patient: &str) -> Transaction {
    record_with(id, patient, Rec::default())
}

fn dispense(id: &str, code: Option<&str>) -> Transaction {
    Transaction::Dispense {
        record_id: id.into(),
        code: code.map(Into::into),
    }
}

fn audit(patient: &str, reason: &str) -> Transaction {
    Transaction::AuditRead {
        patient: patient.into(),
        action: "view_records".into(),
        reason: reason.into(),
    }
}

fn break_glass(patient: &str, reason: &str, duration_ms: u64) -> Transaction {
    Transaction::BreakGlass {
        patient: patient.into(),
        reason: reason.into(),
        duration_ms,
    }
}

// ---- common set-ups ---------------------------------------------------------------

/// `d-card` (standing consent of `p-card`) writes a prescription for `p-card`.
fn prescription(id: &str, code: &str) -> Submission {
    by(
        "d-card",
        record_with(
            id,
            "p-card",
            Rec {
                rx_code: Some(code),
                ..Rec::default()
            },
        ),
    )
}

/// The user's organisation's operator deactivates them.
fn deactivated(id: &str) -> Submission {
    operator(home_of(id), deactivate(id))
}

// ---- the table --------------------------------------------------------------------

#[rustfmt::skip]
fn register_rows() -> Vec<Row> {
    use UserRole::*;
    vec![
        row("register: department registers a doctor of its own department",
            by("dep-card", register("d-new", Doctor, "cardiology")), OK),
        row("register: department registers a patient of its own department",
            by("dep-card", register("p-new", Patient, "cardiology")), OK),
        row("register: department registers a doctor of another department",
            by("dep-card", register("d-new", Doctor, "oncology")), Forbidden),
        row("register: department registers a patient of another department",
            by("dep-onc", register("p-new", Patient, "cardiology")), Forbidden),
        row("register: department registers a pharmacy",
            by("dep-card", register("ph-new", Pharmacy, "pharmacy")), OK),
        row("register: department registers a department administrator",
            by("dep-card", register("dep-new", Department, "cardiology")), Forbidden),
        row("register: duplicate user id",
            by("dep-card", register("d-card", Doctor, "cardiology")), Conflict),
        row("register: user id with a space and '!'",
            by("dep-card", register("bad id!", Doctor, "cardiology")), Invalid),
        row("register: empty user id",
            by("dep-card", register("", Doctor, "cardiology")), Invalid),
        row("register: user id of 65 characters",
            by("dep-card", register(&"x".repeat(65), Doctor, "cardiology")), Invalid),
        row("register: display name over 100 characters",
            by("dep-card", Transaction::RegisterUser {
                user_id: "d-new".into(),
                role: Doctor,
                department: "cardiology".into(),
                display_name: "n".repeat(101),
            }), Invalid),
        row("register: display name with a zero-width space (looks like a real doctor)",
            by("dep-card", Transaction::RegisterUser {
                user_id: "d-new".into(),
                role: Doctor,
                department: "cardiology".into(),
                display_name: "Dr. Amara Okafor\u{200b}".into(),
            }), Invalid).faulty().saying("invisible"),
        row("register: display name with a right-to-left override",
            by("dep-card", Transaction::RegisterUser {
                user_id: "d-new".into(),
                role: Doctor,
                department: "cardiology".into(),
                display_name: "Amara \u{202e}rotcoD".into(),
            }), Invalid).faulty().saying("invisible"),
        row("register: department name with a bidi isolate (operator)",
            operator(0, register("d-new", Doctor, "cardio\u{2066}logy")), Invalid)
            .faulty().saying("department"),
        row("register: a name in another script is accepted",
            by("dep-card", Transaction::RegisterUser {
                user_id: "d-new".into(),
                role: Doctor,
                department: "cardiology".into(),
                display_name: "Zoë Ångström-Núñez".into(),
            }), OK),
        row("register: department name over 64 characters (operator)",
            operator(0, register("d-new", Doctor, &"c".repeat(65))), Invalid),
        row("register: operator registers the first department administrator of its organisation",
            operator(2, register("dep-new", Department, "radiology")), OK),
        row("register: operator alone registers a second department administrator (a proposal's job)",
            operator(0, register("dep-new", Department, "radiology")), Forbidden)
            .saying("proposal"),
        row("register: operator of another organisation, any department",
            operator(1, register("d-new", Doctor, "cardiology")), OK),
        row("register: operator registers an existing id",
            operator(1, register("p-card", Patient, "cardiology")), Conflict),
        row("register: doctor registers a patient",
            by("d-card", register("p-new", Patient, "cardiology")), Forbidden),
        row("register: patient registers a patient",
            by("p-card", register("p-new", Patient, "cardiology")), Forbidden),
        row("register: pharmacy registers a pharmacy",
            by("ph-0", register("ph-new", Pharmacy, "pharmacy")), Forbidden),
        row("register: a user registered in an earlier block acts",
            via(0, "p-new", grant(doctor("d-card"))), OK)
            .after(vec![by("dep-card", register("p-new", Patient, "cardiology"))]),
    ]
}

#[rustfmt::skip]
fn deactivate_rows() -> Vec<Row> {
    vec![
        row("deactivate: department deactivates its doctor",
            by("dep-card", deactivate("d-card2")), OK),
        row("deactivate: department deactivates its patient",
            by("dep-card", deactivate("p-card")), OK),
        row("deactivate: department deactivates another department's doctor",
            by("dep-card", deactivate("d-onc")), Forbidden),
        // The department registers pharmacies but may not deactivate them: only its
        // own doctors and patients (a pharmacy's department is not the admin's).
        row("deactivate: department deactivates a pharmacy",
            by("dep-card", deactivate("ph-0")), Forbidden),
        row("deactivate: department deactivates another department administrator",
            by("dep-card", deactivate("dep-onc")), Forbidden),
        row("deactivate: doctor deactivates a patient",
            by("d-card", deactivate("p-card")), Forbidden),
        row("deactivate: patient deactivates themselves",
            by("p-card", deactivate("p-card")), Forbidden),
        row("deactivate: operator of the user's organisation",
            operator(0, deactivate("d-card")), OK),
        row("deactivate: operator deactivates a pharmacy of its organisation",
            operator(0, deactivate("ph-0")), OK),
        row("deactivate: operator of another organisation",
            operator(0, deactivate("d-onc")), Forbidden),
        row("deactivate: operator of an organisation without users",
            operator(3, deactivate("p-card")), Forbidden),
        row("deactivate: unknown user",
            operator(0, deactivate("nobody")), NotFound),
        row("deactivate: unknown user, by a department",
            by("dep-card", deactivate("nobody")), NotFound),
        row("deactivate: an already deactivated user again",
            operator(0, deactivate("p-card2")), OK)
            .after(vec![deactivated("p-card2")]),
    ]
}

#[rustfmt::skip]
fn actor_rows() -> Vec<Row> {
    vec![
        row("actor: marker by a user", by("p-card", Transaction::Marker), OK),
        row("actor: marker by the operator", operator(2, Transaction::Marker), OK),
        row("actor: unknown user", via(0, "nobody", Transaction::Marker), NotFound),
        row("actor: deactivated doctor adds a record with consent",
            by("d-card", record("r-1", "p-card")), Forbidden)
            .after(vec![deactivated("d-card")]),
        row("actor: deactivated patient grants consent",
            by("p-card2", grant(doctor("d-card"))), Forbidden)
            .after(vec![deactivated("p-card2")]),
        row("actor: deactivated department registers a patient",
            by("dep-card", register("p-new", UserRole::Patient, "cardiology")), Forbidden)
            .after(vec![deactivated("dep-card")]),
        row("actor: deactivated user's marker", by("ph-0", Transaction::Marker), Forbidden)
            .after(vec![deactivated("ph-0")]),
    ]
}

#[rustfmt::skip]
fn consent_rows() -> Vec<Row> {
    vec![
        row("grant: patient to a doctor", by("p-card2", grant(doctor("d-card"))), OK),
        row("grant: patient to a doctor of another organisation",
            by("p-card2", grant(doctor("d-onc"))), OK),
        row("grant: patient to a department of their own organisation",
            by("p-card2", grant(department("cardiology"))), OK),
        // Departments are named per organisation: "oncology" is org 1's, not org 0's.
        row("grant: patient to another organisation's department name, as their own",
            by("p-card2", grant(department("oncology"))), NotFound).saying("organisation 0"),
        row("grant: patient to a department of another organisation, named with it",
            by("p-card2", grant(Grantee::DepartmentOf { organisation: 1, department: "oncology".into() })), OK),
        row("record: a doctor of org 1 with the consent of org 0's patient to org 1's department",
            via(1, "d-onc", record("r-1", "p-card2")), OK)
            .after(vec![by("p-card2", grant(Grantee::DepartmentOf { organisation: 1, department: "oncology".into() }))]),
        row("grant: patient to a pharmacy", by("p-card", grant(pharmacy("ph-1"))), OK),
        row("grant: patient, with an expiry",
            by("p-card", grant_until(doctor("d-card2"), START_MS + 86_400_000)), OK),
        row("grant: unknown doctor", by("p-card", grant(doctor("nobody"))), NotFound),
        row("grant: unknown department", by("p-card", grant(department("dermatology"))), NotFound),
        row("grant: unknown pharmacy", by("p-card", grant(pharmacy("nobody"))), NotFound),
        row("grant: a doctor named as a pharmacy", by("p-card", grant(pharmacy("d-card"))), Invalid),
        row("grant: a patient named as a doctor", by("p-card", grant(doctor("p-card2"))), Invalid),
        row("grant: a deactivated doctor", by("p-card", grant(doctor("d-card2"))), Invalid)
            .after(vec![deactivated("d-card2")]),
        row("grant: doctor grants", by("d-card", grant(doctor("d-card"))), Forbidden),
        row("grant: pharmacy grants", by("ph-0", grant(pharmacy("ph-0"))), Forbidden),
        row("grant: operator grants", operator(0, grant(doctor("d-card"))), Forbidden),
        row("grant: again after revoking", by("p-card", grant(doctor("d-card"))), OK)
            .after(vec![by("p-card", revoke(doctor("d-card")))]),
        row("revoke: patient revokes a standing consent", by("p-card", revoke(doctor("d-card"))), OK),
        row("revoke: twice", by("p-card", revoke(doctor("d-card"))), NotFound)
            .after(vec![by("p-card", revoke(doctor("d-card")))]),
        row("revoke: never granted", by("p-card", revoke(pharmacy("ph-0"))), NotFound),
        row("revoke: an expired consent", by("p-card", revoke(pharmacy("ph-0"))), OK)
            .after(vec![by("p-card", grant_until(pharmacy("ph-0"), START_MS + 10))]),
        row("revoke: another patient's consent is not the actor's",
            by("p-card2", revoke(doctor("d-card"))), NotFound),
        row("revoke: doctor revokes", by("d-card", revoke(doctor("d-card"))), Forbidden),
        row("code: patient creates a one-time code", by("p-card", new_code("p-card", "K7Q2-9XTR")), OK),
        row("code: the same code twice", by("p-card", new_code("p-card", "K7Q2-9XTR")), Conflict)
            .after(vec![by("p-card", new_code("p-card", "K7Q2-9XTR"))]),
        row("code: doctor creates a code", by("d-card", new_code("p-card", "K7Q2-9XTR")), Forbidden),
        row("code: operator creates a code", operator(0, new_code("p-card", "K7Q2-9XTR")), Forbidden),
    ]
}

#[rustfmt::skip]
fn record_rows() -> Vec<Row> {
    let code = |c| Rec { code: Some(c), ..Rec::default() };
    let amends = |a| Rec { amends: Some(a), ..Rec::default() };
    // Set-up step 0, so the code expires exactly CONSENT_CODE_TTL_MS after START_MS.
    let p2_code = || by("p-card2", new_code("p-card2", "ABCD-1234"));
    let to_expiry = CONSENT_CODE_TTL_MS - SETUP_SPAN_MS;
    vec![
        row("record: doctor with standing consent", by("d-card", record("r-1", "p-card")), OK),
        row("record: doctor with consent granted on the ledger",
            by("d-onc", record("r-1", "p-card2")), OK)
            .after(vec![by("p-card2", grant(doctor("d-onc")))]),
        row("record: doctor with department consent",
            by("d-card2", record("r-1", "p-card2")), OK)
            .after(vec![by("p-card2", grant(department("cardiology")))]),
        row("record: department consent does not cover another department",
            by("d-onc", record("r-1", "p-card2")), Forbidden)
            .after(vec![by("p-card2", grant(department("cardiology")))]),
        row("record: after consent is revoked", by("d-card", record("r-1", "p-card")), Forbidden)
            .after(vec![by("p-card", revoke(doctor("d-card")))]),
        row("record: after consent expired", by("d-card2", record("r-1", "p-card2")), Forbidden)
            .after(vec![by("p-card2", grant_until(doctor("d-card2"), START_MS + 500))]),
        row("record: before consent expires", by("d-card2", record("r-1", "p-card2")), OK)
            .after(vec![by("p-card2", grant_until(doctor("d-card2"), START_MS + 60_000))]),
        row("record: one-time code, typed in another case and without the dash",
            by("d-card2", record_with("r-1", "p-card2", code("abcd1234"))), OK)
            .after(vec![p2_code()]),
        row("record: one-time code reused",
            by("d-card2", record_with("r-2", "p-card2", code("ABCD-1234"))), Forbidden)
            .after(vec![p2_code(), by("d-card2", record_with("r-1", "p-card2", code("ABCD-1234")))]),
        row("record: one-time code 1 ms before it expires",
            by("d-card2", record_with("r-1", "p-card2", code("ABCD-1234"))), OK)
            .after(vec![p2_code()]).later_ms(to_expiry - 1),
        row("record: one-time code at its expiry",
            by("d-card2", record_with("r-1", "p-card2", code("ABCD-1234"))), Forbidden)
            .after(vec![p2_code()]).later_ms(to_expiry),
        row("record: one-time code of another patient",
            by("d-card2", record_with("r-1", "p-card", code("ABCD-1234"))), Forbidden)
            .after(vec![p2_code()]),
        row("record: wrong one-time code",
            by("d-card2", record_with("r-1", "p-card2", code("ZZZZ-0000"))), Forbidden)
            .after(vec![p2_code()]),
        // The code is only needed without consent; with consent a bad one is ignored.
        row("record: wrong code but standing consent",
            by("d-card", record_with("r-1", "p-card", code("ZZZZ-0000"))), OK),
        row("record: amends the same patient's record",
            by("d-card", record_with("r-2", "p-card", amends("r-1"))), OK)
            .after(vec![by("d-card", record("r-1", "p-card"))]),
        row("record: amends another patient's record",
            by("d-onc", record_with("r-2", "p-onc", amends("r-1"))), NotFound)
            .after(vec![by("d-card", record("r-1", "p-card"))]),
        row("record: amends an unknown record",
            by("d-card", record_with("r-2", "p-card", amends("r-0"))), NotFound),
        row("record: duplicate record id", by("d-card", record("r-1", "p-card")), Conflict)
            .after(vec![by("d-card", record("r-1", "p-card"))]),
        row("record: empty record id", by("d-card", record("", "p-card")), Invalid),
        row("record: record id of 65 characters", by("d-card", record(&"r".repeat(65), "p-card")), Invalid),
        row("record: target is a doctor", by("d-card", record("r-1", "d-card2")), Invalid),
        row("record: unknown patient", by("d-card", record("r-1", "nobody")), NotFound),
        row("record: deactivated patient", by("d-card", record("r-1", "p-card")), Forbidden)
            .after(vec![deactivated("p-card")]),
        // Break-glass opens a patient's records for reading; writing still needs consent.
        row("record: break-glass does not allow writing",
            by("d-card2", record("r-1", "p-card")), Forbidden)
            .after(vec![by("d-card2", break_glass("p-card", "unconscious", 60_000))]),
        row("record: patient adds a record", by("p-card", record("r-1", "p-card")), Forbidden),
        row("record: pharmacy adds a record", by("ph-0", record("r-1", "p-card")), Forbidden),
        row("record: operator adds a record", operator(0, record("r-1", "p-card")), Forbidden),
    ]
}

#[rustfmt::skip]
fn dispense_rows() -> Vec<Row> {
    vec![
        row("dispense: by the patient's consent", by("ph-0", dispense("rx-1", None)), OK)
            .after(vec![prescription("rx-1", "RX-1111"), by("p-card", grant(pharmacy("ph-0")))]),
        row("dispense: by prescription code, at another organisation's pharmacy",
            by("ph-1", dispense("rx-1", Some("rx 1111"))), OK)
            .after(vec![prescription("rx-1", "RX-1111")]),
        // A wrong code is refused as a missing prescription: no existence oracle.
        row("dispense: wrong code", by("ph-0", dispense("rx-1", Some("RX-2222"))), NotFound)
            .after(vec![prescription("rx-1", "RX-1111")]),
        row("dispense: another prescription's code",
            by("ph-0", dispense("rx-1", Some("RX-2222"))), NotFound)
            .after(vec![prescription("rx-1", "RX-1111"), prescription("rx-2", "RX-2222")]),
        row("dispense: after the pharmacy's consent is revoked",
            by("ph-0", dispense("rx-1", None)), Forbidden)
            .after(vec![
                prescription("rx-1", "RX-1111"),
                by("p-card", grant(pharmacy("ph-0"))),
                by("p-card", revoke(pharmacy("ph-0"))),
            ]),
        row("dispense: twice", by("ph-1", dispense("rx-1", Some("RX-1111"))), Conflict)
            .after(vec![prescription("rx-1", "RX-1111"), by("ph-0", dispense("rx-1", Some("RX-1111")))]),
        row("dispense: by a doctor", by("d-card", dispense("rx-1", Some("RX-1111"))), Forbidden)
            .after(vec![prescription("rx-1", "RX-1111")]),
        row("dispense: by the patient", by("p-card", dispense("rx-1", Some("RX-1111"))), Forbidden)
            .after(vec![prescription("rx-1", "RX-1111")]),
        row("dispense: a record without prescription", by("ph-0", dispense("r-1", Some("X"))), NotFound)
            .after(vec![by("d-card", record("r-1", "p-card"))]),
        row("dispense: unknown record", by("ph-0", dispense("rx-0", Some("RX-1111"))), NotFound),
    ]
}

#[rustfmt::skip]
fn audit_and_break_glass_rows() -> Vec<Row> {
    let long_reason = "r".repeat(REASON_MAX_CHARS + 1);
    let hour = BREAK_GLASS_MAX_MS;
    vec![
        row("audit: doctor's read", by("d-card", audit("p-card", "follow-up")), OK),
        row("audit: patient's own read", by("p-card", audit("p-card", "")), OK),
        row("audit: pharmacy's read", by("ph-0", audit("p-card", "dispensing")), OK),
        // The trail records reads as the gateway reports them, attempts included; the
        // ledger does not check that the patient exists.
        row("audit: read of an unknown patient", by("d-card", audit("nobody", "lookup")), OK),
        row("audit: by the operator", operator(0, audit("p-card", "curious")), Forbidden),
        row("audit: reason over the limit", by("d-card", audit("p-card", &long_reason)), Invalid),
        row("audit: action over 64 characters", by("d-card", Transaction::AuditRead {
            patient: "p-card".into(),
            action: "a".repeat(65),
            reason: "follow-up".into(),
        }), Invalid),
        row("break-glass: doctor, half an hour",
            by("d-card2", break_glass("p-card", "unconscious in A&E", hour / 2)), OK),
        row("break-glass: doctor of another organisation, the full hour",
            by("d-onc", break_glass("p-card", "unconscious in A&E", hour)), OK),
        row("break-glass: by a patient", by("p-card2", break_glass("p-card", "worried about her", 60_000)), Forbidden),
        row("break-glass: by a pharmacy", by("ph-0", break_glass("p-card", "urgent: unconscious", 60_000)), Forbidden),
        row("break-glass: by the operator", operator(0, break_glass("p-card", "urgent: unconscious", 60_000)), Forbidden),
        row("break-glass: blank reason", by("d-card2", break_glass("p-card", "  ", 60_000)), Invalid),
        row("break-glass: reason over the limit",
            by("d-card2", break_glass("p-card", &long_reason, 60_000)), Invalid),
        row("break-glass: duration 0", by("d-card2", break_glass("p-card", "urgent: unconscious", 0)), Invalid),
        row("break-glass: over an hour", by("d-card2", break_glass("p-card", "urgent: unconscious", hour + 1)), Invalid),
        // Unlike AddRecord (Invalid), a non-patient target is Forbidden here: the
        // break-glass check applies the role rule to the target.
        row("break-glass: target is a doctor", by("d-card2", break_glass("d-card", "urgent: unconscious", 60_000)), Forbidden),
        row("break-glass: unknown patient", by("d-card2", break_glass("nobody", "urgent: unconscious", 60_000)), NotFound),
        row("break-glass: deactivated patient", by("d-card2", break_glass("p-card", "urgent: unconscious", 60_000)), Forbidden)
            .after(vec![deactivated("p-card")]),
    ]
}

/// Three break-glass openings by `d-card2` (on both cardiology patients): the default
/// daily limit reached.
fn three_openings() -> Vec<Submission> {
    ["p-card", "p-card2", "p-card"]
        .iter()
        .map(|p| by("d-card2", break_glass(p, "unconscious in A&E", 60_000)))
        .collect()
}

fn approve(doctor: &str, patient: &str) -> Transaction {
    Transaction::ApproveBreakGlass {
        doctor: doctor.into(),
        patient: patient.into(),
    }
}

fn review(id: u64, note: &str) -> Transaction {
    Transaction::ReviewBreakGlass {
        id,
        note: note.into(),
    }
}

/// The limits of break-glass: a reason that says something, a daily limit per doctor
/// with a second approver beyond it, and the review by the patient's department.
#[rustfmt::skip]
fn break_glass_limit_rows() -> Vec<Row> {
    let opened = vec![by("d-card2", break_glass("p-card", "unconscious in A&E", 60_000))];
    let mut limit_and_approval = three_openings();
    limit_and_approval.push(by("d-card", approve("d-card2", "p-card")));
    let mut limit_and_department = three_openings();
    limit_and_department.push(by("dep-card", approve("d-card2", "p-card")));
    let mut reviewed = opened.clone();
    reviewed.push(by("dep-card", review(1, "checked with A&E")));
    vec![
        row("break-glass: reason of 9 characters", by("d-card2", break_glass("p-card", "123456789", 60_000)), Invalid)
            .saying("at least 10"),
        row("break-glass: reason of exactly 10 characters", by("d-card2", break_glass("p-card", "1234567890", 60_000)), OK),
        row("break-glass: a fourth opening in 24 hours", by("d-card2", break_glass("p-card2", "unconscious in A&E", 60_000)), Forbidden)
            .after(three_openings()).saying("limit 3"),
        row("break-glass: a fourth, approved by another doctor", by("d-card2", break_glass("p-card", "unconscious in A&E", 60_000)), OK)
            .after(limit_and_approval.clone()),
        row("break-glass: an approval is for its patient only", by("d-card2", break_glass("p-card2", "unconscious in A&E", 60_000)), Forbidden)
            .after(limit_and_approval),
        row("break-glass: a fourth, approved by the patient's department", by("d-card2", break_glass("p-card", "unconscious in A&E", 60_000)), OK)
            .after(limit_and_department),
        row("break-glass approval: by the doctor themself", by("d-card2", approve("d-card2", "p-card")), Forbidden),
        row("break-glass approval: by another organisation's department", by("dep-onc", approve("d-card2", "p-card")), Forbidden),
        row("break-glass approval: by a patient", by("p-card2", approve("d-card2", "p-card")), Forbidden),
        row("break-glass approval: of a non-doctor", by("d-card", approve("ph-0", "p-card")), Forbidden),
        row("break-glass review: by the patient's department", by("dep-card", review(1, "checked with A&E")), OK)
            .after(opened.clone()),
        row("break-glass review: twice", by("dep-card", review(1, "again")), Conflict).after(reviewed),
        row("break-glass review: by another organisation's department", by("dep-onc", review(1, "not ours")), Forbidden)
            .after(opened.clone()),
        row("break-glass review: by the doctor", by("d-card2", review(1, "all fine")), Forbidden)
            .after(opened.clone()),
        row("break-glass review: empty note", by("dep-card", review(1, " ")), Invalid).after(opened.clone()),
        row("break-glass review: a sealed note the request carries",
            by("dep-card", review(1, &sample_reason_ref())), OK).after(opened.clone()),
        row("break-glass review: a sealed note the request does not carry",
            by("dep-card", review(1, &medchain_records::sealed::reason_ref(b"other"))), Invalid)
            .after(opened.clone()).saying("sealed text"),
        row("break-glass review: unknown event", by("dep-card", review(99, "which one")), NotFound),
        row("faulty organisation: gateway of org 3 reviews as org 0's department",
            via(3, "dep-card", review(1, "forged review")), Forbidden).after(opened),
    ]
}

/// A well-formed batch of `n` markers by `p-card`.
fn markers(n: usize) -> Vec<Envelope> {
    let env = Envelope {
        actor: user("p-card"),
        tx: Transaction::Marker,
    };
    vec![env; n]
}

/// Bytes a borsh decoder cannot read as a batch.
fn undecodable() -> Vec<u8> {
    b"not a batch".to_vec()
}

/// An audit entry whose action alone is `len` bytes.
fn audit_of_size(len: usize) -> Envelope {
    Envelope {
        actor: user("d-card"),
        tx: Transaction::AuditRead {
            patient: "p-card".into(),
            action: "a".repeat(len),
            reason: "x".into(),
        },
    }
}

/// An audit entry that encodes to exactly `bytes` bytes.
fn audit_of_exactly(bytes: usize) -> Envelope {
    let base = medchain_types::encode(&audit_of_size(0)).len();
    let env = audit_of_size(bytes - base);
    assert_eq!(medchain_types::encode(&env).len(), bytes);
    env
}

/// Bytes decoded as the ledger would: too large before they are even read.
fn oversized_batch() -> Vec<u8> {
    let each = TX_MAX_BYTES / 2;
    let n = BATCH_MAX_BYTES / each + 1;
    Batch((0..n).map(|_| audit_of_size(each)).collect()).encode()
}

fn trailing_bytes() -> Vec<u8> {
    let mut bytes = Batch(markers(1)).encode();
    bytes.push(0);
    bytes
}

/// What a gateway that skips (or lies past) its own pre-check could send.
#[rustfmt::skip]
fn faulty_rows() -> Vec<Row> {
    let foreign_hash = Hash32::sha256(b"content this request does not carry");
    vec![
        row("faulty gateway: doctor adds a record without consent",
            by("d-card2", record("r-1", "p-card")), Forbidden),
        row("faulty gateway: pharmacy dispenses without code or consent",
            by("ph-0", dispense("rx-1", None)), Forbidden)
            .after(vec![prescription("rx-1", "RX-1111")]),
        row("faulty gateway: a doctor as the actor grants consent to himself",
            by("d-card2", grant(doctor("d-card2"))), Forbidden),
        // The home gateway authenticates its users: the ledger cannot tell a forged
        // actor of the gateway's own organisation from a real one (another
        // organisation's gateway doing the same is refused: see
        // `faulty_organisation_rows`).
        row("faulty gateway: own organisation's gateway forges its patient's consent",
            via(0, "p-card2", grant(doctor("d-onc"))), OK),
        row("faulty gateway: content hash not in the request",
            by("d-card", Transaction::AddRecord {
                record_id: "r-1".into(),
                patient: "p-card".into(),
                content_hash: foreign_hash,
                consent_code: None,
                amends: None,
                prescription_code_hash: None,
            }), Invalid).saying("content"),
        row("faulty gateway: operator actor signed with a gateway key",
            Submission::one(Signer::Gateway(0), Actor::Operator, deactivate("d-card")), Forbidden),
        row("faulty gateway: operator actor on a marker, gateway key",
            Submission::one(Signer::Gateway(1), Actor::Operator, Transaction::Marker), Forbidden),
        row("faulty gateway: undecodable payload", raw(undecodable()), Invalid)
            .saying("does not decode"),
        row("faulty gateway: empty payload", raw(Vec::new()), Invalid).saying("does not decode"),
        row("faulty gateway: trailing bytes after the batch", raw(trailing_bytes()), Invalid)
            .saying("does not decode"),
        row("faulty gateway: payload over BATCH_MAX_BYTES", raw(oversized_batch()), Invalid)
            .saying("does not decode"),
        row("faulty gateway: empty batch", batch_of(Vec::new()), Invalid).saying("1 to 256"),
        row("faulty gateway: batch of BATCH_MAX_TXS + 1", batch_of(markers(BATCH_MAX_TXS + 1)), Invalid)
            .saying("1 to 256"),
        row("faulty gateway: transaction over TX_MAX_BYTES",
            batch_of(vec![audit_of_size(TX_MAX_BYTES)]), Invalid).saying("too large"),
        // The boundaries the two rows above are measured against: 256 is accepted, and
        // exactly TX_MAX_BYTES gets past the size check to the action's own limit.
        row("batch: exactly BATCH_MAX_TXS transactions", batch_of(markers(BATCH_MAX_TXS)), OK),
        row("batch: a transaction of exactly TX_MAX_BYTES passes the size check",
            batch_of(vec![audit_of_exactly(TX_MAX_BYTES)]), Invalid).saying("action is longer"),
    ]
    .into_iter()
    .map(|r| if r.name.starts_with("faulty") { r.faulty() } else { r })
    .collect()
}

fn share_key(epoch: u32, organisation: u16) -> Transaction {
    Transaction::SharePatientKey {
        epoch,
        organisation,
        sealed_hash: sample_sealed_key_hash(),
    }
}

/// Patient keys: only the patient's home organisation hands out the patient's data key,
/// each epoch starts with its own copy, and another organisation gets one only while
/// entitled to read.
fn key_rows() -> Vec<Row> {
    let first = || by("p-card", share_key(0, 0));
    vec![
        row("key: the home organisation makes epoch 0", first(), OK),
        row(
            "key: an epoch starts with the home organisation's copy",
            by("p-card", share_key(0, 1)),
            Invalid,
        )
        .saying("home organisation's own copy"),
        row("key: the same copy twice", first(), Conflict).after(vec![first()]),
        row(
            "key: not to an organisation without consent",
            by("p-card", share_key(0, 1)),
            Forbidden,
        )
        .after(vec![first()])
        .saying("not entitled"),
        row(
            "key: to the organisation of a doctor with consent",
            by("p-card", share_key(0, 1)),
            OK,
        )
        .after(vec![first(), by("p-card", grant(doctor("d-onc")))]),
        row(
            "key: break-glass with a sealed reason the request carries",
            by("d-onc", break_glass("p-card", &sample_reason_ref(), 60_000)),
            OK,
        ),
        row(
            "key: break-glass naming a sealed reason the request does not carry",
            by(
                "d-onc",
                break_glass(
                    "p-card",
                    &medchain_records::sealed::reason_ref(b"some other piece"),
                    60_000,
                ),
            ),
            Invalid,
        )
        .saying("sealed text"),
        row(
            "key: to the organisation of a doctor with open break-glass",
            by("p-card", share_key(0, 1)),
            OK,
        )
        .after(vec![
            first(),
            by("d-onc", break_glass("p-card", "unconscious in A&E", 60_000)),
        ]),
        row(
            "key: not once the break-glass window has closed",
            by("p-card", share_key(0, 1)),
            Forbidden,
        )
        .after(vec![
            first(),
            by("d-onc", break_glass("p-card", "unconscious in A&E", 60_000)),
        ])
        .later_ms(120_000),
        row(
            "key: not after the consent was revoked",
            by("p-card", share_key(0, 1)),
            Forbidden,
        )
        .after(vec![
            first(),
            by("p-card", grant(doctor("d-onc"))),
            by("p-card", revoke(doctor("d-onc"))),
        ]),
        row("key: the next epoch", by("p-card", share_key(1, 0)), OK).after(vec![first()]),
        row(
            "key: no epoch skipped",
            by("p-card", share_key(2, 0)),
            Invalid,
        )
        .after(vec![first()])
        .saying("neither an existing epoch nor the next"),
        row(
            "key: no epoch before the first",
            by("p-card", share_key(1, 0)),
            Invalid,
        ),
        row(
            "key: only for a patient",
            by("d-card", share_key(0, 0)),
            Forbidden,
        ),
        row(
            "key: no such organisation",
            by("p-card", share_key(0, 9)),
            Invalid,
        ),
        row(
            "faulty gateway: a sealed key the request does not carry",
            by(
                "p-card",
                Transaction::SharePatientKey {
                    epoch: 0,
                    organisation: 0,
                    sealed_hash: Hash32([9; 32]),
                },
            ),
            Invalid,
        )
        .faulty(),
        row(
            "faulty organisation: org 1 makes a key for org 0's patient, to itself",
            via(1, "p-card", share_key(0, 1)),
            Forbidden,
        )
        .faulty(),
        row(
            "faulty organisation: org 1 starts a new epoch of org 0's patient",
            via(1, "p-card", share_key(1, 0)),
            Forbidden,
        )
        .after(vec![first()])
        .faulty(),
        row(
            "faulty organisation: org 1's operator shares org 0's patient's key",
            operator(1, share_key(0, 1)),
            Forbidden,
        )
        .after(vec![first()])
        .faulty(),
    ]
}

fn rules() -> Vec<Row> {
    let mut rows = register_rows();
    rows.extend(key_rows());
    rows.extend(deactivate_rows());
    rows.extend(actor_rows());
    rows.extend(consent_rows());
    rows.extend(record_rows());
    rows.extend(dispense_rows());
    rows.extend(audit_and_break_glass_rows());
    rows.extend(break_glass_limit_rows().into_iter().map(|r| {
        if r.name.starts_with("faulty") {
            r.faulty()
        } else {
            r
        }
    }));
    rows.extend(faulty_rows());
    rows.extend(faulty_organisation_rows().into_iter().map(|r| {
        if r.name.starts_with("faulty") {
            r.faulty()
        } else {
            r
        }
    }));
    rows
}

/// Another organisation's node, keys and operator acting for users they did not
/// register: each refused by the ledger itself (issue 16, home organisation on the
/// ledger). Before it, every one of these was accepted.
#[rustfmt::skip]
fn faulty_organisation_rows() -> Vec<Row> {
    vec![
        row("faulty organisation: gateway of org 3 adds a record as a doctor of org 0",
            via(3, "d-card", record("r-1", "p-card")), Forbidden).saying("organisation 3 cannot act"),
        row("faulty organisation: gateway of org 1 grants consent as a patient of org 0",
            via(1, "p-card", grant(doctor("d-onc"))), Forbidden).saying("belongs to organisation 0"),
        row("faulty organisation: gateway of org 2 revokes a consent as a patient of org 0",
            via(2, "p-card", revoke(doctor("d-card"))), Forbidden),
        row("faulty organisation: gateway of org 2 creates a consent code as a patient of org 0",
            via(2, "p-card", new_code("p-card", "K7Q2-9XTR")), Forbidden),
        row("faulty organisation: gateway of org 2 registers a doctor as org 0's department",
            via(2, "dep-card", register("d-new", UserRole::Doctor, "cardiology")), Forbidden),
        row("faulty organisation: gateway of org 1 deactivates a patient as org 0's department",
            via(1, "dep-card", deactivate("p-card")), Forbidden),
        row("faulty organisation: gateway of org 3 dispenses as org 0's pharmacy",
            via(3, "ph-0", dispense("rx-1", Some("RX-1111"))), Forbidden)
            .after(vec![prescription("rx-1", "RX-1111")]),
        row("faulty organisation: gateway of org 2 writes an audit entry as a doctor of org 0",
            via(2, "d-card", audit("p-card", "forged")), Forbidden),
        row("faulty organisation: gateway of org 3 breaks the glass as a doctor of org 0",
            via(3, "d-card", break_glass("p-card", "forged emergency", 60_000)), Forbidden),
        row("faulty organisation: operator key of org 1 acts as a doctor of org 0",
            Submission::one(Signer::Operator(1), user("d-card"), record("r-1", "p-card")), Forbidden),
        // Departments are named per organisation: org 1's administrator of its own
        // "cardiology" has no say over org 0's cardiology.
        row("faulty organisation: org 1's administrator of a same-named department deactivates org 0's doctor",
            via(1, "dep-card-1", deactivate("d-card")), Forbidden)
            .after(vec![
                operator(1, Transaction::Propose {
                    proposal_id: "dep-card-1".into(),
                    action: medchain_records::ProposedAction::RegisterAdministrator {
                        user_id: "dep-card-1".into(),
                        department: "cardiology".into(),
                        display_name: "Cardiology office".into(),
                    },
                    ttl_ms: 60_000,
                }),
                by("dep-onc", Transaction::ApproveProposal { proposal_id: "dep-card-1".into() }),
            ]),
        row("propose: operator proposes a second department administrator",
            operator(0, propose_admin("p-rad", "dep-rad")), OK),
        row("propose: a doctor proposes a department administrator",
            by("d-card", propose_admin("p-rad", "dep-rad")), Forbidden).faulty(),
        row("approve proposal: the organisation's administrator completes it",
            by("dep-card", Transaction::ApproveProposal { proposal_id: "p-rad".into() }), OK)
            .after(vec![operator(0, propose_admin("p-rad", "dep-rad"))]),
        row("faulty organisation: org 1's administrator signs org 0's proposal",
            by("dep-onc", Transaction::ApproveProposal { proposal_id: "p-rad".into() }), Forbidden)
            .after(vec![operator(0, propose_admin("p-rad", "dep-rad"))])
            .saying("organisation 0"),
        row("faulty organisation: org 1's operator signs org 0's proposal",
            operator(1, Transaction::ApproveProposal { proposal_id: "p-rad".into() }), Forbidden)
            .after(vec![operator(0, propose_admin("p-rad", "dep-rad"))]),
        row("review alert: the patient's department marks a flagged read justified",
            by("dep-card", review_alert("12-0", "p-card", "covering for a colleague")), OK),
        row("review alert: twice",
            by("dep-card", review_alert("12-0", "p-card", "again")), Conflict)
            .after(vec![by("dep-card", review_alert("12-0", "p-card", "first"))]),
        row("review alert: without a note",
            by("dep-card", review_alert("12-0", "p-card", " ")), Invalid).faulty(),
        row("review alert: a doctor reviews",
            by("d-card", review_alert("12-0", "p-card", "fine")), Forbidden).faulty(),
        row("faulty organisation: org 1's administrator reviews an alert on org 0's patient",
            by("dep-onc", review_alert("12-0", "p-card", "nothing to see")), Forbidden).faulty(),
        row("faulty organisation: org 1's operator deactivates org 0's patient",
            operator(1, deactivate("p-card")), Forbidden),
        // Org 3 replays org 0's batch (its actors are org 0's users) under its own key.
        row("faulty organisation: org 0's batch replayed under org 3's gateway key",
            Submission {
                signer: Signer::Gateway(3),
                ..by("d-card", record("r-1", "p-card"))
            }, Forbidden),
        // The operator key of the user's own organisation may act for them (the CLI's
        // user administration): the boundary is between organisations.
        row("operator key of org 0 acts as org 0's doctor",
            Submission::one(Signer::Operator(0), user("d-card"), audit("p-card", "admin")), OK),
    ]
}

// ---- running the table --------------------------------------------------------------

fn row_time(r: &Row) -> u64 {
    START_MS + SETUP_SPAN_MS + r.after_ms
}

/// Run one row on a fresh ledger; `Err` says what went wrong.
fn run(r: &Row) -> Result<(), String> {
    let mut chain = Chain::new();
    for (i, s) in r.setup.iter().enumerate() {
        let got = chain.apply(START_MS + i as u64, std::slice::from_ref(s));
        if got[0].iter().any(|(o, _)| *o != OK) {
            return Err(format!("set-up step {i} was refused: {:?}", got[0]));
        }
    }
    let before = chain.state();
    let got = chain.apply(row_time(r), std::slice::from_ref(&r.sub));
    let (outcome, message) = &got[0][0];
    if *outcome != r.expect {
        return Err(format!(
            "expected {:?}, got {outcome:?} ({message:?})",
            r.expect
        ));
    }
    if let Some(part) = r.saying.filter(|p| !message.contains(p)) {
        return Err(format!(
            "{outcome:?} as expected, but said {message:?}, not {part:?}"
        ));
    }
    if *outcome != OK && chain.state() != before {
        return Err(format!("{outcome:?}, yet the state changed"));
    }
    Ok(())
}

fn failures(rows: &[Row]) -> Vec<String> {
    rows.iter()
        .filter_map(|r| run(r).err().map(|e| format!("{}{}: {e}", tag(r), r.name)))
        .collect()
}

fn tag(r: &Row) -> &'static str {
    if r.faulty_gateway {
        "[faulty gateway] "
    } else {
        ""
    }
}

#[test]
fn the_rules_table() {
    let failed = failures(&rules());
    assert!(
        failed.is_empty(),
        "{} rows failed:\n{}",
        failed.len(),
        failed.join("\n")
    );
}

/// The name of a transaction's variant: a new variant fails to compile here, a
/// reminder that it needs rows.
fn variant(tx: &Transaction) -> &'static str {
    match tx {
        Transaction::RegisterUser { .. } => "RegisterUser",
        Transaction::DeactivateUser { .. } => "DeactivateUser",
        Transaction::GrantConsent { .. } => "GrantConsent",
        Transaction::RevokeConsent { .. } => "RevokeConsent",
        Transaction::CreateConsentCode { .. } => "CreateConsentCode",
        Transaction::AddRecord { .. } => "AddRecord",
        Transaction::Dispense { .. } => "Dispense",
        Transaction::AuditRead { .. } => "AuditRead",
        Transaction::BreakGlass { .. } => "BreakGlass",
        Transaction::Marker => "Marker",
        Transaction::ApproveBreakGlass { .. } => "ApproveBreakGlass",
        Transaction::ReviewBreakGlass { .. } => "ReviewBreakGlass",
        Transaction::Propose { .. } => "Propose",
        Transaction::ApproveProposal { .. } => "ApproveProposal",
        Transaction::ReviewAlert { .. } => "ReviewAlert",
        Transaction::SharePatientKey { .. } => "SharePatientKey",
    }
}

fn envelopes(r: &Row) -> &[Envelope] {
    match &r.sub.payload {
        Payload::Batch(envs) => envs,
        Payload::Raw(_) => &[],
    }
}

#[test]
fn the_table_covers_every_variant_role_and_outcome() {
    let rows = rules();
    let faulty = rows.iter().filter(|r| r.faulty_gateway).count();
    println!(
        "{} rows ({faulty} faulty-gateway or faulty-organisation)",
        rows.len()
    );
    assert!(rows.len() >= 60, "only {} rows", rows.len());
    let mut names: Vec<_> = rows.iter().map(|r| r.name).collect();
    names.sort_unstable();
    let before = names.len();
    names.dedup();
    assert_eq!(names.len(), before, "row names are not unique");
    for v in [
        "RegisterUser",
        "DeactivateUser",
        "GrantConsent",
        "RevokeConsent",
        "CreateConsentCode",
        "AddRecord",
        "Dispense",
        "AuditRead",
        "BreakGlass",
        "Marker",
        "ApproveBreakGlass",
        "ReviewBreakGlass",
        "Propose",
        "ApproveProposal",
        "ReviewAlert",
        "SharePatientKey",
    ] {
        assert!(
            rows.iter().flat_map(envelopes).any(|e| variant(&e.tx) == v),
            "no row of {v}"
        );
    }
    let acts_as = |role: UserRole| {
        rows.iter().flat_map(envelopes).any(|e| {
            matches!(&e.actor, Actor::User(id)
                if common::USERS.iter().any(|u| u.0 == id && u.1 == role))
        })
    };
    for role in [
        UserRole::Doctor,
        UserRole::Patient,
        UserRole::Pharmacy,
        UserRole::Department,
    ] {
        assert!(acts_as(role), "no row acts as a {role:?}");
    }
    for o in [OK, Forbidden, Conflict, NotFound, Invalid] {
        assert!(rows.iter().any(|r| r.expect == o), "no row expects {o:?}");
    }
    assert!(faulty >= 10, "only {faulty} faulty-gateway rows");
}

// ---- state and determinism ----------------------------------------------------------

fn one(chain: &mut Chain, at_ms: u64, sub: Submission) -> Outcome {
    chain.apply(at_ms, &[sub])[0][0].0
}

#[test]
fn a_rejected_record_does_not_spend_the_consent_code() {
    let mut chain = Chain::new();
    let code = |id: &str| {
        record_with(
            id,
            "p-card",
            Rec {
                code: Some("ABCD-1234"),
                ..Rec::default()
            },
        )
    };
    assert_eq!(
        one(
            &mut chain,
            START_MS,
            by("p-card", new_code("p-card", "ABCD-1234"))
        ),
        OK
    );
    assert_eq!(
        one(
            &mut chain,
            START_MS + 1,
            by("d-card", record("taken", "p-card"))
        ),
        OK
    );
    let before = chain.state();
    // Spends the code, then finds the id taken: the spending must be undone too.
    assert_eq!(
        one(&mut chain, START_MS + 2, by("d-card2", code("taken"))),
        Conflict
    );
    assert_eq!(
        chain.state(),
        before,
        "the refused record left state behind"
    );
    assert_eq!(
        one(&mut chain, START_MS + 3, by("d-card2", code("fresh"))),
        OK
    );
    assert_eq!(
        one(&mut chain, START_MS + 4, by("d-card2", code("fresh-2"))),
        Forbidden
    );
}

#[test]
fn a_batch_executes_in_order_and_each_transaction_on_its_own() {
    let mut chain = Chain::new();
    let env = |actor: &str, tx| Envelope {
        actor: user(actor),
        tx,
    };
    let sub = batch_of(vec![
        env("p-card2", grant(doctor("d-card2"))),
        env("d-card2", record("r-1", "p-card2")),
        env("d-card2", record("r-1", "p-card2")),
        env(
            "d-card2",
            record_with(
                "r-2",
                "p-card2",
                Rec {
                    amends: Some("r-1"),
                    ..Rec::default()
                },
            ),
        ),
    ]);
    let got: Vec<Outcome> = chain.apply(START_MS, &[sub])[0]
        .iter()
        .map(|o| o.0)
        .collect();
    assert_eq!(got, [OK, OK, Conflict, OK]);
    let all_ok = batch_of(markers(3));
    let got: Vec<Outcome> = chain.apply(START_MS + 1, &[all_ok])[0]
        .iter()
        .map(|o| o.0)
        .collect();
    assert_eq!(
        got,
        [OK, OK, OK],
        "an all-accepted batch reports each index"
    );
}

type Seen = Vec<Vec<Vec<common::Recorded>>>;

/// The row's blocks, as `run` applies them.
fn replay(chain: &mut Chain, r: &Row) -> Seen {
    let mut seen: Seen = (r.setup.iter().enumerate())
        .map(|(i, s)| chain.apply(START_MS + i as u64, std::slice::from_ref(s)))
        .collect();
    seen.push(chain.apply(row_time(r), std::slice::from_ref(&r.sub)));
    seen
}

/// The outcomes and every table, outcomes included, of `blocks` on a fresh database.
fn on_fresh_database(blocks: impl Fn(&mut Chain) -> Seen) -> (Seen, Vec<String>) {
    let mut chain = Chain::new();
    let seen = blocks(&mut chain);
    (seen, chain.everything())
}

#[test]
fn every_row_gives_the_same_state_on_two_databases() {
    for r in rules().iter() {
        let a = on_fresh_database(|c| replay(c, r));
        let b = on_fresh_database(|c| replay(c, r));
        assert_eq!(a, b, "{}: two databases differ", r.name);
    }
}

/// Every faulty-gateway row's set-up in one block, then all their transactions in the
/// next, so that they also run against each other's state.
fn faulty_blocks(chain: &mut Chain) -> Seen {
    let rows: Vec<Row> = rules().into_iter().filter(|r| r.faulty_gateway).collect();
    let setup: Vec<Submission> = rows.iter().flat_map(|r| r.setup.clone()).collect();
    let txs: Vec<Submission> = rows.iter().map(|r| r.sub.clone()).collect();
    vec![
        chain.apply(START_MS, &setup),
        chain.apply(START_MS + SETUP_SPAN_MS, &txs),
    ]
}

#[test]
fn a_block_full_of_faulty_gateway_transactions_is_deterministic() {
    let (seen_a, state_a) = on_fresh_database(faulty_blocks);
    let (seen_b, state_b) = on_fresh_database(faulty_blocks);
    assert_eq!(seen_a, seen_b, "the outcomes differ");
    assert_eq!(state_a, state_b, "the state differs");
    let refused = seen_a[1].iter().filter(|o| o[0].0 != OK).count();
    assert!(refused >= 10, "only {refused} faulty transactions refused");
    assert!(
        state_a.iter().any(|r| r.starts_with("records:")),
        "the set-up recorded nothing"
    );
}
