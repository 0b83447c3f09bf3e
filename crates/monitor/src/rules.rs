//! The named rules for reads nothing personal explains, their thresholds, and the sentence
//! each alert carries for a privacy officer. Rules look only at ledger facts and ledger
//! time, so every replica flags the same reads. Each reader is compared with their own
//! history (baseline volume, usual hours), never with an organisation-wide average, so a
//! night-shift doctor or a busy ward is not flagged for being what it is.

use crate::explain::{DAY_MS, MINUTE_MS};

/// Days of a reader's own history that make their baseline and usual hours: four weeks
/// holds every weekday four times and forgets a rotation a month after it ended.
pub const BASELINE_DAYS: u64 = 28;
/// Fewest active days before a reader's median counts as a baseline; until then only the
/// new-reader floor applies (a median of two days is noise).
pub const MIN_BASELINE_DAYS: usize = 5;
/// A day's reads are far above baseline beyond this many times the reader's median day.
/// Three: a busy day or covering a colleague doubles a day, it rarely triples it.
pub const DAILY_FACTOR: u32 = 3;
/// Never flag a day below this many reads, whatever the baseline: a doctor whose median
/// is 3 reads is not snooping at 10.
pub const DAILY_FLOOR: u32 = 40;
/// Daily threshold for a reader without a baseline yet (twice the floor: we know nothing).
pub const NEW_READER_DAILY_THRESHOLD: u32 = 2 * DAILY_FLOOR;
/// An hour's reads are far above baseline beyond this many times the reader's median
/// busiest hour.
pub const HOURLY_FACTOR: u32 = 3;
/// Never flag an hour below this many reads (a ward round is a dozen patients).
pub const HOURLY_FLOOR: u32 = 15;
/// Hourly threshold for a reader without a baseline yet.
pub const NEW_READER_HOURLY_THRESHOLD: u32 = 2 * HOURLY_FLOOR;
/// Fewest reads of history before usual hours are judged (below that, every hour is new).
pub const UNUSUAL_MIN_HISTORY_READS: u32 = 50;
/// An hour is unusual for a reader when fewer than this share (per mille) of their past
/// reads fell within one hour of it: 2 % is "almost never", not "less often".
pub const UNUSUAL_MAX_SHARE_PERMILLE: u32 = 20;
/// A reader who wrote a record within this time is demonstrably on duty, so their reads are
/// not flagged for the hour (a day doctor covering a night writes notes; a snooper does not).
pub const ON_DUTY_WINDOW_MS: u64 = 2 * 60 * MINUTE_MS;
/// Break-glass openings by one doctor are counted over this window.
pub const BREAK_GLASS_WINDOW_MS: u64 = 7 * DAY_MS;
/// The third opening in the window and later ones are flagged: emergencies happen, but
/// rarely three times a week to one doctor (the ledger's own limit is 3 per 24 h).
pub const REPEATED_BREAK_GLASS_MIN: usize = 3;
/// Distinct patients are counted over this sliding window.
pub const BURST_WINDOW_MS: u64 = 10 * MINUTE_MS;
/// More distinct patients than this in the window is a trawl, not care (no one treats a
/// patient a minute; a quick ward round review stays below it).
pub const BURST_MAX_DISTINCT: usize = 12;

/// A named rule. The names are stable: the API, reviews and reports use them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rule {
    NoTreatmentRelationship,
    VolumeAboveBaseline,
    UnusualHours,
    SameSurname,
    CoWorker,
    RepeatedBreakGlass,
    ManyPatientsShortWindow,
}

impl Rule {
    /// Every rule, in the order they are tried on a read (most specific first; one alert
    /// per read at most). `RepeatedBreakGlass` is tried on break-glass openings instead.
    pub const ALL: [Rule; 7] = [
        Rule::CoWorker,
        Rule::SameSurname,
        Rule::ManyPatientsShortWindow,
        Rule::VolumeAboveBaseline,
        Rule::UnusualHours,
        Rule::NoTreatmentRelationship,
        Rule::RepeatedBreakGlass,
    ];

    /// The stable snake_case name.
    pub fn name(self) -> &'static str {
        match self {
            Rule::NoTreatmentRelationship => "no_treatment_relationship",
            Rule::VolumeAboveBaseline => "volume_above_baseline",
            Rule::UnusualHours => "unusual_hours",
            Rule::SameSurname => "same_surname",
            Rule::CoWorker => "co_worker",
            Rule::RepeatedBreakGlass => "repeated_break_glass",
            Rule::ManyPatientsShortWindow => "many_patients_short_window",
        }
    }

    /// The rule called `name`, if any.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.name() == name)
    }

    /// What the rule means, in one sentence, for a privacy officer.
    pub fn describe(self) -> &'static str {
        match self {
            Rule::NoTreatmentRelationship => {
                "The reader opened a patient's data with no sign on the ledger that they treat the patient."
            }
            Rule::VolumeAboveBaseline => {
                "The reader opened far more records than they usually do in a day or an hour."
            }
            Rule::UnusualHours => {
                "The reader opened a record at an hour they almost never work, without being on duty."
            }
            Rule::SameSurname => {
                "The reader opened the data of a patient who shares their surname, without treating them."
            }
            Rule::CoWorker => {
                "The reader opened the data of a colleague registered as a patient, without treating them."
            }
            Rule::RepeatedBreakGlass => {
                "The doctor used emergency (break-glass) access several times within a week."
            }
            Rule::ManyPatientsShortWindow => {
                "The reader opened many different patients' data within a few minutes."
            }
        }
    }
}

/// Which window a volume finding is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VolumeWindow {
    Day,
    Hour,
}

/// A rule that fired, with the evidence its sentence names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Finding {
    NoTreatmentRelationship,
    VolumeAboveBaseline {
        window: VolumeWindow,
        count: u32,
        /// The reader's median day (or busiest hour); `None` for a reader without one yet.
        baseline: Option<u32>,
        threshold: u32,
    },
    UnusualHours {
        hour_utc: u8,
        share_permille: u32,
        history_reads: u32,
    },
    SameSurname {
        surname: String,
    },
    CoWorker {
        staff_id: String,
    },
    RepeatedBreakGlass {
        count: usize,
    },
    ManyPatientsShortWindow {
        distinct: usize,
    },
}

impl Finding {
    /// The rule this finding is for.
    pub fn rule(&self) -> Rule {
        match self {
            Finding::NoTreatmentRelationship => Rule::NoTreatmentRelationship,
            Finding::VolumeAboveBaseline { .. } => Rule::VolumeAboveBaseline,
            Finding::UnusualHours { .. } => Rule::UnusualHours,
            Finding::SameSurname { .. } => Rule::SameSurname,
            Finding::CoWorker { .. } => Rule::CoWorker,
            Finding::RepeatedBreakGlass { .. } => Rule::RepeatedBreakGlass,
            Finding::ManyPatientsShortWindow { .. } => Rule::ManyPatientsShortWindow,
        }
    }

    /// One sentence naming the people and the numbers.
    pub fn explanation(&self, reader: &str, patient: &str) -> String {
        match self {
            Finding::NoTreatmentRelationship => format!(
                "{reader} opened the data of patient {patient}, but the ledger shows no record, \
                 prescription, personal consent, one-time code, break-glass or treating \
                 department linking them to {patient}."
            ),
            Finding::VolumeAboveBaseline {
                window,
                count,
                baseline,
                threshold,
            } => {
                let (span, usual) = match window {
                    VolumeWindow::Day => ("today", "a typical day"),
                    VolumeWindow::Hour => ("this hour", "their busiest hour on a typical day"),
                };
                match baseline {
                    Some(b) => format!(
                        "{reader} has opened {count} records {span} (including patient \
                         {patient}), against {b} on {usual}; the alert threshold is {threshold}."
                    ),
                    None => format!(
                        "{reader} has opened {count} records {span} (including patient \
                         {patient}) and has no history yet; the alert threshold for a new \
                         reader is {threshold}."
                    ),
                }
            }
            Finding::UnusualHours {
                hour_utc,
                share_permille,
                history_reads,
            } => format!(
                "{reader} opened patient {patient}'s data at {hour_utc:02}:00 UTC, an hour \
                 in which only {}.{} % of their last {history_reads} reads fell, and wrote no \
                 record in the two hours before.",
                share_permille / 10,
                share_permille % 10
            ),
            Finding::SameSurname { surname } => format!(
                "{reader} opened the data of patient {patient}, who shares their surname \
                 ({surname}), without having treated them."
            ),
            Finding::CoWorker { staff_id } => {
                if staff_id == reader {
                    format!(
                        "{reader} opened the data of patient {patient}, who is registered \
                         with the reader's own name, without a record of care."
                    )
                } else {
                    format!(
                        "{reader} opened the data of patient {patient}, who is also staff \
                         member {staff_id} of their organisation, without having treated them."
                    )
                }
            }
            Finding::RepeatedBreakGlass { count } => format!(
                "{reader} opened emergency (break-glass) access to patient {patient}, their \
                 {count} break-glass opening in the last 7 days.",
                count = ordinal(*count)
            ),
            Finding::ManyPatientsShortWindow { distinct } => format!(
                "{reader} opened the data of {distinct} different patients within {} \
                 minutes, the latest being patient {patient}.",
                BURST_WINDOW_MS / MINUTE_MS
            ),
        }
    }
}

fn ordinal(n: usize) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

/// Titles dropped from the front of a name ("Dr Anna Smith" is the patient "Anna Smith").
const TITLES: [&str; 8] = ["dr", "prof", "mr", "mrs", "ms", "mx", "miss", "sir"];

/// A display name for comparison: lowercase letters and single spaces only, no title.
pub fn normalise_name(display_name: &str) -> String {
    let words: Vec<String> = display_name
        .split_whitespace()
        .map(|w| {
            w.chars()
                .filter(|c| c.is_alphabetic() || *c == '-')
                .flat_map(char::to_lowercase)
                .collect::<String>()
        })
        .filter(|w| !w.is_empty())
        .collect();
    let skip = words
        .iter()
        .take(words.len().saturating_sub(1))
        .take_while(|w| TITLES.contains(&w.as_str()))
        .count();
    words[skip..].join(" ")
}

/// The surname: the last word of the normalised name (empty for an empty name).
pub fn surname(display_name: &str) -> String {
    normalise_name(display_name)
        .rsplit(' ')
        .next()
        .unwrap_or_default()
        .to_string()
}

/// The median of `values` (the lower one of an even count), or `None` when there are
/// fewer than `MIN_BASELINE_DAYS`.
pub fn baseline_median(values: &mut [u32]) -> Option<u32> {
    if values.len() < MIN_BASELINE_DAYS {
        return None;
    }
    values.sort_unstable();
    values.get((values.len() - 1) / 2).copied()
}

/// Count above which a day is far above the reader's baseline.
pub fn daily_threshold(baseline: Option<u32>) -> u32 {
    match baseline {
        Some(b) => DAILY_FLOOR.max(b.saturating_mul(DAILY_FACTOR)),
        None => NEW_READER_DAILY_THRESHOLD,
    }
}

/// Count above which an hour is far above the reader's baseline.
pub fn hourly_threshold(baseline: Option<u32>) -> u32 {
    match baseline {
        Some(b) => HOURLY_FLOOR.max(b.saturating_mul(HOURLY_FACTOR)),
        None => NEW_READER_HOURLY_THRESHOLD,
    }
}

/// Whether `hour` (UTC, 0..24) is unusual given the reader's past reads per hour; returns
/// the per-mille share of past reads within one hour of it when it is.
pub fn unusual_hour(history: &[u32; 24], hour: usize) -> Option<(u32, u32)> {
    let total: u32 = history.iter().sum();
    if total < UNUSUAL_MIN_HISTORY_READS {
        return None;
    }
    let near: u32 = [23, 0, 1].iter().map(|d| history[(hour + d) % 24]).sum();
    let share = near.saturating_mul(1000) / total;
    (share < UNUSUAL_MAX_SHARE_PERMILLE).then_some((share, total))
}

/// The hour (UTC) that starts the reader's quietest three hours: where their day begins.
pub fn quietest_hour(history: &[u32; 24]) -> usize {
    (0..24)
        .min_by_key(|&h| {
            let near: u32 = [23, 0, 1].iter().map(|d| history[(h + d) % 24]).sum();
            (near, h)
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_stable_and_unique() {
        let mut names: Vec<_> = Rule::ALL.iter().map(|r| r.name()).collect();
        names.sort_unstable();
        assert_eq!(
            names,
            [
                "co_worker",
                "many_patients_short_window",
                "no_treatment_relationship",
                "repeated_break_glass",
                "same_surname",
                "unusual_hours",
                "volume_above_baseline"
            ]
        );
        for r in Rule::ALL {
            assert_eq!(Rule::from_name(r.name()), Some(r));
            assert!(r.describe().ends_with('.'));
        }
    }

    #[test]
    fn surnames_are_compared_normalised() {
        assert_eq!(surname("Dr. Anna  O'Brien"), "obrien");
        assert_eq!(surname("anna obrien"), "obrien");
        assert_eq!(surname("Jean-Luc PICARD"), "picard");
        assert_eq!(surname(""), "");
        assert_eq!(normalise_name(" Anna   Smith "), "anna smith");
        assert_eq!(normalise_name("Dr. Anna Smith"), "anna smith");
        assert_eq!(normalise_name("Prof Dr Anna Smith"), "anna smith");
        // A title alone is the name.
        assert_eq!(normalise_name("Dr"), "dr");
    }

    #[test]
    fn baseline_needs_enough_days() {
        assert_eq!(baseline_median(&mut [10, 12, 11, 9]), None);
        assert_eq!(baseline_median(&mut [10, 12, 11, 9, 30]), Some(11));
        assert_eq!(baseline_median(&mut [10, 12, 11, 9, 30, 8]), Some(10));
    }

    #[test]
    fn thresholds_have_floors() {
        assert_eq!(daily_threshold(Some(3)), DAILY_FLOOR);
        assert_eq!(daily_threshold(Some(20)), 60);
        assert_eq!(daily_threshold(None), NEW_READER_DAILY_THRESHOLD);
        assert_eq!(hourly_threshold(Some(2)), HOURLY_FLOOR);
        assert_eq!(hourly_threshold(Some(8)), 24);
    }

    #[test]
    fn unusual_hour_uses_own_history() {
        let mut day = [0u32; 24];
        day[8..17].fill(20);
        assert!(unusual_hour(&day, 3).is_some());
        assert!(unusual_hour(&day, 10).is_none());
        // The hour next to a working hour is not unusual.
        assert!(unusual_hour(&day, 17).is_none());
        let mut night = [0u32; 24];
        for h in [21, 22, 23, 0, 1, 2, 3, 4, 5] {
            night[h] = 20;
        }
        assert!(unusual_hour(&night, 3).is_none());
        assert!(unusual_hour(&night, 12).is_some());
        // Too little history: nothing is unusual yet.
        let mut few = [0u32; 24];
        few[9] = 10;
        assert!(unusual_hour(&few, 3).is_none());
    }

    #[test]
    fn a_night_workers_day_starts_in_the_morning() {
        let mut day = [0u32; 24];
        day[8..21].fill(10);
        assert_eq!(quietest_hour(&day), 0);
        let mut night = [0u32; 24];
        for h in [20, 21, 22, 23, 0, 1, 2, 3, 4, 5, 6, 7] {
            night[h] = 10;
        }
        assert_eq!(quietest_hour(&night), 9);
    }

    #[test]
    fn explanations_name_people_and_numbers() {
        let f = Finding::VolumeAboveBaseline {
            window: VolumeWindow::Day,
            count: 75,
            baseline: Some(14),
            threshold: 42,
        };
        let s = f.explanation("d001", "p042");
        assert!(s.contains("d001") && s.contains("p042") && s.contains("75") && s.contains("14"));
        let s = Finding::RepeatedBreakGlass { count: 3 }.explanation("d001", "p1");
        assert!(s.contains("3rd"), "{s}");
        let s = Finding::CoWorker {
            staff_id: "d009".into(),
        }
        .explanation("d001", "p7");
        assert!(s.contains("d009"));
        for f in [
            Finding::NoTreatmentRelationship,
            Finding::UnusualHours {
                hour_utc: 3,
                share_permille: 4,
                history_reads: 300,
            },
            Finding::SameSurname {
                surname: "smith".into(),
            },
            Finding::ManyPatientsShortWindow { distinct: 20 },
        ] {
            let s = f.explanation("d001", "p7");
            assert!(
                s.contains("d001") && s.contains("p7") && s.ends_with('.'),
                "{s}"
            );
        }
    }
}
