//! exwatch's clock, the one place the core reads the time, and the one
//! `HH:MM:SS` every view and alert writes a time of day in.
//!
//! The core (probes, breakers, detectors, the alert engine, the notifier,
//! the journal) measures every duration as a difference of unix-ms times:
//! an alert's `for`, a breaker's open wait, `group_wait`, a silence's
//! expiry. Read straight from the host's wall clock, a step of that clock
//! (an NTP step, a VM resumed with a stale clock, an operator's `date -s`)
//! would make all of them elapse at once or stall for the length of the
//! step. [`now_ms`] is therefore a *slewed* clock:
//!
//! - it starts at the host's wall time and then advances with the
//!   boot-time clock (Linux `CLOCK_BOOTTIME`: monotonic, and unlike
//!   `CLOCK_MONOTONIC` it keeps counting while the host is suspended, so
//!   time spent asleep is time passed);
//! - when the host's wall clock moves away from it (a step), it follows at
//!   most [`SLEW`] faster or slower than real time, like ntpd or chrony
//!   slewing, and never jumps or goes back: a step of 60 s is absorbed in
//!   20 min, a step of an hour in 20 h; meanwhile every duration the core
//!   measures is within 5% of the truth;
//! - [`offset_ms`] says how far the host's clock is from it; a step larger
//!   than [`STEP_WARN_MS`] is logged once with its size.

use std::sync::Mutex;

/// The most exwatch's clock runs faster or slower than real time while it
/// absorbs a step of the host's wall clock: 1/20 (5%, 50 ms per second).
pub const SLEW: f64 = 1.0 / 20.0;

/// A difference between the host's wall clock and exwatch's clock above
/// this (ms) is a step of the host's clock, logged once as a warning.
pub const STEP_WARN_MS: i64 = 1_000;

/// The host's wall clock, unix ms. Only for what must say the host's own
/// time (a file name, the process start time, an HTTP date compared with
/// the host's clock); the core uses [`now_ms`].
pub fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// exwatch's clock, unix ms: the host's wall time at start, then advancing
/// with real time, following steps of the host's clock only by slewing
/// (see the module doc). Never decreases.
pub fn now_ms() -> i64 {
    static CLOCK: Mutex<Option<Slewed>> = Mutex::new(None);
    let wall_ns = wall_ns();
    let boot_ns = boot_ns();
    let mut g = CLOCK.lock().unwrap_or_else(|e| e.into_inner());
    let c = g.get_or_insert_with(|| Slewed::new(boot_ns, wall_ns));
    let (now, step) = c.read(boot_ns, wall_ns);
    drop(g);
    if let Some(step_ms) = step {
        let absorb_s = (step_ms.unsigned_abs() as f64 / SLEW / 1_000.0).round();
        tracing::warn!(
            step_ms,
            absorb_s,
            "the host's wall clock stepped; exwatch's clock follows it by slewing (5%), so alert, breaker and grouping durations stay true"
        );
    }
    now / 1_000_000
}

/// The host's wall clock minus exwatch's clock (ms) as of the last
/// [`now_ms`]: about 0 normally, the part of a step not absorbed yet after
/// one (positive: the host's clock is ahead).
pub fn offset_ms() -> i64 {
    wall_ms() - now_ms()
}

fn wall_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos().min(i64::MAX as u128) as i64)
        .unwrap_or(0)
}

/// Nanoseconds of a clock that never steps and counts suspend (Linux
/// `CLOCK_BOOTTIME`; elsewhere the process' monotonic `Instant`).
#[cfg(target_os = "linux")]
fn boot_ns() -> i64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Boottime);
    t.tv_sec
        .saturating_mul(1_000_000_000)
        .saturating_add(t.tv_nsec)
}

#[cfg(not(target_os = "linux"))]
fn boot_ns() -> i64 {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    let d = START.get_or_init(std::time::Instant::now).elapsed();
    d.as_nanos().min(i64::MAX as u128) as i64
}

/// The slewed clock's state, in ns. Pure so that tests can step its wall
/// clock.
#[derive(Debug, Clone)]
pub struct Slewed {
    boot_ns: i64,
    now_ns: i64,
    /// The offset (ms) last reported as a step; 0 when none is pending.
    reported_ms: i64,
}

impl Slewed {
    /// A clock reading `wall_ns` at boot-time reading `boot_ns`.
    pub fn new(boot_ns: i64, wall_ns: i64) -> Slewed {
        Slewed {
            boot_ns,
            now_ns: wall_ns,
            reported_ms: 0,
        }
    }

    /// The clock's time (ns) at boot-time `boot_ns` when the host's wall
    /// clock reads `wall_ns`, and the size of a step (ms) first seen now.
    pub fn read(&mut self, boot_ns: i64, wall_ns: i64) -> (i64, Option<i64>) {
        let elapsed = (boot_ns - self.boot_ns).max(0);
        let free = self.now_ns.saturating_add(elapsed);
        let err = wall_ns - free;
        let room = (elapsed as f64 * SLEW) as i64;
        self.now_ns = free + err.clamp(-room, room);
        self.boot_ns = self.boot_ns.max(boot_ns);
        let off_ms = (wall_ns - self.now_ns) / 1_000_000;
        // A step is news when the offset outgrows the one last reported
        // (absorbing only shrinks it) or changes sign.
        let step = if off_ms.abs() <= STEP_WARN_MS {
            self.reported_ms = 0;
            None
        } else if off_ms.abs() > self.reported_ms.abs() + STEP_WARN_MS
            || off_ms.signum() != self.reported_ms.signum()
        {
            self.reported_ms = off_ms;
            Some(off_ms)
        } else {
            None
        };
        (self.now_ns, step)
    }
}

/// A duration in whole milliseconds, saturating at `i64::MAX`.
pub fn ms(d: std::time::Duration) -> i64 {
    d.as_millis().min(i64::MAX as u128) as i64
}

/// `HH:MM:SS` UTC of a unix-ms time (the dashboard's clock, headless lines,
/// `check` and alert text all say a time of day this way).
pub fn hms(ms: i64) -> String {
    let secs = ms.div_euclid(1_000);
    let day = secs.rem_euclid(86_400);
    format!(
        "{:02}:{:02}:{:02}",
        day / 3_600,
        (day % 3_600) / 60,
        day % 60
    )
}

#[cfg(test)]
mod tests {
    use super::Slewed;

    const S: i64 = 1_000_000_000;

    /// Reads the clock every 100 ms of boot time for `secs`, with the host's
    /// wall clock `wall_off` s away from true time; returns (now, step)s.
    fn run(c: &mut Slewed, boot: &mut i64, secs: i64, wall_off: i64) -> Vec<(i64, Option<i64>)> {
        (0..secs * 10)
            .map(|_| {
                *boot += S / 10;
                c.read(*boot, T0 + *boot + wall_off * S)
            })
            .collect()
    }

    const T0: i64 = 1_764_000_000 * S;

    #[test]
    fn without_a_step_it_is_the_wall_clock() {
        let mut c = Slewed::new(0, T0);
        let mut boot = 0;
        let out = run(&mut c, &mut boot, 10, 0);
        assert!(out.iter().all(|(_, step)| step.is_none()));
        assert_eq!(out.last().unwrap().0, T0 + 10 * S);
    }

    #[test]
    fn a_forward_step_is_absorbed_at_five_percent_and_reported_once() {
        let mut c = Slewed::new(0, T0);
        let mut boot = 0;
        run(&mut c, &mut boot, 5, 0);
        // The host's clock jumps an hour ahead.
        let out = run(&mut c, &mut boot, 60, 3_600);
        let steps: Vec<i64> = out.iter().filter_map(|(_, s)| *s).collect();
        assert_eq!(steps.len(), 1, "{steps:?}");
        assert!((3_599_000..=3_600_000).contains(&steps[0]), "{steps:?}");
        // 60 s of real time read as 63 s: 5% faster, never a jump.
        let before = T0 + 5 * S;
        assert_eq!(out.last().unwrap().0 - before, 63 * S);
        for w in out.windows(2) {
            let d = w[1].0 - w[0].0;
            assert!(d > 0 && d <= S / 10 + S / 200, "{d}");
        }
    }

    #[test]
    fn a_backward_step_slows_the_clock_but_never_turns_it_back() {
        let mut c = Slewed::new(0, T0);
        let mut boot = 0;
        run(&mut c, &mut boot, 5, 0);
        let out = run(&mut c, &mut boot, 20, -3_600);
        assert_eq!(out.iter().filter(|(_, s)| s.is_some()).count(), 1);
        assert_eq!(out.last().unwrap().0 - (T0 + 5 * S), 19 * S);
        assert!(out.windows(2).all(|w| w[1].0 > w[0].0));
    }

    #[test]
    fn a_small_step_is_absorbed_then_the_clock_is_the_wall_clock_again() {
        let mut c = Slewed::new(0, T0);
        let mut boot = 0;
        let out = run(&mut c, &mut boot, 60, 2);
        // 2 s at 50 ms/s: absorbed after 40 s, exact from then on.
        assert_eq!(out[398].0, T0 + 399 * S / 10 + 399 * S / 200);
        assert_eq!(out[399].0, T0 + 42 * S);
        assert_eq!(out.last().unwrap().0, T0 + 60 * S + 2 * S);
        // A second step after the first was absorbed is news again.
        let again = run(&mut c, &mut boot, 1, -5);
        assert_eq!(again.iter().filter(|(_, s)| s.is_some()).count(), 1);
    }

    #[test]
    fn hms_is_the_utc_time_of_day() {
        assert_eq!(super::hms(3_723_000), "01:02:03");
        assert_eq!(super::hms(86_400_000 + 59_999), "00:00:59");
        assert_eq!(super::hms(-1_000), "23:59:59");
    }
}
