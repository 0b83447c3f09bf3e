//! Explain first: the ledger facts that explain a read, each with a stable name, and the
//! one function that picks the explanation of a read. A read with a personal explanation
//! is never flagged; a read explained only by the reader's department can still be
//! flagged by a pattern rule (see `rules`), because a department relationship says the
//! reader may treat the patient, not that they do.

/// How long a record a doctor wrote for a patient explains their reads of that patient.
/// A year: follow-ups and chronic care span months; beyond a year, a new reason is due.
pub const RELATIONSHIP_WINDOW_MS: u64 = 365 * DAY_MS;
/// How long a used one-time consent code explains the doctor's reads: the code is given for
/// one visit, so a week covers the visit and its results, and nothing after.
pub const CODE_EXPLAINS_MS: u64 = 7 * DAY_MS;
/// A department treats a patient while it wrote a record for them in the last 90 days
/// (an episode of care, including its follow-up).
pub const DEPARTMENT_TREATS_WINDOW_MS: u64 = 90 * DAY_MS;
/// A reader is active in a department while they wrote a record there in the last 30 days
/// (a doctor on leave or moved away is no longer covering its patients).
pub const READER_ACTIVE_WINDOW_MS: u64 = 30 * DAY_MS;

/// A department has a patient in active care while it wrote a record for them in the last
/// 2 days (seen today or yesterday: an admission, or a visit and its results). Only active care lets a department
/// relationship explain a read of a co-worker or a namesake (see `rules`).
pub const ACTIVE_CARE_WINDOW_MS: u64 = 2 * DAY_MS;

/// One day in milliseconds.
pub const DAY_MS: u64 = 24 * HOUR_MS;
/// One hour in milliseconds.
pub const HOUR_MS: u64 = 60 * MINUTE_MS;
/// One minute in milliseconds.
pub const MINUTE_MS: u64 = 60_000;

/// A ledger fact that explains a read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Explanation {
    /// The patient reads their own data.
    OwnRecord,
    /// The reader prescribed for the patient (within the relationship window).
    Prescribed,
    /// The reader wrote a record for the patient (within the relationship window).
    WroteRecord,
    /// The patient consented to the reader personally, and has not revoked it.
    PersonalConsent,
    /// The patient gave the reader a one-time consent code, used recently.
    OneTimeCode,
    /// The reader has an open break-glass access to the patient (reviewed separately).
    BreakGlassOpen,
    /// A pharmacy read with a prescription code, for a patient who has a prescription.
    PrescriptionCode,
    /// The administrator of the patient's own department read its lists (activity,
    /// audit, alerts): oversight is that role's job, and these reads name many patients
    /// at once by design.
    DepartmentOversight,
    /// The reader's department treats the patient and the reader wrote a record there
    /// recently. Weaker than the others: pattern rules may still flag the read.
    DepartmentTreats,
}

impl Explanation {
    /// Every explanation, strongest first (the order `explain` tries them).
    pub const ALL: [Explanation; 9] = [
        Explanation::OwnRecord,
        Explanation::Prescribed,
        Explanation::WroteRecord,
        Explanation::PersonalConsent,
        Explanation::OneTimeCode,
        Explanation::BreakGlassOpen,
        Explanation::PrescriptionCode,
        Explanation::DepartmentOversight,
        Explanation::DepartmentTreats,
    ];

    /// The stable snake_case name (API, metrics, reports).
    pub fn name(self) -> &'static str {
        match self {
            Explanation::OwnRecord => "own_record",
            Explanation::Prescribed => "prescribed",
            Explanation::WroteRecord => "wrote_record",
            Explanation::PersonalConsent => "personal_consent",
            Explanation::OneTimeCode => "one_time_code",
            Explanation::BreakGlassOpen => "break_glass_open",
            Explanation::PrescriptionCode => "prescription_code",
            Explanation::DepartmentOversight => "department_oversight",
            Explanation::DepartmentTreats => "department_treats",
        }
    }

    /// The explanation called `name`, if any.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.name() == name)
    }

    /// Personal explanations tie this reader to this patient; only `DepartmentTreats` does
    /// not, so only it can be overruled by a pattern rule.
    pub fn is_personal(self) -> bool {
        !matches!(self, Explanation::DepartmentTreats)
    }
}

/// What the ledger says about one (reader, patient) pair at the time of a read: the
/// monitor fills it from its state, `explain` decides.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReadContext {
    pub own: bool,
    pub prescribed: bool,
    pub wrote_record: bool,
    pub personal_consent: bool,
    pub one_time_code: bool,
    pub break_glass_open: bool,
    pub prescription_code: bool,
    pub department_oversight: bool,
    pub department_treats: bool,
}

/// The strongest explanation of a read, or `None` when no ledger fact explains it.
pub fn explain(ctx: &ReadContext) -> Option<Explanation> {
    Explanation::ALL.into_iter().find(|e| match e {
        Explanation::OwnRecord => ctx.own,
        Explanation::Prescribed => ctx.prescribed,
        Explanation::WroteRecord => ctx.wrote_record,
        Explanation::PersonalConsent => ctx.personal_consent,
        Explanation::OneTimeCode => ctx.one_time_code,
        Explanation::BreakGlassOpen => ctx.break_glass_open,
        Explanation::PrescriptionCode => ctx.prescription_code,
        Explanation::DepartmentOversight => ctx.department_oversight,
        Explanation::DepartmentTreats => ctx.department_treats,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_explains_an_empty_context() {
        assert_eq!(explain(&ReadContext::default()), None);
    }

    #[test]
    fn each_fact_explains_on_its_own() {
        let cases = [
            (
                ReadContext {
                    own: true,
                    ..Default::default()
                },
                Explanation::OwnRecord,
            ),
            (
                ReadContext {
                    prescribed: true,
                    ..Default::default()
                },
                Explanation::Prescribed,
            ),
            (
                ReadContext {
                    wrote_record: true,
                    ..Default::default()
                },
                Explanation::WroteRecord,
            ),
            (
                ReadContext {
                    personal_consent: true,
                    ..Default::default()
                },
                Explanation::PersonalConsent,
            ),
            (
                ReadContext {
                    one_time_code: true,
                    ..Default::default()
                },
                Explanation::OneTimeCode,
            ),
            (
                ReadContext {
                    break_glass_open: true,
                    ..Default::default()
                },
                Explanation::BreakGlassOpen,
            ),
            (
                ReadContext {
                    prescription_code: true,
                    ..Default::default()
                },
                Explanation::PrescriptionCode,
            ),
            (
                ReadContext {
                    department_treats: true,
                    ..Default::default()
                },
                Explanation::DepartmentTreats,
            ),
        ];
        for (ctx, want) in cases {
            assert_eq!(explain(&ctx), Some(want));
        }
    }

    #[test]
    fn personal_beats_department() {
        let ctx = ReadContext {
            wrote_record: true,
            department_treats: true,
            ..Default::default()
        };
        assert_eq!(explain(&ctx), Some(Explanation::WroteRecord));
        assert!(Explanation::WroteRecord.is_personal());
        assert!(!Explanation::DepartmentTreats.is_personal());
    }

    #[test]
    fn names_are_stable_and_unique() {
        let names: Vec<_> = Explanation::ALL.iter().map(|e| e.name()).collect();
        assert_eq!(
            names,
            [
                "own_record",
                "prescribed",
                "wrote_record",
                "personal_consent",
                "one_time_code",
                "break_glass_open",
                "prescription_code",
                "department_oversight",
                "department_treats"
            ]
        );
        for e in Explanation::ALL {
            assert_eq!(Explanation::from_name(e.name()), Some(e));
        }
    }
}
