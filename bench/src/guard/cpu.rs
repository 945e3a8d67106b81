//! A process's CPU time from `/proc/<pid>/stat` (user + system, every thread, the exited ones
//! included), and waiting until the processes are quiet so that a measurement neither starts
//! inside the previous run's tail nor ends before its own.

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

/// How long one look for quiet lasts.
const QUIET_WINDOW: Duration = Duration::from_millis(300);
/// At most this many clock ticks over [`QUIET_WINDOW`] (all processes together) is quiet.
const QUIET_TICKS: u64 = 1;
/// Give up waiting for quiet after this long: a process that never rests is measured anyway.
const QUIET_PATIENCE: Duration = Duration::from_secs(10);

/// Clock ticks per second, the unit of `/proc/<pid>/stat`'s times.
pub fn ticks_per_second() -> u64 {
    // SAFETY: sysconf reads a constant of the system and has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(ticks).ok().filter(|&t| t > 0).unwrap_or(100)
}

/// User + system time of process `pid` in clock ticks.
pub fn ticks(pid: u32) -> anyhow::Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat: is process {pid} running?"))?;
    parse_stat(&stat).with_context(|| format!("/proc/{pid}/stat"))
}

/// Fields 14 (utime) and 15 (stime) of a `stat` line, added up; the name (field 2) may hold
/// spaces and parentheses, so fields are counted from its last `)`.
fn parse_stat(stat: &str) -> anyhow::Result<u64> {
    let Some((_, rest)) = stat.rsplit_once(") ") else {
        bail!("no process name in {stat:?}");
    };
    // `rest` starts at field 3 (state): utime is its 12th field, stime its 13th.
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| -> anyhow::Result<u64> {
        fields
            .get(i)
            .and_then(|f| f.parse().ok())
            .with_context(|| format!("no field {} in {stat:?}", i + 3))
    };
    Ok(field(11)? + field(12)?)
}

/// Waits until `pids` together spend at most [`QUIET_TICKS`] over [`QUIET_WINDOW`] (or
/// [`QUIET_PATIENCE`] has passed); returns whether they went quiet.
pub async fn wait_quiet(pids: &[u32]) -> anyhow::Result<bool> {
    let total = || -> anyhow::Result<u64> { pids.iter().map(|&pid| ticks(pid)).sum() };
    let since = Instant::now();
    let mut last = total()?;
    loop {
        tokio::time::sleep(QUIET_WINDOW).await;
        let now = total()?;
        if now - last <= QUIET_TICKS {
            return Ok(true);
        }
        if since.elapsed() >= QUIET_PATIENCE {
            return Ok(false);
        }
        last = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utime_and_stime_are_read_past_a_name_with_spaces_and_parentheses() {
        let stat = "4242 (tokio-rt (w) 1) S 1 4242 4242 0 -1 4194560 900 0 0 0 \
                    1234 56 0 0 20 0 9 0 777 123456789 2500 18446744073709551615";
        assert_eq!(parse_stat(stat).unwrap(), 1234 + 56);
        assert!(parse_stat("4242 (short) S 1 2").is_err());
        assert!(parse_stat("garbage").is_err());
    }

    #[test]
    fn this_process_has_a_cpu_time_that_grows_with_work() {
        let pid = std::process::id();
        let before = ticks(pid).unwrap();
        // Busy until the count moves (one tick is a few million rounds of this loop; the
        // bound only keeps a broken reader from spinning for ever).
        let mut x = 0u64;
        let mut rounds = 0;
        while ticks(pid).unwrap() == before {
            rounds += 1;
            assert!(rounds < 100_000, "no tick counted");
            for _ in 0..100_000 {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
            }
        }
        assert!(ticks_per_second() > 0);
    }

    #[test]
    fn a_process_that_does_not_exist_is_an_error_naming_it() {
        // Above the kernel's pid_max (at most 2^22).
        let error = ticks(99_999_999).unwrap_err().to_string();
        assert!(error.contains("99999999"), "{error}");
    }
}
