//! Where a replica's energy figure comes from: the CPU's RAPL energy counters when the
//! kernel exposes them (`/sys/class/powercap`), shared out by this process's part of the
//! machine's busy CPU time; otherwise the process's measured CPU time times a configured
//! power per busy core. Either way the input is measured, never a guess per request.

use std::path::{Path, PathBuf};

use nix::time::{clock_gettime, ClockId};

/// Power of one fully busy core when RAPL is absent: 7.5 W, the TDP of an Intel Xeon Gold
/// 6248 (150 W, Intel ARK) divided by its 20 cores. A TDP share is an upper-end estimate
/// for a busy core of a typical server CPU; set `energy_watts_per_core` for your hardware.
pub const DEFAULT_WATTS_PER_CORE: f64 = 7.5;

/// CPU time used by this whole process (every thread, also threads that have ended).
#[derive(Debug)]
pub struct ProcessClock {
    last: f64,
}

impl Default for ProcessClock {
    fn default() -> Self {
        ProcessClock {
            last: process_cpu_seconds(),
        }
    }
}

impl ProcessClock {
    /// CPU seconds used since the previous call.
    pub fn advance(&mut self) -> f64 {
        let now = process_cpu_seconds();
        let delta = (now - self.last).max(0.0);
        self.last = now.max(self.last);
        delta
    }
}

fn process_cpu_seconds() -> f64 {
    clock_gettime(ClockId::CLOCK_PROCESS_CPUTIME_ID)
        .map_or(0.0, |t| t.tv_sec() as f64 + t.tv_nsec() as f64 * 1e-9)
}

/// One RAPL package domain: `energy_uj` wraps at `max_energy_range_uj`.
#[derive(Debug)]
struct RaplDomain {
    energy_file: PathBuf,
    max_uj: u64,
    last_uj: u64,
}

/// The machine's busy CPU time from `/proc/stat`, to share package energy out.
#[derive(Debug)]
struct SystemCpu {
    stat_file: PathBuf,
    ticks_per_s: f64,
    last_busy_ticks: u64,
}

/// How this replica's energy is obtained.
#[derive(Debug)]
pub struct EnergyMeter(Source);

#[derive(Debug)]
enum Source {
    CpuTime {
        watts_per_core: f64,
    },
    Rapl {
        domains: Vec<RaplDomain>,
        system: SystemCpu,
    },
}

impl EnergyMeter {
    pub fn cpu_time(watts_per_core: f64) -> Self {
        EnergyMeter(Source::CpuTime { watts_per_core })
    }

    /// RAPL if this machine exposes readable package counters, else CPU time × watts.
    pub fn detect(watts_per_core: f64) -> Self {
        Self::detect_in(
            Path::new("/sys/class/powercap"),
            Path::new("/proc/stat"),
            watts_per_core,
        )
    }

    /// As `detect`, reading RAPL under `powercap` and CPU totals from `proc_stat`.
    pub fn detect_in(powercap: &Path, proc_stat: &Path, watts_per_core: f64) -> Self {
        let fallback = EnergyMeter::cpu_time(watts_per_core);
        let Ok(entries) = std::fs::read_dir(powercap) else {
            return fallback;
        };
        let mut domains = Vec::new();
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            // Packages are `intel-rapl:N`; `intel-rapl:N:M` are their sub-domains (cores,
            // DRAM), already inside the package figure.
            if !name.starts_with("intel-rapl:") || name.matches(':').count() != 1 {
                continue;
            }
            let dir = e.path();
            let (Some(now), Some(max)) = (
                read_u64(&dir.join("energy_uj")),
                read_u64(&dir.join("max_energy_range_uj")),
            ) else {
                continue;
            };
            domains.push(RaplDomain {
                energy_file: dir.join("energy_uj"),
                max_uj: max,
                last_uj: now,
            });
        }
        let ticks_per_s = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
            .ok()
            .flatten()
            .map_or(100.0, |t| t as f64);
        match (domains.is_empty(), busy_ticks(proc_stat)) {
            (false, Some(busy)) => EnergyMeter(Source::Rapl {
                domains,
                system: SystemCpu {
                    stat_file: proc_stat.to_path_buf(),
                    ticks_per_s,
                    last_busy_ticks: busy,
                },
            }),
            _ => fallback,
        }
    }

    /// The label shown in metrics.
    pub fn source(&self) -> &'static str {
        match self.0 {
            Source::CpuTime { .. } => "cpu_time_x_watts",
            Source::Rapl { .. } => "rapl",
        }
    }

    /// Joules used by this process in an interval in which it used `cpu_seconds`.
    pub fn joules(&mut self, cpu_seconds: f64) -> f64 {
        match &mut self.0 {
            Source::CpuTime { watts_per_core } => cpu_seconds * *watts_per_core,
            Source::Rapl { domains, system } => {
                let mut package_uj = 0u64;
                for d in domains.iter_mut() {
                    let Some(now) = read_u64(&d.energy_file) else {
                        continue;
                    };
                    package_uj += if now >= d.last_uj {
                        now - d.last_uj
                    } else {
                        // The counter wrapped.
                        d.max_uj.saturating_sub(d.last_uj) + now
                    };
                    d.last_uj = now;
                }
                let Some(busy) = busy_ticks(&system.stat_file) else {
                    return 0.0;
                };
                let machine_busy_s =
                    busy.saturating_sub(system.last_busy_ticks) as f64 / system.ticks_per_s;
                system.last_busy_ticks = busy;
                if machine_busy_s <= 0.0 {
                    return 0.0;
                }
                let share = (cpu_seconds / machine_busy_s).clamp(0.0, 1.0);
                package_uj as f64 * 1e-6 * share
            }
        }
    }
}

fn read_u64(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Busy ticks of all CPUs: every field of the `cpu` line except idle and iowait (and the
/// guest fields, which are already counted in user and nice).
fn busy_ticks(proc_stat: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(proc_stat).ok()?;
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    let f: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal
    let get = |i: usize| f.get(i).copied().unwrap_or(0);
    Some(get(0) + get(1) + get(2) + get(5) + get(6) + get(7))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_meter_multiplies_by_power_per_core() {
        let mut m = EnergyMeter::cpu_time(7.5);
        assert_eq!(m.source(), "cpu_time_x_watts");
        assert!((m.joules(2.0) - 15.0).abs() < 1e-9);
    }

    #[test]
    fn process_clock_counts_work_done() {
        let mut c = ProcessClock::default();
        let mut x = 0u64;
        let start = std::time::Instant::now();
        while start.elapsed() < std::time::Duration::from_millis(50) {
            x = x.wrapping_mul(31).wrapping_add(7);
        }
        std::hint::black_box(x);
        let used = c.advance();
        assert!(used > 0.02 && used < 5.0, "cpu seconds {used}");
    }

    fn write(p: &Path, s: &str) {
        std::fs::write(p, s).expect("write fixture");
    }

    #[test]
    fn rapl_energy_is_shared_by_cpu_time_and_survives_wrap() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pkg = dir.path().join("intel-rapl:0");
        let sub = dir.path().join("intel-rapl:0:0");
        std::fs::create_dir_all(&pkg).expect("mkdir");
        std::fs::create_dir_all(&sub).expect("mkdir");
        write(&pkg.join("energy_uj"), "999000000\n");
        write(&pkg.join("max_energy_range_uj"), "1000000000\n");
        write(&sub.join("energy_uj"), "5\n");
        write(&sub.join("max_energy_range_uj"), "1000000000\n");
        let stat = dir.path().join("stat");
        write(&stat, "cpu  100 0 100 5000 0 0 0 0 0 0\ncpu0 1 1 1 1\n");
        let ticks = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
            .ok()
            .flatten()
            .map_or(100.0, |t| t as f64);

        let mut m = EnergyMeter::detect_in(dir.path(), &stat, 7.5);
        assert_eq!(m.source(), "rapl");
        // The package counter wraps: 1 J before the wrap + 9 J after = 10 J.
        write(&pkg.join("energy_uj"), "9000000\n");
        // The machine was busy for 2 s (in ticks); this process used 0.5 s of it.
        let busy = 200 + (2.0 * ticks) as u64;
        write(
            &stat,
            &format!("cpu  {} 0 100 6000 0 0 0 0 0 0\n", busy - 100),
        );
        let j = m.joules(0.5);
        assert!((j - 2.5).abs() < 1e-6, "joules {j}");
    }

    #[test]
    fn no_readable_rapl_falls_back_to_cpu_time() {
        let dir = tempfile::tempdir().expect("tempdir");
        let m = EnergyMeter::detect_in(&dir.path().join("absent"), Path::new("/proc/stat"), 7.5);
        assert_eq!(m.source(), "cpu_time_x_watts");
        let empty = EnergyMeter::detect_in(dir.path(), Path::new("/proc/stat"), 7.5);
        assert_eq!(empty.source(), "cpu_time_x_watts");
    }
}
