//! Measured, not claimed: a synthetic consortium workload (organisations, departments,
//! day and night doctors with their patients over weeks, pharmacies, patients reading their
//! own data) with a few legitimate unusual cases (a doctor covering a colleague on leave, a
//! day doctor covering a night, referrals with a consent or a one-time code, emergency
//! break-glass), into which snooping of each kind is injected at a known rate with ground
//! truth. The report gives precision and recall per rule and overall, the learned score's
//! at a threshold, and the share of normal reads a ledger fact explains.
//!
//! Everything is drawn from one seeded ChaCha8 generator: same seed, same workload, same
//! report.

use std::collections::{HashMap, HashSet};
use std::fmt;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::explain::{DAY_MS, HOUR_MS, MINUTE_MS};
use crate::facts::{Fact, FactKind, Grantee, ReadVia, Role};
use crate::monitor::{Monitor, ReaderDay};
use crate::rules::Rule;
use crate::score::{features, ForestOptions, IsolationForest, FEATURE_COUNT};

/// Monday 2026-01-05 00:00 UTC: the first day of the workload.
pub const START_MS: u64 = 1_767_571_200_000;
/// Limit on the workload's size (doctors), so a typo cannot ask for a billion.
pub const MAX_DOCTORS: u32 = 10_000;
/// Limit on the workload's length.
pub const MAX_WEEKS: u32 = 104;

/// The size and shape of a workload.
#[derive(Clone, Debug, PartialEq)]
pub struct EvalConfig {
    pub seed: u64,
    /// Weeks simulated, warm-up included.
    pub weeks: u32,
    /// Weeks at the start with no injected snooping and no measurement: baselines form.
    pub warmup_weeks: u32,
    pub doctors: u32,
    pub organisations: u16,
    pub departments_per_organisation: u32,
    pub patients_per_doctor: u32,
    /// Share of doctor-workdays (after warm-up) with one injected snooping incident.
    pub snoop_rate: f64,
    /// Learned score at or above which a reader-day counts as flagged.
    pub score_threshold: f64,
}

impl Default for EvalConfig {
    fn default() -> Self {
        Self {
            seed: 1,
            weeks: 6,
            warmup_weeks: 2,
            doctors: 40,
            organisations: 2,
            departments_per_organisation: 3,
            patients_per_doctor: 120,
            snoop_rate: 0.05,
            score_threshold: 0.6,
        }
    }
}

/// A kind of injected snooping, one per rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SnoopKind {
    NoTreatment,
    Volume,
    UnusualHours,
    SameSurname,
    CoWorker,
    RepeatedBreakGlass,
    ManyPatients,
}

impl SnoopKind {
    pub const ALL: [SnoopKind; 7] = [
        SnoopKind::NoTreatment,
        SnoopKind::Volume,
        SnoopKind::UnusualHours,
        SnoopKind::SameSurname,
        SnoopKind::CoWorker,
        SnoopKind::RepeatedBreakGlass,
        SnoopKind::ManyPatients,
    ];

    /// The rule meant to catch it.
    pub fn rule(self) -> Rule {
        match self {
            SnoopKind::NoTreatment => Rule::NoTreatmentRelationship,
            SnoopKind::Volume => Rule::VolumeAboveBaseline,
            SnoopKind::UnusualHours => Rule::UnusualHours,
            SnoopKind::SameSurname => Rule::SameSurname,
            SnoopKind::CoWorker => Rule::CoWorker,
            SnoopKind::RepeatedBreakGlass => Rule::RepeatedBreakGlass,
            SnoopKind::ManyPatients => Rule::ManyPatientsShortWindow,
        }
    }
}

/// One injected snooping incident.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Incident {
    pub kind: SnoopKind,
    pub reader: String,
    pub day: u64,
}

/// A fact with its ground truth: the incident it belongs to, if it is snooping.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Labelled {
    pub fact: Fact,
    pub incident: Option<usize>,
}

/// A generated workload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Workload {
    pub facts: Vec<Labelled>,
    pub incidents: Vec<Incident>,
    /// Measurement starts here (after the warm-up).
    pub measure_from_ms: u64,
}

#[derive(Debug)]
struct Doc {
    id: String,
    name: String,
    org: u16,
    dept: usize,
    night: bool,
    patients: Vec<usize>,
    leave_week: Option<u32>,
    relative: Option<usize>,
}

#[derive(Debug)]
struct Pat {
    id: String,
    org: u16,
    dept: usize,
    primary: usize,
    personal_consent: bool,
    referral: Option<usize>,
}

#[derive(Debug)]
struct Dept {
    org: u16,
    name: String,
    doctors: Vec<usize>,
    patients: Vec<usize>,
    /// Patients with a referral consent to this department that it never acts on.
    referral_only: Vec<usize>,
    /// Patients in this department who are also staff of its organisation.
    staff_patients: Vec<usize>,
}

const DEPARTMENT_NAMES: [&str; 6] = [
    "cardiology",
    "oncology",
    "paediatrics",
    "emergency",
    "orthopaedics",
    "neurology",
];
const FIRST: [&str; 24] = [
    "Anna", "Ben", "Chloe", "David", "Emma", "Farid", "Grace", "Hugo", "Ines", "Jon", "Kate",
    "Liam", "Maya", "Noah", "Olga", "Paul", "Quinn", "Rosa", "Sam", "Tara", "Umar", "Vera", "Will",
    "Zoe",
];
const SURNAME_HEAD: [&str; 20] = [
    "Ash", "Black", "Brad", "Carl", "Dun", "Elling", "Fair", "Green", "Hart", "Kings", "Lang",
    "Mar", "North", "Ox", "Pem", "Rad", "Stan", "Thorn", "Wal", "Wood",
];
const SURNAME_TAIL: [&str; 16] = [
    "ford", "ley", "ton", "wood", "field", "by", "well", "ham", "stead", "more", "wick", "dale",
    "worth", "bury", "croft", "hurst",
];

fn person_name(rng: &mut ChaCha8Rng) -> String {
    let first = FIRST.choose(rng).copied().unwrap_or("Alex");
    let head = SURNAME_HEAD.choose(rng).copied().unwrap_or("Ash");
    let tail = SURNAME_TAIL.choose(rng).copied().unwrap_or("ford");
    format!("{first} {head}{tail}")
}

fn surname_of(name: &str) -> &str {
    name.rsplit(' ').next().unwrap_or(name)
}

struct Builder {
    events: Vec<(u64, u64, FactKind, Option<usize>)>,
    seq: u64,
}

impl Builder {
    fn push(&mut self, at_ms: u64, kind: FactKind, incident: Option<usize>) {
        self.events.push((at_ms, self.seq, kind, incident));
        self.seq += 1;
    }

    fn read(
        &mut self,
        at_ms: u64,
        reader: &str,
        patient: &str,
        via: ReadVia,
        incident: Option<usize>,
    ) {
        self.push(
            at_ms,
            FactKind::Read {
                reader: reader.to_string(),
                patient: patient.to_string(),
                via,
            },
            incident,
        );
    }

    fn record(
        &mut self,
        at_ms: u64,
        doctor: &str,
        patient: &str,
        department: &str,
        prescribes: bool,
    ) {
        self.push(
            at_ms,
            FactKind::RecordWritten {
                doctor: doctor.to_string(),
                patient: patient.to_string(),
                department: department.to_string(),
                prescribes,
            },
            None,
        );
    }
}

/// Generate the workload of `cfg`.
pub fn generate(cfg: &EvalConfig) -> Workload {
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let doctors_n = cfg.doctors.clamp(4, MAX_DOCTORS) as usize;
    let weeks = cfg.weeks.clamp(1, MAX_WEEKS);
    let orgs = cfg.organisations.max(1);
    let per_org = (cfg.departments_per_organisation.max(1) as usize).min(DEPARTMENT_NAMES.len());
    let mut depts: Vec<Dept> = Vec::new();
    for o in 0..orgs {
        for name in DEPARTMENT_NAMES.iter().take(per_org) {
            depts.push(Dept {
                org: o,
                name: (*name).to_string(),
                doctors: Vec::new(),
                patients: Vec::new(),
                referral_only: Vec::new(),
                staff_patients: Vec::new(),
            });
        }
    }
    let mut docs: Vec<Doc> = Vec::new();
    for i in 0..doctors_n {
        let dept = i % depts.len();
        // About one doctor in seven works nights (the fourth of each department's first seven).
        let night = depts[dept].doctors.len() % 7 == 3;
        docs.push(Doc {
            id: format!("d{i:04}"),
            name: person_name(&mut rng),
            org: depts[dept].org,
            dept,
            night,
            patients: Vec::new(),
            leave_week: None,
            relative: None,
        });
        depts[dept].doctors.push(i);
    }
    let mut pats: Vec<Pat> = Vec::new();
    let mut names: Vec<String> = Vec::new();
    for (d, doc) in docs.iter_mut().enumerate() {
        if doc.night {
            continue;
        }
        for _ in 0..cfg.patients_per_doctor.max(1) {
            let p = pats.len();
            pats.push(Pat {
                id: format!("p{p:05}"),
                org: doc.org,
                dept: doc.dept,
                primary: d,
                personal_consent: rng.gen_bool(0.2),
                referral: None,
            });
            names.push(person_name(&mut rng));
            doc.patients.push(p);
            depts[doc.dept].patients.push(p);
        }
        if rng.gen_bool(0.3) && weeks > cfg.warmup_weeks + 1 {
            doc.leave_week = Some(rng.gen_range(cfg.warmup_weeks..weeks));
        }
    }
    // Referral consents: some patients also consented to another department of their
    // organisation; half of those referrals are acted on (legitimately), half never are.
    let mut referrals_acted: Vec<usize> = Vec::new();
    for (p, pat) in pats.iter_mut().enumerate() {
        if !rng.gen_bool(0.12) {
            continue;
        }
        let others: Vec<usize> = (0..depts.len())
            .filter(|&d| depts[d].org == pat.org && d != pat.dept)
            .collect();
        if let Some(&d) = others.choose(&mut rng) {
            pat.referral = Some(d);
            if rng.gen_bool(0.5) {
                referrals_acted.push(p);
            } else {
                depts[d].referral_only.push(p);
            }
        }
    }
    // Relatives: a quarter of the day doctors have a namesake patient treated by a colleague.
    for (d, doc) in docs.iter_mut().enumerate() {
        if doc.night || !rng.gen_bool(0.25) {
            continue;
        }
        let candidates: Vec<usize> = depts[doc.dept]
            .patients
            .iter()
            .copied()
            .filter(|&p| pats[p].primary != d)
            .collect();
        if let Some(&p) = candidates.choose(&mut rng) {
            let first = FIRST.choose(&mut rng).copied().unwrap_or("Alex");
            names[p] = format!("{first} {}", surname_of(&doc.name));
            doc.relative = Some(p);
        }
    }
    // Staff registered also as patients, in a department of their own organisation.
    for d in 0..docs.len() {
        if !rng.gen_bool(0.15) {
            continue;
        }
        let org = docs[d].org;
        // Treated elsewhere than where they work (a doctor is not a patient of their ward).
        let dept_choices: Vec<usize> = (0..depts.len())
            .filter(|&x| depts[x].org == org && x != docs[d].dept)
            .collect();
        let Some(&dept) = dept_choices.choose(&mut rng) else {
            continue;
        };
        let day_doctors: Vec<usize> = depts[dept]
            .doctors
            .iter()
            .copied()
            .filter(|&x| !docs[x].night && x != d)
            .collect();
        let Some(&primary) = day_doctors.choose(&mut rng) else {
            continue;
        };
        let p = pats.len();
        pats.push(Pat {
            id: format!("p{p:05}"),
            org,
            dept,
            primary,
            personal_consent: false,
            referral: None,
        });
        names.push(docs[d].name.clone());
        docs[primary].patients.push(p);
        depts[dept].patients.push(p);
        depts[dept].staff_patients.push(p);
    }
    // A doctor's name must not collide with an unrelated patient's full name by accident
    // (that would be a co-worker by the ledger's lights); rename such patients.
    let staff_names: HashSet<(u16, String)> =
        docs.iter().map(|d| (d.org, d.name.clone())).collect();
    let staff_patient_set: HashSet<usize> = depts
        .iter()
        .flat_map(|d| d.staff_patients.iter().copied())
        .collect();
    for p in 0..pats.len() {
        if staff_patient_set.contains(&p) {
            continue;
        }
        let mut guard = 0;
        while staff_names.contains(&(pats[p].org, names[p].clone())) && guard < 100 {
            let sur = surname_of(&names[p]).to_string();
            let first = FIRST.choose(&mut rng).copied().unwrap_or("Alex");
            names[p] = format!(
                "{first}-{} {sur}",
                FIRST.choose(&mut rng).copied().unwrap_or("Lee")
            );
            guard += 1;
        }
    }

    let mut b = Builder {
        events: Vec::new(),
        seq: 0,
    };
    let setup_ms = START_MS - 31 * DAY_MS;
    for doc in &docs {
        b.push(
            setup_ms,
            FactKind::UserRegistered {
                user_id: doc.id.clone(),
                role: Role::Doctor,
                organisation: doc.org,
                department: depts[doc.dept].name.clone(),
                display_name: format!("Dr {}", doc.name),
            },
            None,
        );
    }
    let mut pharmacies: Vec<Vec<String>> = vec![Vec::new(); usize::from(orgs)];
    for (o, list) in pharmacies.iter_mut().enumerate() {
        for k in 0..2 {
            let id = format!("ph{o}{k}");
            b.push(
                setup_ms,
                FactKind::UserRegistered {
                    user_id: id.clone(),
                    role: Role::Pharmacy,
                    organisation: o as u16,
                    department: "pharmacy".into(),
                    display_name: format!("Pharmacy {o}-{k}"),
                },
                None,
            );
            list.push(id);
        }
    }
    for (p, pat) in pats.iter().enumerate() {
        b.push(
            setup_ms,
            FactKind::UserRegistered {
                user_id: pat.id.clone(),
                role: Role::Patient,
                organisation: pat.org,
                department: depts[pat.dept].name.clone(),
                display_name: names[p].clone(),
            },
            None,
        );
        b.push(
            setup_ms + 1,
            FactKind::ConsentGranted {
                patient: pat.id.clone(),
                grantee: Grantee::Department {
                    organisation: pat.org,
                    department: depts[pat.dept].name.clone(),
                },
            },
            None,
        );
        if pat.personal_consent {
            b.push(
                setup_ms + 1,
                FactKind::ConsentGranted {
                    patient: pat.id.clone(),
                    grantee: Grantee::User(docs[pat.primary].id.clone()),
                },
                None,
            );
        }
        if let Some(r) = pat.referral {
            b.push(
                setup_ms + 1,
                FactKind::ConsentGranted {
                    patient: pat.id.clone(),
                    grantee: Grantee::Department {
                        organisation: pat.org,
                        department: depts[r].name.clone(),
                    },
                },
                None,
            );
        }
        // Prehistory: the patient's first record, in the month before the workload.
        let at = setup_ms + DAY_MS + rng.gen_range(0..29 * DAY_MS);
        b.record(
            at,
            &docs[pat.primary].id,
            &pat.id,
            &depts[pat.dept].name,
            false,
        );
    }
    // Night doctors have written records in their department in the month before too.
    for doc in docs.iter().filter(|d| d.night) {
        if let Some(&p) = depts[doc.dept].patients.choose(&mut rng) {
            let at = START_MS - rng.gen_range(1..7) * DAY_MS;
            b.record(at, &doc.id, &pats[p].id, &depts[doc.dept].name, false);
        }
    }

    let measure_from_ms = START_MS + u64::from(cfg.warmup_weeks) * 7 * DAY_MS;
    let mut incidents: Vec<Incident> = Vec::new();
    let days = u64::from(weeks) * 7;
    let referral_day: HashMap<usize, u64> = referrals_acted
        .iter()
        .map(|&p| (p, rng.gen_range(0..days)))
        .collect();
    let mut referral_sorted: Vec<(usize, u64)> = referral_day.into_iter().collect();
    referral_sorted.sort_unstable();

    // Patients in active care per department: those it saw in the last two days. Consults,
    // handovers and night shifts are about them, not about the whole patient list.
    let mut in_care: Vec<Vec<(u64, usize)>> = vec![Vec::new(); depts.len()];
    for day in 0..days {
        let day_ms = START_MS + day * DAY_MS;
        for list in in_care.iter_mut() {
            list.retain(|(d, _)| d + 2 > day);
        }
        let week = (day / 7) as u32;
        let weekday = day % 7;
        let measuring = day_ms >= measure_from_ms;
        for d in 0..docs.len() {
            let on_leave = docs[d].leave_week == Some(week);
            let works = !on_leave
                && if docs[d].night {
                    (day + d as u64) % 7 < 4
                } else {
                    weekday < 5
                };
            if !works {
                continue;
            }
            let dept = docs[d].dept;
            let dname = depts[dept].name.clone();
            let did = docs[d].id.clone();
            let (shift_start, shift_len) = if docs[d].night {
                (day_ms + 20 * HOUR_MS, 11 * HOUR_MS)
            } else {
                (
                    day_ms + 8 * HOUR_MS + rng.gen_range(0..45) * MINUTE_MS,
                    8 * HOUR_MS + 30 * MINUTE_MS,
                )
            };
            let in_shift = |rng: &mut ChaCha8Rng| shift_start + rng.gen_range(0..shift_len);
            if docs[d].night {
                // A night doctor looks after the department's patients in care.
                let k = rng.gen_range(8..=15);
                for _ in 0..k {
                    let Some(p) = pick_in_care(&mut rng, &in_care[dept], &depts[dept].patients)
                    else {
                        break;
                    };
                    let t = in_shift(&mut rng);
                    b.read(t, &did, &pats[p].id, ReadVia::Department, None);
                    if rng.gen_bool(0.3) {
                        let prescribes = rng.gen_bool(0.2);
                        b.record(
                            t + rng.gen_range(5..20) * MINUTE_MS,
                            &did,
                            &pats[p].id,
                            &dname,
                            prescribes,
                        );
                        if prescribes {
                            pharmacy_read(&mut b, &mut rng, &pharmacies, &pats[p], t);
                        }
                    }
                }
            } else {
                let k = rng.gen_range(6..=12).min(docs[d].patients.len());
                let visits: Vec<usize> = docs[d]
                    .patients
                    .choose_multiple(&mut rng, k)
                    .copied()
                    .collect();
                for p in visits {
                    in_care[dept].push((day, p));
                    let t = in_shift(&mut rng);
                    visit(&mut b, &mut rng, &docs[d], &pats[p], &dname, t, &pharmacies);
                }
                // Consults and handovers: colleagues' patients in the department.
                for _ in 0..rng.gen_range(0..=3) {
                    let Some(p) = pick_in_care(&mut rng, &in_care[dept], &depts[dept].patients)
                    else {
                        break;
                    };
                    b.read(
                        in_shift(&mut rng),
                        &did,
                        &pats[p].id,
                        ReadVia::Department,
                        None,
                    );
                }
                // Covering a colleague on leave: the next day doctor of the department.
                for &c in &depts[dept].doctors {
                    if c == d || docs[c].night || docs[c].leave_week != Some(week) {
                        continue;
                    }
                    if cover_of(&docs, &depts[dept].doctors, c, week) != Some(d) {
                        continue;
                    }
                    let k = rng.gen_range(4..=8).min(docs[c].patients.len());
                    let covered: Vec<usize> = docs[c]
                        .patients
                        .choose_multiple(&mut rng, k)
                        .copied()
                        .collect();
                    for p in covered {
                        in_care[dept].push((day, p));
                        let t = in_shift(&mut rng);
                        b.read(t, &did, &pats[p].id, ReadVia::Department, None);
                        b.record(
                            t + rng.gen_range(5..20) * MINUTE_MS,
                            &did,
                            &pats[p].id,
                            &dname,
                            false,
                        );
                        if rng.gen_bool(0.4) {
                            b.read(
                                t + rng.gen_range(1..4) * HOUR_MS,
                                &did,
                                &pats[p].id,
                                ReadVia::Department,
                                None,
                            );
                        }
                    }
                }
                // Legitimate emergency access, rarely.
                if rng.gen_bool(0.004) {
                    if let Some(p) = other_department_patient(&mut rng, &pats, dept) {
                        let t = in_shift(&mut rng);
                        break_glass(&mut b, &mut rng, &did, &pats[p].id, t, None);
                    }
                }
                // A day doctor covering a night, rarely (legitimate, unusual hours).
                if measuring && weekday < 4 && rng.gen_bool(0.01) {
                    let start = day_ms + 22 * HOUR_MS;
                    for _ in 0..rng.gen_range(5..=8) {
                        let Some(p) = pick_in_care(&mut rng, &in_care[dept], &depts[dept].patients)
                        else {
                            break;
                        };
                        let t = start + rng.gen_range(0..8 * HOUR_MS);
                        b.read(t, &did, &pats[p].id, ReadVia::Department, None);
                        b.record(
                            t + rng.gen_range(5..20) * MINUTE_MS,
                            &did,
                            &pats[p].id,
                            &dname,
                            false,
                        );
                    }
                }
            }
            if measuring && rng.gen_bool(cfg.snoop_rate.clamp(0.0, 1.0)) {
                inject(
                    &mut b,
                    &mut rng,
                    &docs,
                    &pats,
                    &depts,
                    d,
                    day_ms,
                    week,
                    &mut incidents,
                );
            }
        }
        // Legitimate referrals acted on today: a consent or a one-time code, then care.
        for &(p, _) in referral_sorted.iter().filter(|(_, rd)| *rd == day) {
            let Some(r) = pats[p].referral else { continue };
            let Some(&doc) = depts[r]
                .doctors
                .iter()
                .filter(|&&x| !docs[x].night)
                .collect::<Vec<_>>()
                .choose(&mut rng)
            else {
                continue;
            };
            let t = day_ms + rng.gen_range(9..16) * HOUR_MS;
            let (did, pid) = (docs[*doc].id.clone(), pats[p].id.clone());
            if rng.gen_bool(0.5) {
                b.push(
                    t,
                    FactKind::ConsentGranted {
                        patient: pid.clone(),
                        grantee: Grantee::User(did.clone()),
                    },
                    None,
                );
                b.read(t + MINUTE_MS, &did, &pid, ReadVia::Consent, None);
            } else {
                b.push(
                    t,
                    FactKind::ConsentCodeUsed {
                        doctor: did.clone(),
                        patient: pid.clone(),
                    },
                    None,
                );
                b.read(t + MINUTE_MS, &did, &pid, ReadVia::ConsentCode, None);
            }
            b.record(t + 10 * MINUTE_MS, &did, &pid, &depts[r].name, false);
        }
        // Patients read their own data.
        for pat in &pats {
            if rng.gen_bool(0.03) {
                let t = day_ms + rng.gen_range(7 * HOUR_MS..23 * HOUR_MS);
                b.read(t, &pat.id, &pat.id, ReadVia::Own, None);
            }
        }
    }

    b.events.sort_by_key(|(at, seq, _, _)| (*at, *seq));
    let mut facts = Vec::with_capacity(b.events.len());
    let mut height = 0u64;
    let mut last_block_ms = None;
    for (at, _, kind, incident) in b.events {
        // One block per second of ledger time.
        let block_ms = at - at % 1000;
        if last_block_ms != Some(block_ms) {
            height += 1;
            last_block_ms = Some(block_ms);
        }
        facts.push(Labelled {
            fact: Fact::new(block_ms, height, kind),
            incident,
        });
    }
    Workload {
        facts,
        incidents,
        measure_from_ms,
    }
}

/// Who covers doctor `c` on leave in `week`: the next day doctor of the department who is
/// not on leave that week.
fn cover_of(docs: &[Doc], dept_doctors: &[usize], c: usize, week: u32) -> Option<usize> {
    let pos = dept_doctors.iter().position(|&x| x == c)?;
    (1..dept_doctors.len())
        .map(|k| dept_doctors[(pos + k) % dept_doctors.len()])
        .find(|&x| !docs[x].night && docs[x].leave_week != Some(week))
}

/// A patient the department has in care (seen in the last two days), else any of its own.
fn pick_in_care(rng: &mut ChaCha8Rng, in_care: &[(u64, usize)], all: &[usize]) -> Option<usize> {
    in_care
        .choose(rng)
        .map(|(_, p)| *p)
        .or_else(|| all.choose(rng).copied())
}

fn other_department_patient(rng: &mut ChaCha8Rng, pats: &[Pat], dept: usize) -> Option<usize> {
    for _ in 0..20 {
        let p = rng.gen_range(0..pats.len());
        if pats[p].dept != dept {
            return Some(p);
        }
    }
    None
}

fn pharmacy_read(
    b: &mut Builder,
    rng: &mut ChaCha8Rng,
    pharmacies: &[Vec<String>],
    pat: &Pat,
    t: u64,
) {
    if !rng.gen_bool(0.7) {
        return;
    }
    if let Some(ph) = pharmacies
        .get(usize::from(pat.org))
        .and_then(|l| l.choose(rng))
    {
        let at = t + rng.gen_range(1..24) * HOUR_MS;
        b.read(at, ph, &pat.id, ReadVia::PharmacyCode, None);
    }
}

fn visit(
    b: &mut Builder,
    rng: &mut ChaCha8Rng,
    doc: &Doc,
    pat: &Pat,
    dname: &str,
    t: u64,
    pharmacies: &[Vec<String>],
) {
    let via = if pat.personal_consent {
        ReadVia::Consent
    } else {
        ReadVia::Department
    };
    b.read(t, &doc.id, &pat.id, via, None);
    let prescribes = rng.gen_bool(0.35);
    let written = t + rng.gen_range(5..20) * MINUTE_MS;
    b.record(written, &doc.id, &pat.id, dname, prescribes);
    if prescribes {
        pharmacy_read(b, rng, pharmacies, pat, written);
    }
    if rng.gen_bool(0.5) {
        b.read(
            t + rng.gen_range(60..240) * MINUTE_MS,
            &doc.id,
            &pat.id,
            via,
            None,
        );
    }
}

fn break_glass(
    b: &mut Builder,
    rng: &mut ChaCha8Rng,
    doctor: &str,
    patient: &str,
    t: u64,
    incident: Option<usize>,
) {
    b.push(
        t,
        FactKind::BreakGlassOpened {
            doctor: doctor.to_string(),
            patient: patient.to_string(),
            until_ms: t + 4 * HOUR_MS,
        },
        incident,
    );
    for k in 0..rng.gen_range(1..=3u64) {
        b.read(
            t + (1 + k * 20) * MINUTE_MS,
            doctor,
            patient,
            ReadVia::BreakGlass,
            incident,
        );
    }
}

/// Whether doctor `d` can commit snooping of `kind` (has a namesake, a co-worker patient
/// in their department, referral-only patients, enough colleagues' patients).
fn feasible(kind: SnoopKind, docs: &[Doc], pats: &[Pat], depts: &[Dept], d: usize) -> bool {
    let dept = &depts[docs[d].dept];
    match kind {
        SnoopKind::RepeatedBreakGlass => true,
        SnoopKind::NoTreatment => !dept.referral_only.is_empty(),
        SnoopKind::Volume | SnoopKind::ManyPatients | SnoopKind::UnusualHours => {
            dept.patients
                .iter()
                .filter(|&&p| pats[p].primary != d)
                .count()
                >= 30
        }
        SnoopKind::SameSurname => docs[d].relative.is_some(),
        SnoopKind::CoWorker => dept.staff_patients.iter().any(|&p| pats[p].primary != d),
    }
}

/// Inject one incident today: its kind is drawn uniformly; when doctor `d` cannot commit
/// it, a doctor (not on leave) who can does, so every kind is injected at the same rate.
#[allow(clippy::too_many_arguments)]
fn inject(
    b: &mut Builder,
    rng: &mut ChaCha8Rng,
    docs: &[Doc],
    pats: &[Pat],
    depts: &[Dept],
    d: usize,
    day_ms: u64,
    week: u32,
    incidents: &mut Vec<Incident>,
) {
    let mut kind = SnoopKind::ALL
        .choose(rng)
        .copied()
        .unwrap_or(SnoopKind::RepeatedBreakGlass);
    let d = if feasible(kind, docs, pats, depts, d) {
        d
    } else {
        let able: Vec<usize> = (0..docs.len())
            .filter(|&x| docs[x].leave_week != Some(week) && feasible(kind, docs, pats, depts, x))
            .collect();
        match able.choose(rng) {
            Some(&x) => x,
            None => {
                kind = SnoopKind::RepeatedBreakGlass;
                d
            }
        }
    };
    let doc = &docs[d];
    let dept = &depts[doc.dept];
    let colleagues_patients: Vec<usize> = dept
        .patients
        .iter()
        .copied()
        .filter(|&p| pats[p].primary != d)
        .collect();
    let staff_targets: Vec<usize> = dept
        .staff_patients
        .iter()
        .copied()
        .filter(|&p| pats[p].primary != d)
        .collect();
    let (shift_start, shift_len) = if doc.night {
        (day_ms + 20 * HOUR_MS, 11 * HOUR_MS)
    } else {
        (day_ms + 8 * HOUR_MS, 8 * HOUR_MS + 30 * MINUTE_MS)
    };
    let id = incidents.len();
    incidents.push(Incident {
        kind,
        reader: doc.id.clone(),
        day: day_ms / DAY_MS,
    });
    let inc = Some(id);
    let in_shift = |rng: &mut ChaCha8Rng| shift_start + rng.gen_range(0..shift_len);
    match kind {
        SnoopKind::NoTreatment => {
            let n = rng.gen_range(1..=3).min(dept.referral_only.len());
            for &p in dept.referral_only.choose_multiple(rng, n) {
                b.read(
                    in_shift(rng),
                    &doc.id,
                    &pats[p].id,
                    ReadVia::Department,
                    inc,
                );
            }
        }
        SnoopKind::Volume => {
            for _ in 0..rng.gen_range(40..=70) {
                if let Some(&p) = colleagues_patients.choose(rng) {
                    b.read(
                        in_shift(rng),
                        &doc.id,
                        &pats[p].id,
                        ReadVia::Department,
                        inc,
                    );
                }
            }
        }
        SnoopKind::UnusualHours => {
            // Opposite the reader's own hours: small hours for a day doctor, midday for
            // a night doctor.
            let start = if doc.night {
                day_ms + 12 * HOUR_MS
            } else {
                day_ms + HOUR_MS
            };
            let n = rng.gen_range(2..=5);
            for p in colleagues_patients.choose_multiple(rng, n) {
                b.read(
                    start + rng.gen_range(0..3 * HOUR_MS),
                    &doc.id,
                    &pats[*p].id,
                    ReadVia::Department,
                    inc,
                );
            }
        }
        SnoopKind::SameSurname => {
            if let Some(p) = doc.relative {
                for _ in 0..rng.gen_range(1..=2) {
                    b.read(
                        in_shift(rng),
                        &doc.id,
                        &pats[p].id,
                        ReadVia::Department,
                        inc,
                    );
                }
            }
        }
        SnoopKind::CoWorker => {
            if let Some(&p) = staff_targets.choose(rng) {
                b.read(
                    in_shift(rng),
                    &doc.id,
                    &pats[p].id,
                    ReadVia::Department,
                    inc,
                );
            }
        }
        SnoopKind::RepeatedBreakGlass => {
            let n = rng.gen_range(3..=4);
            for k in 0..n {
                if let Some(p) = other_department_patient(rng, pats, doc.dept) {
                    let t = shift_start + (k as u64 / 2) * DAY_MS + rng.gen_range(0..shift_len);
                    break_glass(b, rng, &doc.id, &pats[p].id, t, inc);
                }
            }
        }
        SnoopKind::ManyPatients => {
            let t0 = in_shift(rng);
            let n = rng.gen_range(15..=25);
            for (k, p) in colleagues_patients.choose_multiple(rng, n).enumerate() {
                b.read(
                    t0 + k as u64 * 20_000,
                    &doc.id,
                    &pats[*p].id,
                    ReadVia::Department,
                    inc,
                );
            }
        }
    }
}

/// Precision and recall of one rule (or of all rules together).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RuleRow {
    /// `None` for the overall row.
    pub rule: Option<Rule>,
    pub alerts: u64,
    /// Alerts on injected snooping.
    pub true_alerts: u64,
    /// Incidents of the kind this rule is meant for (all incidents overall).
    pub incidents: u64,
    /// Of those, incidents with any alert.
    pub detected: u64,
    /// Of those, incidents with an alert from this very rule.
    pub detected_by_rule: u64,
}

impl RuleRow {
    pub fn precision(&self) -> f64 {
        ratio(self.true_alerts, self.alerts)
    }

    pub fn recall(&self) -> f64 {
        ratio(self.detected, self.incidents)
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        1.0
    } else {
        a as f64 / b as f64
    }
}

/// The learned score's precision and recall over reader-days at a threshold.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ScoreRow {
    pub threshold: f64,
    pub reader_days: u64,
    pub snoop_days: u64,
    pub flagged: u64,
    pub flagged_snoop: u64,
    /// The highest-scoring snoop day, described with its drivers.
    pub example: Option<String>,
}

impl ScoreRow {
    pub fn precision(&self) -> f64 {
        ratio(self.flagged_snoop, self.flagged)
    }

    pub fn recall(&self) -> f64 {
        ratio(self.flagged_snoop, self.snoop_days)
    }
}

/// The report of one evaluation run.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    pub config: EvalConfig,
    pub facts: u64,
    pub reads: u64,
    pub normal_reads: u64,
    /// Normal reads explained by a ledger fact and not flagged.
    pub normal_explained: u64,
    /// Normal reads by staff (patients reading their own data left out).
    pub normal_staff_reads: u64,
    /// Of those, explained by a ledger fact and not flagged.
    pub normal_staff_explained: u64,
    /// Normal reads explained per explanation (name, count), strongest first.
    pub explained_by: Vec<(&'static str, u64)>,
    pub rules: Vec<RuleRow>,
    pub overall: RuleRow,
    pub score: ScoreRow,
}

impl Report {
    pub fn explained_share(&self) -> f64 {
        ratio(self.normal_explained, self.normal_reads)
    }

    /// The same share over staff reads only (the harder half).
    pub fn staff_explained_share(&self) -> f64 {
        ratio(self.normal_staff_explained, self.normal_staff_reads)
    }
}

/// Generate the workload of `cfg`, run the monitor and the learned score over it, measure.
pub fn evaluate(cfg: &EvalConfig) -> Report {
    evaluate_workload(cfg, &generate(cfg))
}

/// The report of the monitor over `w`: the generated workload itself, or the facts a
/// real ledger gave back after executing it (`medchain monitor-eval`), labels carried.
pub fn evaluate_workload(cfg: &EvalConfig, w: &Workload) -> Report {
    let mut monitor = Monitor::new();
    let mut days: Vec<ReaderDay> = Vec::new();
    let mut rows: Vec<RuleRow> = Rule::ALL
        .iter()
        .map(|r| RuleRow {
            rule: Some(*r),
            ..RuleRow::default()
        })
        .collect();
    let mut overall = RuleRow::default();
    let mut detected: HashSet<usize> = HashSet::new();
    let mut detected_by: HashSet<(usize, Rule)> = HashSet::new();
    let mut explained_by: HashMap<&'static str, u64> = HashMap::new();
    let (mut reads, mut normal_reads, mut normal_explained) = (0u64, 0u64, 0u64);
    let mut snoop_times: HashMap<String, Vec<u64>> = HashMap::new();
    // Alerts name their read (block, reader, patient): that is how an alert raised later
    // (unusual hours waits for the reader to go on duty) finds its ground truth.
    let mut source: HashMap<(u64, String, String), Option<usize>> = HashMap::new();
    let mut alerts = Vec::new();
    let mut normal = Vec::new();
    for l in &w.facts {
        let applied = monitor.observe(&l.fact);
        alerts.extend(applied.alerts);
        days.extend(monitor.take_reader_days());
        let (user, patient) = match &l.fact.kind {
            FactKind::Read {
                reader, patient, ..
            } => (reader, patient),
            FactKind::BreakGlassOpened {
                doctor, patient, ..
            } => (doctor, patient),
            _ => continue,
        };
        let slot = source
            .entry((l.fact.block_height, user.clone(), patient.clone()))
            .or_insert(None);
        *slot = slot.or(l.incident);
        if l.fact.at_ms < w.measure_from_ms {
            continue;
        }
        if l.incident.is_some() {
            snoop_times
                .entry(user.clone())
                .or_default()
                .push(l.fact.at_ms);
        }
        if matches!(l.fact.kind, FactKind::Read { .. }) {
            reads += 1;
            if l.incident.is_none() {
                normal_reads += 1;
                normal.push((
                    (l.fact.block_height, user.clone(), patient.clone()),
                    applied.explanation,
                ));
            }
        }
    }
    alerts.extend(monitor.finish());
    days.extend(monitor.take_reader_days());
    let mut flagged: HashSet<(u64, String, String)> = HashSet::new();
    for a in &alerts {
        if a.at_ms < w.measure_from_ms {
            continue;
        }
        let key = (a.block_height, a.user_id.clone(), a.patient_id.clone());
        let incident = source.get(&key).copied().flatten();
        flagged.insert(key);
        overall.alerts += 1;
        if let Some(row) = rows.iter_mut().find(|r| r.rule == Some(a.rule)) {
            row.alerts += 1;
            if incident.is_some() {
                row.true_alerts += 1;
            }
        }
        if let Some(i) = incident {
            overall.true_alerts += 1;
            detected.insert(i);
            detected_by.insert((i, a.rule));
        }
    }
    let (mut normal_staff_reads, mut normal_staff_explained) = (0u64, 0u64);
    for (key, e) in normal {
        let own = e == Some(crate::explain::Explanation::OwnRecord);
        if !own {
            normal_staff_reads += 1;
        }
        if let (Some(e), false) = (e, flagged.contains(&key)) {
            normal_explained += 1;
            if !own {
                normal_staff_explained += 1;
            }
            *explained_by.entry(e.name()).or_default() += 1;
        }
    }
    for (i, inc) in w.incidents.iter().enumerate() {
        overall.incidents += 1;
        if detected.contains(&i) {
            overall.detected += 1;
        }
        if let Some(row) = rows.iter_mut().find(|r| r.rule == Some(inc.kind.rule())) {
            row.incidents += 1;
            if detected.contains(&i) {
                row.detected += 1;
            }
            if detected_by.contains(&(i, inc.kind.rule())) {
                row.detected_by_rule += 1;
            }
        }
    }
    overall.detected_by_rule = overall.detected;
    let score = score_days(cfg, &days, w.measure_from_ms, &snoop_times);
    let mut explained: Vec<(&'static str, u64)> = crate::explain::Explanation::ALL
        .iter()
        .map(|e| (e.name(), explained_by.get(e.name()).copied().unwrap_or(0)))
        .collect();
    explained.retain(|(_, n)| *n > 0);
    Report {
        config: cfg.clone(),
        facts: w.facts.len() as u64,
        reads,
        normal_reads,
        normal_explained,
        normal_staff_reads,
        normal_staff_explained,
        explained_by: explained,
        rules: rows,
        overall,
        score,
    }
}

/// Train one forest per organisation on its own readers' days and measure it.
fn score_days(
    cfg: &EvalConfig,
    days: &[ReaderDay],
    from_ms: u64,
    snoop_times: &HashMap<String, Vec<u64>>,
) -> ScoreRow {
    let mut out = ScoreRow {
        threshold: cfg.score_threshold,
        ..ScoreRow::default()
    };
    let mut orgs: Vec<u16> = days.iter().map(|d| d.organisation).collect();
    orgs.sort_unstable();
    orgs.dedup();
    let mut best: Option<(f64, String)> = None;
    for org in orgs {
        let mine: Vec<&ReaderDay> = days
            .iter()
            .filter(|d| d.organisation == org && d.starts_at_ms >= from_ms)
            .collect();
        let x: Vec<[f64; FEATURE_COUNT]> = mine.iter().map(|d| features(&d.tally)).collect();
        let options = ForestOptions {
            seed: cfg.seed ^ u64::from(org),
            ..ForestOptions::default()
        };
        let Ok(forest) = IsolationForest::train(&x, options) else {
            continue;
        };
        for (d, row) in mine.iter().zip(&x) {
            let s = forest.score(row);
            let snoop = snoop_times.get(&d.user_id).is_some_and(|ts| {
                ts.iter()
                    .any(|t| (d.starts_at_ms..d.starts_at_ms + DAY_MS).contains(t))
            });
            out.reader_days += 1;
            if snoop {
                out.snoop_days += 1;
                if best.as_ref().is_none_or(|(v, _)| s.value > *v) {
                    best = Some((
                        s.value,
                        format!("{} day {}: {}", d.user_id, d.day, s.describe()),
                    ));
                }
            }
            if s.value >= cfg.score_threshold {
                out.flagged += 1;
                if snoop {
                    out.flagged_snoop += 1;
                }
            }
        }
    }
    out.example = best.map(|(_, s)| s);
    out
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.config;
        writeln!(
            f,
            "seed={} weeks={} (warm-up {}) doctors={} organisations={} snoop_rate={}",
            c.seed, c.weeks, c.warmup_weeks, c.doctors, c.organisations, c.snoop_rate
        )?;
        writeln!(
            f,
            "facts={} reads measured={} normal reads={}",
            self.facts, self.reads, self.normal_reads
        )?;
        writeln!(
            f,
            "{:<28} {:>7} {:>6} {:>9} {:>9} {:>8} {:>8} {:>7}",
            "rule", "alerts", "true", "precision", "incidents", "detected", "by_rule", "recall"
        )?;
        for r in self.rules.iter().chain(std::iter::once(&self.overall)) {
            writeln!(
                f,
                "{:<28} {:>7} {:>6} {:>9.3} {:>9} {:>8} {:>8} {:>7.3}",
                r.rule.map_or("overall", Rule::name),
                r.alerts,
                r.true_alerts,
                r.precision(),
                r.incidents,
                r.detected,
                r.detected_by_rule,
                r.recall()
            )?;
        }
        writeln!(
            f,
            "explained share of normal reads: {:.4} ({} of {})",
            self.explained_share(),
            self.normal_explained,
            self.normal_reads
        )?;
        writeln!(
            f,
            "  staff reads only: {:.4} ({} of {})",
            self.staff_explained_share(),
            self.normal_staff_explained,
            self.normal_staff_reads
        )?;
        let parts: Vec<String> = self
            .explained_by
            .iter()
            .map(|(n, k)| format!("{n}={k}"))
            .collect();
        writeln!(f, "  by explanation: {}", parts.join(" "))?;
        let s = &self.score;
        writeln!(
            f,
            "learned score >= {:.2}: reader-days={} snoop days={} flagged={} precision={:.3} recall={:.3}",
            s.threshold,
            s.reader_days,
            s.snoop_days,
            s.flagged,
            s.precision(),
            s.recall()
        )?;
        if let Some(e) = &s.example {
            writeln!(f, "  top snoop day: {e}")?;
        }
        Ok(())
    }
}
