//! CPU time and energy of the replicas over the measured window, read from each
//! replica's Prometheus `/metrics` before and after (the replicas measure themselves:
//! RAPL shared out by CPU time, or CPU time times a power per core). A cluster without
//! those counters still gets its run measured: energy is then reported as unknown and,
//! for a cluster bench started itself, CPU time comes from /proc.

use std::time::Duration;

/// Energy used so far by one replica, joules (a counter).
pub const ENERGY_COUNTER: &str = "medchain_energy_joules_total";
/// CPU time used so far by one replica, seconds (a counter).
pub const CPU_COUNTER: &str = "medchain_cpu_seconds_total";
/// A gauge whose `source` label says how the energy is obtained.
pub const ENERGY_SOURCE_INFO: &str = "medchain_energy_source_info";

/// The figures `bench` needs from one replica's `/metrics` text.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scrape {
    pub energy_joules: Option<f64>,
    pub cpu_seconds: Option<f64>,
    pub energy_source: Option<String>,
}

/// Split `name{labels} value [timestamp]` into its name, raw label text and the rest.
/// Label values may hold `}` and escaped quotes, so the closing brace is found by
/// scanning outside quotes.
fn split_sample(line: &str) -> Option<(&str, &str, &str)> {
    let name_end = line
        .find(|c: char| c == '{' || c.is_whitespace())
        .unwrap_or(line.len());
    let (name, rest) = line.split_at(name_end);
    let Some(inner) = rest.strip_prefix('{') else {
        return Some((name, "", rest));
    };
    let (mut quoted, mut escaped) = (false, false);
    for (i, c) in inner.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '}' if !quoted => return Some((name, &inner[..i], &inner[i + 1..])),
            _ => {}
        }
    }
    None
}

/// The value of label `key` in `a="1",source="rapl"`, unescaped.
fn label<'a>(labels: &'a str, key: &str) -> Option<String> {
    let mut rest: &'a str = labels;
    loop {
        rest = rest.trim_start_matches([',', ' ']);
        if rest.is_empty() {
            return None;
        }
        let (k, after) = rest.split_once('=')?;
        let after = after.trim_start().strip_prefix('"')?;
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next()? {
                (i, '"') => break i,
                (_, '\\') => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    c => value.push(c),
                },
                (_, c) => value.push(c),
            }
        };
        if k.trim() == key {
            return Some(value);
        }
        rest = &after[end + 1..];
    }
}

/// Read the energy and CPU counters (summed over all their label sets) and the energy
/// source from Prometheus text exposition.
pub fn parse(text: &str) -> Scrape {
    let mut s = Scrape::default();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((name, labels, rest)) = split_sample(line) else {
            continue;
        };
        let Some(value) = rest
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|v| v.is_finite())
        else {
            continue;
        };
        match name {
            ENERGY_COUNTER => *s.energy_joules.get_or_insert(0.0) += value,
            CPU_COUNTER => *s.cpu_seconds.get_or_insert(0.0) += value,
            ENERGY_SOURCE_INFO if value != 0.0 => {
                if let Some(src) = label(labels, "source") {
                    s.energy_source = Some(src);
                }
            }
            _ => {}
        }
    }
    s
}

/// CPU seconds (user + system) of a process so far, from `/proc/PID/stat`. The kernel
/// reports them in USER_HZ ticks, 100 per second on every Linux ABI.
pub fn proc_cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_proc_stat_cpu(&stat)
}

fn parse_proc_stat_cpu(stat: &str) -> Option<f64> {
    // The command name (field 2) may hold spaces and parentheses: fields are counted
    // after its last ')'. utime and stime are fields 14 and 15.
    let (_, rest) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / 100.0)
}

/// One replica at one moment.
#[derive(Debug, Clone, Default)]
pub struct ReplicaSample {
    pub url: String,
    /// `None`: `/metrics` did not answer.
    pub scrape: Option<Scrape>,
    pub proc_cpu_seconds: Option<f64>,
}

/// All replicas at one moment.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    pub replicas: Vec<ReplicaSample>,
}

pub async fn sample(http: &reqwest::Client, urls: &[String], pids: &[u32]) -> Sample {
    let mut replicas = Vec::new();
    for (i, url) in urls.iter().enumerate() {
        let scrape = match http
            .get(format!("{url}/metrics"))
            .timeout(Duration::from_secs(3))
            .send()
            .await
        {
            Ok(r) if r.status().is_success() => r.text().await.ok().map(|t| parse(&t)),
            _ => None,
        };
        replicas.push(ReplicaSample {
            url: url.clone(),
            scrape,
            proc_cpu_seconds: pids.get(i).and_then(|p| proc_cpu_seconds(*p)),
        });
    }
    Sample { replicas }
}

/// What the replicas used over the measured window, summed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Usage {
    pub cpu_seconds: Option<f64>,
    /// "metrics" or "procfs".
    pub cpu_source: Option<String>,
    pub energy_joules: Option<f64>,
    pub energy_source: Option<String>,
    pub warnings: Vec<String>,
}

/// Sum of `after - before` over replicas, if every replica has both figures.
fn summed_delta(
    before: &Sample,
    after: &Sample,
    get: impl Fn(&ReplicaSample) -> Option<f64>,
) -> Result<f64, Vec<String>> {
    let mut total = 0.0;
    let mut missing = Vec::new();
    for (i, a) in after.replicas.iter().enumerate() {
        match (before.replicas.get(i).and_then(&get), get(a)) {
            (Some(b), Some(a)) => total += (a - b).max(0.0),
            _ => missing.push(a.url.clone()),
        }
    }
    if missing.is_empty() && !after.replicas.is_empty() {
        Ok(total)
    } else {
        Err(missing)
    }
}

impl Usage {
    pub fn between(before: &Sample, after: &Sample) -> Usage {
        let mut u = Usage::default();
        match summed_delta(before, after, |r| r.scrape.as_ref()?.energy_joules) {
            Ok(j) => {
                u.energy_joules = Some(j);
                let mut sources: Vec<String> = after
                    .replicas
                    .iter()
                    .filter_map(|r| r.scrape.as_ref()?.energy_source.clone())
                    .collect();
                sources.sort();
                sources.dedup();
                u.energy_source = (!sources.is_empty()).then(|| sources.join(","));
            }
            Err(missing) => u.warnings.push(format!(
                "no {ENERGY_COUNTER} from {} (is /metrics there?); energy reported as null",
                missing.join(", ")
            )),
        }
        match summed_delta(before, after, |r| r.scrape.as_ref()?.cpu_seconds) {
            Ok(s) => {
                u.cpu_seconds = Some(s);
                u.cpu_source = Some("metrics".into());
            }
            Err(missing) => match summed_delta(before, after, |r| r.proc_cpu_seconds) {
                Ok(s) => {
                    u.cpu_seconds = Some(s);
                    u.cpu_source = Some("procfs".into());
                }
                Err(_) => u.warnings.push(format!(
                    "no {CPU_COUNTER} from {}; CPU time reported as null",
                    missing.join(", ")
                )),
            },
        }
        u
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE: &str = r#"# HELP medchain_committed_records_total Records committed.
# TYPE medchain_committed_records_total counter
medchain_committed_records_total 1234
# HELP medchain_cpu_seconds_total CPU time used by this replica.
# TYPE medchain_cpu_seconds_total counter
medchain_cpu_seconds_total 12.5
# HELP medchain_energy_joules_total Energy used by this replica.
# TYPE medchain_energy_joules_total counter
medchain_energy_joules_total{domain="package-0"} 80.25 1712345678000
medchain_energy_joules_total{domain="package-1",note="a } and \" inside"} 20
medchain_energy_joules_totally_different 999
# TYPE medchain_energy_source_info gauge
medchain_energy_source_info{source="cpu_time_x_watts"} 0
medchain_energy_source_info{replica="2",source="rapl"} 1
medchain_requests_total{result="committed"} 7
"#;

    #[test]
    fn counters_are_summed_over_label_sets_and_the_source_is_the_set_gauge() {
        let s = parse(FIXTURE);
        assert_eq!(s.energy_joules, Some(100.25));
        assert_eq!(s.cpu_seconds, Some(12.5));
        assert_eq!(s.energy_source.as_deref(), Some("rapl"));
    }

    #[test]
    fn missing_counters_are_none_not_zero() {
        let s = parse("# nothing here\nmedchain_committed_records_total 3\ngarbage{ 1\n");
        assert_eq!(s, Scrape::default());
        let s = parse("medchain_energy_joules_total NaN\nmedchain_cpu_seconds_total +Inf\n");
        assert_eq!(s, Scrape::default());
        let s = parse("medchain_energy_source_info{source=\"cpu_time_x_watts\"} 1\n");
        assert_eq!(s.energy_source.as_deref(), Some("cpu_time_x_watts"));
    }

    #[test]
    fn labels_unescape() {
        assert_eq!(
            label(r#"a="x\"y",source="r\\a\npl""#, "source").as_deref(),
            Some("r\\a\npl")
        );
        assert_eq!(label(r#"a="1""#, "source"), None);
    }

    #[test]
    fn proc_stat_cpu_counts_user_and_system_ticks() {
        let stat =
            "4242 (medchain (node)) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 9 0 1 2 3";
        assert_eq!(parse_proc_stat_cpu(stat), Some(3.0));
        assert!(proc_cpu_seconds(std::process::id()).is_some());
    }

    fn replica(url: &str, energy: Option<f64>, cpu: Option<f64>, proc_cpu: f64) -> ReplicaSample {
        ReplicaSample {
            url: url.into(),
            scrape: Some(Scrape {
                energy_joules: energy,
                cpu_seconds: cpu,
                energy_source: energy.map(|_| "rapl".into()),
            }),
            proc_cpu_seconds: Some(proc_cpu),
        }
    }

    #[test]
    fn usage_sums_deltas_and_falls_back_for_cpu_only() {
        let before = Sample {
            replicas: vec![
                replica("a", Some(10.0), Some(1.0), 5.0),
                replica("b", Some(20.0), Some(2.0), 6.0),
            ],
        };
        let after = Sample {
            replicas: vec![
                replica("a", Some(15.0), Some(2.0), 7.0),
                replica("b", Some(30.0), Some(4.0), 9.0),
            ],
        };
        let u = Usage::between(&before, &after);
        assert_eq!(u.energy_joules, Some(15.0));
        assert_eq!(u.energy_source.as_deref(), Some("rapl"));
        assert_eq!(
            (u.cpu_seconds, u.cpu_source.as_deref()),
            (Some(3.0), Some("metrics"))
        );
        assert!(u.warnings.is_empty());

        let mut after_no_metrics = after.clone();
        after_no_metrics.replicas[1].scrape = None;
        let u = Usage::between(&before, &after_no_metrics);
        assert_eq!(u.energy_joules, None);
        assert_eq!(
            (u.cpu_seconds, u.cpu_source.as_deref()),
            (Some(5.0), Some("procfs"))
        );
        assert_eq!(u.warnings.len(), 1);
    }
}
