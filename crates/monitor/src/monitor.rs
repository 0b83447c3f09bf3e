//! The monitor as a sans-IO state machine: the node feeds it ledger facts in ledger order
//! and stores the alerts it returns. The same chain gives the same alerts on every replica
//! (ledger time only, no randomness, no iteration over unordered maps where the order
//! shows). Every piece of state has a limit, so a long chain or a hostile flood of facts
//! cannot grow it without bound; what a limit drops is counted.

use std::collections::{HashMap, HashSet, VecDeque};

use crate::explain::{
    explain, Explanation, ReadContext, ACTIVE_CARE_WINDOW_MS, CODE_EXPLAINS_MS, DAY_MS,
    DEPARTMENT_TREATS_WINDOW_MS, HOUR_MS, READER_ACTIVE_WINDOW_MS, RELATIONSHIP_WINDOW_MS,
};
use crate::facts::{Fact, FactKind, Grantee, ReadVia, Role};
use crate::rules::{
    baseline_median, daily_threshold, hourly_threshold, normalise_name, quietest_hour, surname,
    unusual_hour, Finding, Rule, VolumeWindow, BASELINE_DAYS, BREAK_GLASS_WINDOW_MS,
    BURST_MAX_DISTINCT, BURST_WINDOW_MS, ON_DUTY_WINDOW_MS, REPEATED_BREAK_GLASS_MIN,
    UNUSUAL_MIN_HISTORY_READS,
};

/// Limits on the monitor's state. The defaults fit a consortium of a few large hospitals
/// (a million users, tens of millions of care relationships) in a few GiB at most.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Users (readers and patients) tracked; reads by users beyond it are flagged.
    pub max_users: usize,
    /// (reader, patient) relationships kept; the least recently touched go first.
    pub max_pairs: usize,
    /// (organisation, department) names interned.
    pub max_departments: usize,
    /// Departments remembered per patient as treating them (the most recent win).
    pub max_departments_per_patient: usize,
    /// Departments remembered per reader as where they wrote recently.
    pub max_departments_per_reader: usize,
    /// Personal consents remembered per patient (the oldest go first).
    pub max_consents_per_patient: usize,
    /// Distinct patients counted per reader per day (beyond it the count saturates).
    pub max_distinct_per_day: usize,
    /// Reads kept per reader for the short-window rule.
    pub max_burst_entries: usize,
    /// Finished reader-days waiting for `take_reader_days` (the oldest are dropped).
    pub max_pending_days: usize,
    /// Unusual-hours findings waiting to see whether the reader goes on duty (beyond it
    /// the oldest is raised at once: a flood must not hide a read).
    pub max_pending_findings: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_users: 1_000_000,
            max_pairs: 20_000_000,
            max_departments: 100_000,
            max_departments_per_patient: 16,
            max_departments_per_reader: 8,
            max_consents_per_patient: 64,
            max_distinct_per_day: 10_000,
            max_burst_entries: 256,
            max_pending_days: 1_000_000,
            max_pending_findings: 100_000,
        }
    }
}

/// An alert: a read (or a break-glass opening) that a named rule flagged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Alert {
    /// `"{h}-{n}"`: the n-th alert raised while applying block h's facts (an unusual-hours
    /// alert is raised up to `ON_DUTY_WINDOW_MS` after its read, so h may be later than
    /// `block_height`).
    pub alert_id: String,
    pub user_id: String,
    pub patient_id: String,
    pub rule: Rule,
    pub explanation: String,
    pub at_ms: u64,
    pub block_height: u64,
}

/// What one fact did: the explanation of a read (if it was a read and something explains
/// it) and the alerts it raised.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Applied {
    pub explanation: Option<Explanation>,
    pub alerts: Vec<Alert>,
}

/// One reader's finished day, the input of the learned score.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReaderDay {
    pub user_id: String,
    pub organisation: u16,
    /// The reader's day number (days since the epoch, counted from their day start).
    pub day: u64,
    /// When the reader's day started: midnight UTC plus their quietest hour.
    pub starts_at_ms: u64,
    pub tally: DayTally,
}

/// Counts of one reader's day.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DayTally {
    pub reads: u32,
    pub distinct_patients: u32,
    /// Reads that nothing explains.
    pub unexplained: u32,
    /// Reads explained only by the reader's department.
    pub department_only: u32,
    /// Reads at an hour the reader almost never works.
    pub off_hours: u32,
    /// Most distinct patients within the short window during the day.
    pub max_burst_distinct: u32,
    pub break_glass_opened: u32,
    /// The reader's median day when the day started (`None` without enough history).
    pub baseline_reads: Option<u32>,
}

/// Running totals, for metrics and reports.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub facts: u64,
    pub reads: u64,
    /// Reads per explanation, indexed like `Explanation::ALL`.
    pub explained: [u64; Explanation::ALL.len()],
    pub unexplained: u64,
    /// Alerts per rule, indexed like `Rule::ALL`.
    pub alerts: [u64; Rule::ALL.len()],
    /// Facts ignored because a limit was reached (user or department table full).
    pub dropped_facts: u64,
    pub evicted_pairs: u64,
    pub dropped_days: u64,
}

impl Counters {
    /// Reads explained by `e`.
    pub fn explained_by(&self, e: Explanation) -> u64 {
        Explanation::ALL
            .iter()
            .position(|x| *x == e)
            .and_then(|i| self.explained.get(i).copied())
            .unwrap_or(0)
    }

    /// Alerts raised by `r`.
    pub fn alerts_for(&self, r: Rule) -> u64 {
        Rule::ALL
            .iter()
            .position(|x| *x == r)
            .and_then(|i| self.alerts.get(i).copied())
            .unwrap_or(0)
    }
}

/// How big the state is, for the bounded-memory test and for metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Footprint {
    pub users: usize,
    pub pairs: usize,
    pub departments: usize,
    pub pending_days: usize,
    /// The largest per-user list (consents, departments, burst entries, history days).
    pub largest_list: usize,
}

type UserIx = u32;
type DeptIx = u32;

#[derive(Debug)]
struct User {
    id: String,
    role: Option<Role>,
    organisation: u16,
    /// The (organisation, department) the user is registered in: for a department
    /// administrator, whose patients it oversees; never evidence of treatment.
    home_department: Option<DeptIx>,
    name: String,
    surname: String,
    reader: Option<Box<ReaderState>>,
    patient: Option<Box<PatientState>>,
}

#[derive(Debug, Default)]
struct PatientState {
    /// Departments that wrote a record for the patient, with the latest time.
    departments: Vec<(DeptIx, u64)>,
    /// Users the patient consented to personally.
    consents: VecDeque<UserIx>,
    /// Whether any record prescribes for the patient.
    has_prescription: bool,
}

#[derive(Debug)]
struct PastDay {
    day: u64,
    reads: u32,
    max_hour: u32,
    hours: [u32; 24],
}

#[derive(Debug, Default)]
struct Today {
    day: u64,
    starts_at_ms: u64,
    hours: [u32; 24],
    distinct: HashSet<UserIx>,
    tally: DayTally,
}

#[derive(Debug, Default)]
struct ReaderState {
    history: VecDeque<PastDay>,
    history_hours: [u32; 24],
    /// Where the reader's day starts after midnight UTC (their quietest hour).
    day_offset_ms: u64,
    baseline_day: Option<u32>,
    baseline_hour: Option<u32>,
    today: Option<Today>,
    burst: VecDeque<(u64, UserIx)>,
    break_glass: VecDeque<u64>,
    last_wrote_ms: Option<u64>,
    departments: Vec<(DeptIx, u64)>,
}

/// An unusual-hours read waiting `ON_DUTY_WINDOW_MS` for a record by its reader.
#[derive(Debug)]
struct PendingFinding {
    at_ms: u64,
    block_height: u64,
    reader: UserIx,
    patient: UserIx,
    finding: Finding,
}

#[derive(Clone, Copy, Debug, Default)]
struct Pair {
    wrote_ms: Option<u64>,
    prescribed_ms: Option<u64>,
    code_ms: Option<u64>,
    break_glass_until_ms: Option<u64>,
    touched_ms: u64,
}

/// The access monitor.
#[derive(Debug)]
pub struct Monitor {
    limits: Limits,
    now_ms: u64,
    users: Vec<User>,
    user_ix: HashMap<String, UserIx>,
    departments: HashMap<(u16, String), DeptIx>,
    staff_by_name: HashMap<(u16, String), UserIx>,
    pairs: HashMap<(UserIx, UserIx), Pair>,
    pending_days: VecDeque<ReaderDay>,
    pending_findings: VecDeque<PendingFinding>,
    alert_block: u64,
    alerts_in_block: u64,
    counters: Counters,
}

impl Default for Monitor {
    fn default() -> Self {
        Self::new()
    }
}

impl Monitor {
    /// A monitor with the default limits.
    pub fn new() -> Self {
        Self::with_limits(Limits::default())
    }

    pub fn with_limits(limits: Limits) -> Self {
        Self {
            limits,
            now_ms: 0,
            users: Vec::new(),
            user_ix: HashMap::new(),
            departments: HashMap::new(),
            staff_by_name: HashMap::new(),
            pairs: HashMap::new(),
            pending_days: VecDeque::new(),
            pending_findings: VecDeque::new(),
            alert_block: 0,
            alerts_in_block: 0,
            counters: Counters::default(),
        }
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Ledger time as far as the monitor has seen.
    pub fn now_ms(&self) -> u64 {
        self.now_ms
    }

    /// Apply one fact and return the alerts it raises.
    pub fn apply(&mut self, fact: &Fact) -> Vec<Alert> {
        self.observe(fact).alerts
    }

    /// Apply one fact; also say how a read was explained. Facts must come in ledger order;
    /// a fact whose time is before one already seen is taken as happening at that time
    /// (block times never go backwards on a valid chain).
    pub fn observe(&mut self, fact: &Fact) -> Applied {
        self.now_ms = self.now_ms.max(fact.at_ms);
        self.counters.facts += 1;
        if fact.block_height != self.alert_block {
            self.alert_block = fact.block_height;
            self.alerts_in_block = 0;
        }
        let mut out = Applied::default();
        self.release_findings(false, &mut out.alerts);
        match &fact.kind {
            FactKind::UserRegistered {
                user_id,
                role,
                organisation,
                department,
                display_name,
            } => self.register(user_id, *role, *organisation, department, display_name),
            FactKind::RecordWritten {
                doctor,
                patient,
                department,
                prescribes,
            } => self.record_written(doctor, patient, department, *prescribes),
            FactKind::ConsentGranted { patient, grantee } => self.consent(patient, grantee, true),
            FactKind::ConsentRevoked { patient, grantee } => self.consent(patient, grantee, false),
            FactKind::ConsentCodeUsed { doctor, patient } => {
                let now = self.now_ms;
                if let Some(pair) = self.pair_of(doctor, patient) {
                    pair.code_ms = Some(now);
                }
            }
            FactKind::BreakGlassOpened {
                doctor,
                patient,
                until_ms,
            } => {
                if let Some(a) = self.break_glass(fact, doctor, patient, *until_ms) {
                    out.alerts.push(a);
                }
            }
            FactKind::Read {
                reader,
                patient,
                via,
            } => {
                let (explanation, alert) = self.read(fact, reader, patient, *via);
                out.explanation = explanation;
                out.alerts.extend(alert);
            }
        }
        out
    }

    /// At the end of a stream: raise the unusual-hours findings still waiting and close
    /// every reader's day. The node never needs it (both happen as ledger time moves on).
    pub fn finish(&mut self) -> Vec<Alert> {
        let mut out = Vec::new();
        self.release_findings(true, &mut out);
        self.flush_days();
        out
    }

    /// Raise the waiting unusual-hours findings whose window has passed (all of them with
    /// `all`), unless the reader wrote a record since the read: then they were on duty.
    fn release_findings(&mut self, all: bool, out: &mut Vec<Alert>) {
        let now = self.now_ms;
        while self
            .pending_findings
            .front()
            .is_some_and(|f| all || now.saturating_sub(f.at_ms) > ON_DUTY_WINDOW_MS)
        {
            let Some(f) = self.pending_findings.pop_front() else {
                break;
            };
            let wrote_since = self
                .user(f.reader)
                .and_then(|u| u.reader.as_ref())
                .and_then(|r| r.last_wrote_ms)
                .is_some_and(|t| t >= f.at_ms && t <= f.at_ms + ON_DUTY_WINDOW_MS);
            if !wrote_since {
                out.push(self.alert(f.at_ms, f.block_height, f.reader, f.patient, f.finding));
            }
        }
    }

    /// Close every reader's current day (at the end of a stream; the node never needs it,
    /// days close by themselves when ledger time moves on).
    pub fn flush_days(&mut self) {
        for ix in 0..self.users.len() {
            self.close_day(ix as UserIx);
        }
    }

    /// Take the finished reader-days (staff only) since the last call, in order.
    pub fn take_reader_days(&mut self) -> Vec<ReaderDay> {
        self.pending_days.drain(..).collect()
    }

    /// How big the state is now.
    pub fn footprint(&self) -> Footprint {
        let mut largest = 0;
        for u in &self.users {
            if let Some(r) = &u.reader {
                largest = largest
                    .max(r.history.len())
                    .max(r.burst.len())
                    .max(r.break_glass.len())
                    .max(r.departments.len())
                    .max(r.today.as_ref().map_or(0, |t| t.distinct.len()));
            }
            if let Some(p) = &u.patient {
                largest = largest.max(p.consents.len()).max(p.departments.len());
            }
        }
        Footprint {
            users: self.users.len(),
            pairs: self.pairs.len(),
            departments: self.departments.len(),
            pending_days: self.pending_days.len(),
            largest_list: largest,
        }
    }

    fn intern_user(&mut self, id: &str) -> Option<UserIx> {
        if let Some(ix) = self.user_ix.get(id) {
            return Some(*ix);
        }
        if self.users.len() >= self.limits.max_users {
            return None;
        }
        let ix = UserIx::try_from(self.users.len()).ok()?;
        self.users.push(User {
            id: id.to_string(),
            role: None,
            organisation: 0,
            home_department: None,
            name: String::new(),
            surname: String::new(),
            reader: None,
            patient: None,
        });
        self.user_ix.insert(id.to_string(), ix);
        Some(ix)
    }

    fn intern_department(&mut self, organisation: u16, department: &str) -> Option<DeptIx> {
        let key = (organisation, department.to_string());
        if let Some(ix) = self.departments.get(&key) {
            return Some(*ix);
        }
        if self.departments.len() >= self.limits.max_departments {
            return None;
        }
        let ix = DeptIx::try_from(self.departments.len()).ok()?;
        self.departments.insert(key, ix);
        Some(ix)
    }

    fn user(&self, ix: UserIx) -> Option<&User> {
        self.users.get(ix as usize)
    }

    fn user_mut(&mut self, ix: UserIx) -> Option<&mut User> {
        self.users.get_mut(ix as usize)
    }

    /// The registered department is kept only for oversight by the department's
    /// administrator: belonging to a department is not evidence of treating its
    /// patients, writing records there is (see `department_treats`).
    fn register(
        &mut self,
        id: &str,
        role: Role,
        organisation: u16,
        department: &str,
        display_name: &str,
    ) {
        let Some(ix) = self.intern_user(id) else {
            self.counters.dropped_facts += 1;
            return;
        };
        let home = self.intern_department(organisation, department);
        let name = normalise_name(display_name);
        if role.is_staff() && !name.is_empty() {
            self.staff_by_name
                .entry((organisation, name.clone()))
                .or_insert(ix);
        }
        if let Some(u) = self.user_mut(ix) {
            u.role = Some(role);
            u.organisation = organisation;
            u.home_department = home;
            u.surname = surname(display_name);
            u.name = name;
        }
    }

    fn record_written(&mut self, doctor: &str, patient: &str, department: &str, prescribes: bool) {
        let now = self.now_ms;
        let (Some(d), Some(p)) = (self.intern_user(doctor), self.intern_user(patient)) else {
            self.counters.dropped_facts += 1;
            return;
        };
        let organisation = self.user(d).map_or(0, |u| u.organisation);
        let Some(dept) = self.intern_department(organisation, department) else {
            self.counters.dropped_facts += 1;
            return;
        };
        let per_reader = self.limits.max_departments_per_reader;
        let per_patient = self.limits.max_departments_per_patient;
        if let Some(u) = self.user_mut(d) {
            let r = u.reader.get_or_insert_with(Box::default);
            r.last_wrote_ms = Some(now);
            touch_department(&mut r.departments, dept, now, per_reader);
        }
        if let Some(u) = self.user_mut(p) {
            let ps = u.patient.get_or_insert_with(Box::default);
            touch_department(&mut ps.departments, dept, now, per_patient);
            ps.has_prescription |= prescribes;
        }
        if let Some(pair) = self.pair(d, p) {
            pair.wrote_ms = Some(now);
            if prescribes {
                pair.prescribed_ms = Some(now);
            }
        }
    }

    fn consent(&mut self, patient: &str, grantee: &Grantee, granted: bool) {
        // A consent to a department is what lets its doctors read; it does not say that
        // one of them treats the patient, so only personal consents explain reads.
        let Grantee::User(user) = grantee else {
            return;
        };
        let (Some(p), Some(g)) = (self.intern_user(patient), self.intern_user(user)) else {
            self.counters.dropped_facts += 1;
            return;
        };
        let cap = self.limits.max_consents_per_patient;
        if let Some(u) = self.user_mut(p) {
            let ps = u.patient.get_or_insert_with(Box::default);
            ps.consents.retain(|x| *x != g);
            if granted {
                if ps.consents.len() >= cap {
                    ps.consents.pop_front();
                }
                ps.consents.push_back(g);
            }
        }
    }

    fn break_glass(
        &mut self,
        fact: &Fact,
        doctor: &str,
        patient: &str,
        until_ms: u64,
    ) -> Option<Alert> {
        let now = self.now_ms;
        let (Some(d), Some(p)) = (self.intern_user(doctor), self.intern_user(patient)) else {
            self.counters.dropped_facts += 1;
            return None;
        };
        if let Some(pair) = self.pair(d, p) {
            pair.break_glass_until_ms = Some(pair.break_glass_until_ms.unwrap_or(0).max(until_ms));
        }
        self.roll_day(d);
        let cap = self.limits.max_burst_entries;
        let count = {
            let u = self.user_mut(d)?;
            let r = u.reader.get_or_insert_with(Box::default);
            while r
                .break_glass
                .front()
                .is_some_and(|t| now.saturating_sub(*t) > BREAK_GLASS_WINDOW_MS)
            {
                r.break_glass.pop_front();
            }
            if r.break_glass.len() >= cap {
                r.break_glass.pop_front();
            }
            r.break_glass.push_back(now);
            if let Some(t) = r.today.as_mut() {
                t.tally.break_glass_opened += 1;
            }
            r.break_glass.len()
        };
        (count >= REPEATED_BREAK_GLASS_MIN).then(|| {
            self.alert(
                fact.at_ms,
                fact.block_height,
                d,
                p,
                Finding::RepeatedBreakGlass { count },
            )
        })
    }

    fn read(
        &mut self,
        fact: &Fact,
        reader: &str,
        patient: &str,
        via: ReadVia,
    ) -> (Option<Explanation>, Option<Alert>) {
        self.counters.reads += 1;
        let now = self.now_ms;
        let (Some(r), Some(p)) = (self.intern_user(reader), self.intern_user(patient)) else {
            // A full user table must not hide reads: flag them.
            self.counters.dropped_facts += 1;
            self.counters.unexplained += 1;
            let alert = Alert {
                alert_id: self.next_alert_id(),
                user_id: reader.to_string(),
                patient_id: patient.to_string(),
                rule: Rule::NoTreatmentRelationship,
                explanation: Finding::NoTreatmentRelationship.explanation(reader, patient),
                at_ms: fact.at_ms,
                block_height: fact.block_height,
            };
            self.count_alert(Rule::NoTreatmentRelationship);
            return (None, Some(alert));
        };
        let ctx = self.context(r, p, via, now);
        let explanation = explain(&ctx);
        match explanation {
            Some(e) => {
                if let Some(i) = Explanation::ALL.iter().position(|x| *x == e) {
                    self.counters.explained[i] += 1;
                }
            }
            None => self.counters.unexplained += 1,
        }
        let hour = ((now % DAY_MS) / HOUR_MS) as usize;
        self.roll_day(r);
        let limits = self.limits.clone();
        let (burst_distinct, day_reads, hour_reads, baseline_day, baseline_hour, history, on_duty) = {
            let Some(u) = self.user_mut(r) else {
                return (explanation, None);
            };
            let rs = u.reader.get_or_insert_with(Box::default);
            while rs
                .burst
                .front()
                .is_some_and(|(t, _)| now.saturating_sub(*t) > BURST_WINDOW_MS)
            {
                rs.burst.pop_front();
            }
            if rs.burst.len() >= limits.max_burst_entries {
                rs.burst.pop_front();
            }
            rs.burst.push_back((now, p));
            let mut seen: Vec<UserIx> = rs.burst.iter().map(|(_, x)| *x).collect();
            seen.sort_unstable();
            seen.dedup();
            let burst_distinct = seen.len();
            let history = rs.history_hours;
            let off_hours = unusual_hour(&history, hour).is_some();
            let today = rs.today.get_or_insert_with(Today::default);
            today.tally.reads += 1;
            if let Some(h) = today.hours.get_mut(hour) {
                *h += 1;
            }
            if today.distinct.len() < limits.max_distinct_per_day {
                today.distinct.insert(p);
            }
            today.tally.distinct_patients = today.distinct.len() as u32;
            match explanation {
                None => today.tally.unexplained += 1,
                Some(Explanation::DepartmentTreats) => today.tally.department_only += 1,
                Some(_) => {}
            }
            if off_hours {
                today.tally.off_hours += 1;
            }
            today.tally.max_burst_distinct =
                today.tally.max_burst_distinct.max(burst_distinct as u32);
            let on_duty = rs
                .last_wrote_ms
                .is_some_and(|t| now.saturating_sub(t) <= ON_DUTY_WINDOW_MS);
            (
                burst_distinct,
                today.tally.reads,
                today.hours.get(hour).copied().unwrap_or(0),
                rs.baseline_day,
                rs.baseline_hour,
                history,
                on_duty,
            )
        };
        if explanation.is_some_and(Explanation::is_personal) {
            return (explanation, None);
        }
        let finding = self
            .relationship_finding(r, p, explanation)
            .or_else(|| {
                (burst_distinct > BURST_MAX_DISTINCT).then_some(Finding::ManyPatientsShortWindow {
                    distinct: burst_distinct,
                })
            })
            .or_else(|| {
                let threshold = daily_threshold(baseline_day);
                (day_reads > threshold).then_some(Finding::VolumeAboveBaseline {
                    window: VolumeWindow::Day,
                    count: day_reads,
                    baseline: baseline_day,
                    threshold,
                })
            })
            .or_else(|| {
                let threshold = hourly_threshold(baseline_hour);
                (hour_reads > threshold).then_some(Finding::VolumeAboveBaseline {
                    window: VolumeWindow::Hour,
                    count: hour_reads,
                    baseline: baseline_hour,
                    threshold,
                })
            })
            .or_else(|| {
                if on_duty {
                    return None;
                }
                unusual_hour(&history, hour).map(|(share_permille, history_reads)| {
                    Finding::UnusualHours {
                        hour_utc: hour as u8,
                        share_permille,
                        history_reads,
                    }
                })
            })
            .or_else(|| {
                explanation
                    .is_none()
                    .then_some(Finding::NoTreatmentRelationship)
            });
        match finding {
            Some(f @ Finding::UnusualHours { .. }) => {
                // Wait: a record by the reader within the window shows they are on duty.
                if self.pending_findings.len() >= limits.max_pending_findings {
                    if let Some(old) = self.pending_findings.pop_front() {
                        let a = self.alert(
                            old.at_ms,
                            old.block_height,
                            old.reader,
                            old.patient,
                            old.finding,
                        );
                        return (explanation, Some(a));
                    }
                }
                self.pending_findings.push_back(PendingFinding {
                    at_ms: fact.at_ms,
                    block_height: fact.block_height,
                    reader: r,
                    patient: p,
                    finding: f,
                });
                (explanation, None)
            }
            Some(f) => (
                explanation,
                Some(self.alert(fact.at_ms, fact.block_height, r, p, f)),
            ),
            None => (explanation, None),
        }
    }

    /// Co-worker and same-surname: a personal tie between reader and patient. A department
    /// relationship clears it only while the department has the patient in active care.
    fn relationship_finding(
        &self,
        r: UserIx,
        p: UserIx,
        explanation: Option<Explanation>,
    ) -> Option<Finding> {
        let reader = self.user(r)?;
        let patient = self.user(p)?;
        if r == p || !reader.role.is_some_and(Role::is_staff) || patient.role != Some(Role::Patient)
        {
            return None;
        }
        if explanation == Some(Explanation::DepartmentTreats)
            && self.department_treats(r, p, self.now_ms, ACTIVE_CARE_WINDOW_MS)
        {
            return None;
        }
        if !patient.name.is_empty() {
            if let Some(staff) = self
                .staff_by_name
                .get(&(reader.organisation, patient.name.clone()))
                .and_then(|s| self.user(*s))
            {
                return Some(Finding::CoWorker {
                    staff_id: staff.id.clone(),
                });
            }
        }
        (!reader.surname.is_empty() && reader.surname == patient.surname).then(|| {
            Finding::SameSurname {
                surname: reader.surname.clone(),
            }
        })
    }

    /// Whether a department the reader wrote in recently wrote for the patient within
    /// `window_ms`.
    fn department_treats(&self, r: UserIx, p: UserIx, now: u64, window_ms: u64) -> bool {
        let reader = self.user(r).and_then(|u| u.reader.as_deref());
        let patient = self.user(p).and_then(|u| u.patient.as_deref());
        match (reader, patient) {
            (Some(rs), Some(ps)) => rs.departments.iter().any(|(d, t_reader)| {
                now.saturating_sub(*t_reader) <= READER_ACTIVE_WINDOW_MS
                    && ps.departments.iter().any(|(pd, t_patient)| {
                        pd == d && now.saturating_sub(*t_patient) <= window_ms
                    })
            }),
            _ => false,
        }
    }

    fn context(&self, r: UserIx, p: UserIx, via: ReadVia, now: u64) -> ReadContext {
        let within =
            |t: Option<u64>, window: u64| t.is_some_and(|t| now.saturating_sub(t) <= window);
        let pair = self.pairs.get(&(r, p)).copied().unwrap_or_default();
        let reader = self.user(r);
        let patient = self.user(p).and_then(|u| u.patient.as_deref());
        let reader_role = reader.and_then(|u| u.role);
        let patient_home = self.user(p).and_then(|u| u.home_department);
        let department_oversight = via == ReadVia::Department
            && reader_role == Some(Role::Department)
            && patient_home.is_some()
            && reader.and_then(|u| u.home_department) == patient_home;
        let department_treats = self.department_treats(r, p, now, DEPARTMENT_TREATS_WINDOW_MS);
        ReadContext {
            own: r == p,
            prescribed: within(pair.prescribed_ms, RELATIONSHIP_WINDOW_MS),
            wrote_record: within(pair.wrote_ms, RELATIONSHIP_WINDOW_MS),
            personal_consent: patient.is_some_and(|ps| ps.consents.contains(&r)),
            one_time_code: within(pair.code_ms, CODE_EXPLAINS_MS),
            break_glass_open: pair.break_glass_until_ms.is_some_and(|u| now <= u),
            prescription_code: via == ReadVia::PharmacyCode
                && reader_role == Some(Role::Pharmacy)
                && patient.is_some_and(|ps| ps.has_prescription),
            department_oversight,
            department_treats,
        }
    }

    /// Start reader `r`'s day at the current time, closing the previous one if it ended.
    /// A reader's day starts at the hour they are least active (midnight for most, the
    /// morning for a night worker), so one night shift is one day.
    fn roll_day(&mut self, r: UserIx) {
        let now = self.now_ms;
        let Some(rs) = self.user(r).and_then(|u| u.reader.as_ref()) else {
            self.start_day(r, 0);
            return;
        };
        let index = now.saturating_sub(rs.day_offset_ms) / DAY_MS;
        match rs.today.as_ref().map(|t| t.day) {
            Some(d) if index <= d => {}
            Some(d) => {
                self.close_day(r);
                self.start_day(r, d + 1);
            }
            None => self.start_day(r, 0),
        }
    }

    /// Start the reader's next day, numbered at least `min_day`.
    fn start_day(&mut self, r: UserIx, min_day: u64) {
        let now = self.now_ms;
        let Some(u) = self.user_mut(r) else { return };
        let rs = u.reader.get_or_insert_with(Box::default);
        let approx_day = now.saturating_sub(rs.day_offset_ms) / DAY_MS;
        while rs
            .history
            .front()
            .is_some_and(|d| d.day + BASELINE_DAYS <= approx_day)
        {
            rs.history.pop_front();
        }
        let mut hours = [0u32; 24];
        for d in &rs.history {
            for (acc, h) in hours.iter_mut().zip(d.hours.iter()) {
                *acc += h;
            }
        }
        rs.history_hours = hours;
        if hours.iter().sum::<u32>() >= UNUSUAL_MIN_HISTORY_READS {
            rs.day_offset_ms = quietest_hour(&hours) as u64 * HOUR_MS;
        }
        let day = min_day.max(now.saturating_sub(rs.day_offset_ms) / DAY_MS);
        rs.baseline_day =
            baseline_median(&mut rs.history.iter().map(|d| d.reads).collect::<Vec<_>>());
        rs.baseline_hour =
            baseline_median(&mut rs.history.iter().map(|d| d.max_hour).collect::<Vec<_>>());
        rs.today = Some(Today {
            day,
            starts_at_ms: day * DAY_MS + rs.day_offset_ms,
            tally: DayTally {
                baseline_reads: rs.baseline_day,
                ..DayTally::default()
            },
            ..Today::default()
        });
    }

    fn close_day(&mut self, r: UserIx) {
        let max_pending = self.limits.max_pending_days;
        let Some(u) = self.user_mut(r) else { return };
        let is_staff = u.role.is_some_and(Role::is_staff);
        let user_id = u.id.clone();
        let organisation = u.organisation;
        let Some(rs) = u.reader.as_mut() else { return };
        let Some(today) = rs.today.take() else { return };
        if today.tally.reads == 0 && today.tally.break_glass_opened == 0 {
            return;
        }
        if today.tally.reads > 0 {
            if rs.history.len() >= BASELINE_DAYS as usize {
                rs.history.pop_front();
            }
            rs.history.push_back(PastDay {
                day: today.day,
                reads: today.tally.reads,
                max_hour: today.hours.iter().copied().max().unwrap_or(0),
                hours: today.hours,
            });
        }
        if is_staff {
            if self.pending_days.len() >= max_pending {
                self.pending_days.pop_front();
                self.counters.dropped_days += 1;
            }
            self.pending_days.push_back(ReaderDay {
                user_id,
                organisation,
                day: today.day,
                starts_at_ms: today.starts_at_ms,
                tally: today.tally,
            });
        }
    }

    fn pair_of(&mut self, a: &str, b: &str) -> Option<&mut Pair> {
        let (Some(x), Some(y)) = (self.intern_user(a), self.intern_user(b)) else {
            self.counters.dropped_facts += 1;
            return None;
        };
        self.pair(x, y)
    }

    fn pair(&mut self, a: UserIx, b: UserIx) -> Option<&mut Pair> {
        let now = self.now_ms;
        if !self.pairs.contains_key(&(a, b)) && self.pairs.len() >= self.limits.max_pairs {
            self.evict_pairs();
        }
        let pair = self.pairs.entry((a, b)).or_default();
        pair.touched_ms = now;
        Some(pair)
    }

    /// Drop the least recently touched tenth of the relationships (ties broken by key, so
    /// every replica drops the same ones).
    fn evict_pairs(&mut self) {
        let keep = self.limits.max_pairs - self.limits.max_pairs / 10 - 1;
        let mut all: Vec<(u64, (UserIx, UserIx))> =
            self.pairs.iter().map(|(k, v)| (v.touched_ms, *k)).collect();
        all.sort_unstable();
        let drop = all.len().saturating_sub(keep);
        for (_, k) in all.into_iter().take(drop) {
            self.pairs.remove(&k);
            self.counters.evicted_pairs += 1;
        }
    }

    fn next_alert_id(&mut self) -> String {
        let id = format!("{}-{}", self.alert_block, self.alerts_in_block);
        self.alerts_in_block += 1;
        id
    }

    fn count_alert(&mut self, rule: Rule) {
        if let Some(i) = Rule::ALL.iter().position(|x| *x == rule) {
            self.counters.alerts[i] += 1;
        }
    }

    fn alert(
        &mut self,
        at_ms: u64,
        block_height: u64,
        r: UserIx,
        p: UserIx,
        finding: Finding,
    ) -> Alert {
        let reader = self.user(r).map(|u| u.id.clone()).unwrap_or_default();
        let patient = self.user(p).map(|u| u.id.clone()).unwrap_or_default();
        let rule = finding.rule();
        self.count_alert(rule);
        Alert {
            alert_id: self.next_alert_id(),
            explanation: finding.explanation(&reader, &patient),
            user_id: reader,
            patient_id: patient,
            rule,
            at_ms,
            block_height,
        }
    }
}

/// Remember that department `dept` acted at `now`, keeping at most `cap` (the oldest go).
fn touch_department(list: &mut Vec<(DeptIx, u64)>, dept: DeptIx, now: u64, cap: usize) {
    if let Some(e) = list.iter_mut().find(|(d, _)| *d == dept) {
        e.1 = now;
        return;
    }
    if list.len() >= cap.max(1) {
        if let Some(oldest) = list
            .iter()
            .enumerate()
            .min_by_key(|(_, (d, t))| (*t, *d))
            .map(|(i, _)| i)
        {
            list.swap_remove(oldest);
        }
    }
    list.push((dept, now));
}
