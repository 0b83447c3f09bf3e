//! A learned score next to the rules: an isolation forest (Liu, Ting and Zhou, "Isolation
//! Forest", ICDM 2008) over per-reader-per-day features, trained per organisation on its
//! own readers only. It is advice for a privacy officer, never a verdict: every score
//! comes with the features that isolated the day, their values and what is typical.
//!
//! Implemented here rather than taken from `extended-isolation-forest` (0.2.3): that crate
//! draws from `rand::thread_rng()` with no way to pass a seeded generator, so two replicas
//! (or two runs) would train different forests, and it reports no per-feature attribution.
//! The algorithm is a few dozen lines; the generator is ChaCha8 from a seed.

use rand::seq::index::sample;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::monitor::DayTally;

/// A per-reader-per-day feature.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Feature {
    Reads,
    DistinctPatients,
    UnexplainedShare,
    DepartmentOnlyShare,
    OffHoursShare,
    MaxBurstDistinct,
    BreakGlassOpened,
    VolumeRatio,
}

/// Number of features.
pub const FEATURE_COUNT: usize = 8;

impl Feature {
    pub const ALL: [Feature; FEATURE_COUNT] = [
        Feature::Reads,
        Feature::DistinctPatients,
        Feature::UnexplainedShare,
        Feature::DepartmentOnlyShare,
        Feature::OffHoursShare,
        Feature::MaxBurstDistinct,
        Feature::BreakGlassOpened,
        Feature::VolumeRatio,
    ];

    /// The stable snake_case name.
    pub fn name(self) -> &'static str {
        match self {
            Feature::Reads => "reads",
            Feature::DistinctPatients => "distinct_patients",
            Feature::UnexplainedShare => "unexplained_share",
            Feature::DepartmentOnlyShare => "department_only_share",
            Feature::OffHoursShare => "off_hours_share",
            Feature::MaxBurstDistinct => "max_burst_distinct",
            Feature::BreakGlassOpened => "break_glass_opened",
            Feature::VolumeRatio => "volume_ratio",
        }
    }
}

/// The feature vector of one reader's day.
pub fn features(t: &DayTally) -> [f64; FEATURE_COUNT] {
    let reads = f64::from(t.reads);
    let share = |n: u32| {
        if t.reads == 0 {
            0.0
        } else {
            f64::from(n) / reads
        }
    };
    let baseline = f64::from(t.baseline_reads.unwrap_or(crate::rules::DAILY_FLOOR).max(1));
    [
        reads,
        f64::from(t.distinct_patients),
        share(t.unexplained),
        share(t.department_only),
        share(t.off_hours),
        f64::from(t.max_burst_distinct),
        f64::from(t.break_glass_opened),
        reads / baseline,
    ]
}

/// Training options.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ForestOptions {
    pub trees: usize,
    /// Rows drawn per tree (the paper's psi; 256 is its default).
    pub sample_size: usize,
    pub seed: u64,
}

impl Default for ForestOptions {
    fn default() -> Self {
        Self {
            trees: 100,
            sample_size: 256,
            seed: 0x006d_6f6e_6974_6f72,
        }
    }
}

/// Limit on training rows (a year of a large organisation's reader-days is far below).
pub const MAX_TRAINING_ROWS: usize = 5_000_000;
/// Limit on trees.
pub const MAX_TREES: usize = 1_000;

/// Why a forest could not be trained.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ScoreError {
    #[error("no training rows")]
    Empty,
    #[error("{0} training rows exceed the limit of {MAX_TRAINING_ROWS}")]
    TooManyRows(usize),
    #[error("{0} trees exceed the limit of {MAX_TREES}")]
    TooManyTrees(usize),
    #[error("a training value is not finite")]
    NotFinite,
}

#[derive(Clone, Debug)]
enum Node {
    Leaf {
        size: usize,
    },
    Split {
        feature: usize,
        threshold: f64,
        left: usize,
        right: usize,
    },
}

#[derive(Clone, Debug)]
struct Tree {
    nodes: Vec<Node>,
}

/// A feature that drove a score: its share of the isolation, the day's value and the
/// organisation's typical (median) value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Driver {
    pub feature: Feature,
    /// Share of the isolating splits (weighted by how early they came), 0..1.
    pub weight: f64,
    pub value: f64,
    pub typical: f64,
}

/// A score: 0..1, about 0.5 for ordinary days, near 1 for days that are easy to isolate.
#[derive(Clone, Debug, PartialEq)]
pub struct Score {
    pub value: f64,
    /// The features that drove it, strongest first (at most `TOP_DRIVERS`).
    pub drivers: Vec<Driver>,
}

/// How many drivers a score reports.
pub const TOP_DRIVERS: usize = 3;

impl Score {
    /// "0.71: reads 96 (typical 14), volume_ratio 6.9 (typical 1.0)".
    pub fn describe(&self) -> String {
        let parts: Vec<String> = self
            .drivers
            .iter()
            .map(|d| {
                format!(
                    "{} {:.2} (typical {:.2})",
                    d.feature.name(),
                    d.value,
                    d.typical
                )
            })
            .collect();
        format!("{:.2}: {}", self.value, parts.join(", "))
    }
}

/// An isolation forest over day features.
#[derive(Clone, Debug)]
pub struct IsolationForest {
    trees: Vec<Tree>,
    sample_size: usize,
    medians: [f64; FEATURE_COUNT],
}

impl IsolationForest {
    /// Train on `rows` (one organisation's reader-days), deterministically from the seed.
    pub fn train(
        rows: &[[f64; FEATURE_COUNT]],
        options: ForestOptions,
    ) -> Result<Self, ScoreError> {
        if rows.is_empty() {
            return Err(ScoreError::Empty);
        }
        if rows.len() > MAX_TRAINING_ROWS {
            return Err(ScoreError::TooManyRows(rows.len()));
        }
        if options.trees > MAX_TREES {
            return Err(ScoreError::TooManyTrees(options.trees));
        }
        if rows.iter().flatten().any(|v| !v.is_finite()) {
            return Err(ScoreError::NotFinite);
        }
        let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
        let sample_size = options
            .sample_size
            .clamp(2, rows.len().max(2))
            .min(rows.len());
        let max_depth = (sample_size.max(2) as f64).log2().ceil() as usize;
        let mut trees = Vec::with_capacity(options.trees.max(1));
        for _ in 0..options.trees.max(1) {
            let picked: Vec<usize> = sample(&mut rng, rows.len(), sample_size).into_vec();
            let mut nodes = Vec::new();
            build(rows, picked, 0, max_depth, &mut rng, &mut nodes);
            trees.push(Tree { nodes });
        }
        let mut medians = [0.0; FEATURE_COUNT];
        for (f, m) in medians.iter_mut().enumerate() {
            let mut col: Vec<f64> = rows.iter().map(|r| r[f]).collect();
            col.sort_by(f64::total_cmp);
            *m = col[(col.len() - 1) / 2];
        }
        Ok(Self {
            trees,
            sample_size,
            medians,
        })
    }

    /// Score one day and say which features isolated it.
    pub fn score(&self, x: &[f64; FEATURE_COUNT]) -> Score {
        let mut total_path = 0.0;
        let mut credit = [0.0f64; FEATURE_COUNT];
        for tree in &self.trees {
            let mut i = 0;
            let mut depth = 0usize;
            loop {
                match tree.nodes.get(i) {
                    Some(Node::Split {
                        feature,
                        threshold,
                        left,
                        right,
                    }) => {
                        // Early splits isolate more: credit 1/(depth+1).
                        credit[*feature] += 1.0 / (depth as f64 + 1.0);
                        i = if x[*feature] < *threshold {
                            *left
                        } else {
                            *right
                        };
                        depth += 1;
                    }
                    Some(Node::Leaf { size }) => {
                        total_path += depth as f64 + average_path(*size);
                        break;
                    }
                    None => break,
                }
            }
        }
        let mean_path = total_path / self.trees.len().max(1) as f64;
        let value = 2f64.powf(-mean_path / average_path(self.sample_size).max(f64::MIN_POSITIVE));
        let sum: f64 = credit.iter().sum();
        let mut drivers: Vec<Driver> = Feature::ALL
            .iter()
            .enumerate()
            .filter(|(i, _)| credit[*i] > 0.0 && x[*i] != self.medians[*i])
            .map(|(i, f)| Driver {
                feature: *f,
                weight: if sum > 0.0 { credit[i] / sum } else { 0.0 },
                value: x[i],
                typical: self.medians[i],
            })
            .collect();
        drivers.sort_by(|a, b| {
            b.weight
                .total_cmp(&a.weight)
                .then(a.feature.cmp(&b.feature))
        });
        drivers.truncate(TOP_DRIVERS);
        Score { value, drivers }
    }

    /// Organisation medians of each feature (what "typical" means in a driver).
    pub fn medians(&self) -> &[f64; FEATURE_COUNT] {
        &self.medians
    }
}

fn build(
    rows: &[[f64; FEATURE_COUNT]],
    picked: Vec<usize>,
    depth: usize,
    max_depth: usize,
    rng: &mut ChaCha8Rng,
    nodes: &mut Vec<Node>,
) -> usize {
    let me = nodes.len();
    nodes.push(Node::Leaf { size: picked.len() });
    if depth >= max_depth || picked.len() <= 1 {
        return me;
    }
    // Features that still vary within this node.
    let ranges: Vec<(usize, f64, f64)> = (0..FEATURE_COUNT)
        .filter_map(|f| {
            let (lo, hi) = picked
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &i| {
                    (lo.min(rows[i][f]), hi.max(rows[i][f]))
                });
            (hi > lo).then_some((f, lo, hi))
        })
        .collect();
    if ranges.is_empty() {
        return me;
    }
    let (feature, lo, hi) = ranges[rng.gen_range(0..ranges.len())];
    let mut threshold = rng.gen_range(lo..hi);
    if threshold <= lo {
        // Keep the lowest value on the left so both sides are non-empty.
        threshold = lo + (hi - lo) / 2.0;
    }
    let (l, r): (Vec<usize>, Vec<usize>) = picked
        .into_iter()
        .partition(|&i| rows[i][feature] < threshold);
    let left = build(rows, l, depth + 1, max_depth, rng, nodes);
    let right = build(rows, r, depth + 1, max_depth, rng, nodes);
    nodes[me] = Node::Split {
        feature,
        threshold,
        left,
        right,
    };
    me
}

/// c(n): the average path length of an unsuccessful search in a binary search tree of n.
fn average_path(n: usize) -> f64 {
    if n <= 1 {
        return 0.0;
    }
    let n = n as f64;
    2.0 * ((n - 1.0).ln() + 0.577_215_664_901_532_9) - 2.0 * (n - 1.0) / n
}

#[cfg(test)]
mod tests {
    use super::*;

    fn normal_rows(n: usize, seed: u64) -> Vec<[f64; FEATURE_COUNT]> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..n)
            .map(|_| {
                let reads = rng.gen_range(8.0..20.0);
                [
                    reads,
                    reads * 0.7,
                    0.0,
                    rng.gen_range(0.0..0.2),
                    0.0,
                    3.0,
                    0.0,
                    reads / 14.0,
                ]
            })
            .collect()
    }

    #[test]
    fn outlier_scores_high_and_names_its_driver() {
        let rows = normal_rows(500, 1);
        let forest = IsolationForest::train(&rows, ForestOptions::default()).expect("train");
        let normal = forest.score(&rows[7]);
        let mut odd = rows[7];
        odd[Feature::Reads as usize] = 120.0;
        odd[Feature::DistinctPatients as usize] = 100.0;
        odd[Feature::VolumeRatio as usize] = 8.0;
        let s = forest.score(&odd);
        assert!(s.value > 0.6, "{}", s.describe());
        assert!(normal.value < 0.55, "{}", normal.describe());
        assert!(
            s.value > normal.value + 0.1,
            "{} vs {}",
            s.describe(),
            normal.describe()
        );
        let top: Vec<Feature> = s.drivers.iter().map(|d| d.feature).collect();
        assert!(
            top.iter().any(|f| matches!(
                f,
                Feature::Reads | Feature::DistinctPatients | Feature::VolumeRatio
            )),
            "{}",
            s.describe()
        );
    }

    #[test]
    fn same_seed_same_forest() {
        let rows = normal_rows(300, 2);
        let a = IsolationForest::train(&rows, ForestOptions::default()).expect("train");
        let b = IsolationForest::train(&rows, ForestOptions::default()).expect("train");
        for r in rows.iter().take(50) {
            assert_eq!(a.score(r), b.score(r));
        }
    }

    #[test]
    fn refuses_bad_training_data() {
        assert_eq!(
            IsolationForest::train(&[], ForestOptions::default()).err(),
            Some(ScoreError::Empty)
        );
        let mut rows = normal_rows(10, 3);
        rows[0][0] = f64::NAN;
        assert_eq!(
            IsolationForest::train(&rows, ForestOptions::default()).err(),
            Some(ScoreError::NotFinite)
        );
        // A single row or identical rows train (every day looks the same).
        let one = normal_rows(1, 4);
        let f = IsolationForest::train(&one, ForestOptions::default()).expect("train");
        assert!(f.score(&one[0]).value.is_finite());
    }
}
