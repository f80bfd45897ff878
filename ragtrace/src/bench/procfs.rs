//! What the kernel says a process costs: resident memory and CPU time, read
//! from `/proc` (Linux only, like the rest of the bench).

use std::time::Duration;

use anyhow::Context as _;

/// Resident memory of `pid`, in KiB (`VmRSS` in `/proc/<pid>/status`).
pub fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("no VmRSS in {path}"))
}

/// CPU time (user + system, every thread) `pid` has used since it started.
///
/// `/proc/<pid>/stat` counts in clock ticks (10 ms at the usual 100 Hz), so
/// a phase must last long enough for the difference to mean something: at
/// one busy core, a 10 s phase is 1000 ticks, 0.1 % resolution.
pub fn cpu_time(pid: u32) -> anyhow::Result<Duration> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    parse_stat_cpu(&stat, clock_ticks_per_second()).with_context(|| format!("unexpected {path}"))
}

/// CPU time of this process (the load generator and the OTLP receiver).
pub fn own_cpu_time() -> anyhow::Result<Duration> {
    cpu_time(std::process::id())
}

fn clock_ticks_per_second() -> u64 {
    // SAFETY: sysconf has no preconditions; it returns -1 for an unknown name.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as u64 } else { 100 }
}

/// `utime + stime` from a `/proc/<pid>/stat` line. The second field (the
/// command name, in parentheses) may itself contain spaces and parentheses,
/// so fields are counted from the *last* `)`.
fn parse_stat_cpu(stat: &str, ticks_per_second: u64) -> Option<Duration> {
    let after_comm = &stat[stat.rfind(')')? + 1..];
    // After the name: state (field 3), ..., utime (14), stime (15).
    let mut fields = after_comm.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    let ticks = utime + stime;
    Some(Duration::from_nanos(
        ticks * 1_000_000_000 / ticks_per_second,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_fields_are_counted_from_the_last_parenthesis() {
        let stat = "4242 (ragtrace (x) y) S 1 4242 4242 0 -1 4194560 1000 0 0 0 \
                    250 50 0 0 20 0 9 0 12345 1000000 500 18446744073709551615";
        assert_eq!(parse_stat_cpu(stat, 100), Some(Duration::from_secs(3)));
        assert_eq!(parse_stat_cpu("garbage", 100), None);
    }

    #[test]
    fn this_process_has_memory_and_cpu_time() {
        let pid = std::process::id();
        assert!(rss_kib(pid).unwrap() > 0);
        // Burn a little CPU so that at least one tick is on the clock.
        let start = std::time::Instant::now();
        let mut x = 0u64;
        while start.elapsed() < Duration::from_millis(30) {
            x = x.wrapping_mul(31).wrapping_add(7);
        }
        std::hint::black_box(x);
        assert!(own_cpu_time().unwrap() > Duration::ZERO);
    }
}
