//! exwatch's own process figures: CPU time, memory, file descriptors,
//! threads and start time, read when Prometheus scrapes.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// Bytes the program's allocator has handed out and not taken back, as the
/// binary's global allocator counts them (`cap::Cap` around mimalloc, with
/// the `heap-stats` feature); set once by `main`. Unset (the default
/// build, tests, other embedders): no heap gauge.
static HEAP_ALLOCATED: std::sync::OnceLock<fn() -> usize> = std::sync::OnceLock::new();

/// Export `exwatch_heap_allocated_bytes` from `probe` (bytes live on the
/// heap). Set once; later calls are ignored.
pub fn set_heap_probe(probe: fn() -> usize) {
    let _ = HEAP_ALLOCATED.set(probe);
}

/// exwatch's own process figures ([`ProcessStats`]), read on each scrape
/// (nothing is exported where `/proc` is missing).
#[derive(Debug)]
pub(super) struct ProcessCollector;

/// This process's figures as read at one moment; each is `None` where it
/// cannot be read.
#[derive(Debug, Default, PartialEq)]
pub struct ProcessStats {
    /// User plus system CPU time (seconds).
    pub cpu_seconds: Option<f64>,
    /// Start time of the process (seconds since the unix epoch).
    pub start_time_seconds: Option<f64>,
    /// Resident memory (bytes).
    pub resident_bytes: Option<u64>,
    /// Virtual memory (bytes).
    pub virtual_bytes: Option<u64>,
    /// Open file descriptors (count).
    pub open_fds: Option<u64>,
    /// Soft limit of open file descriptors (count); `None` when unlimited.
    pub max_fds: Option<u64>,
    /// OS threads (count).
    pub threads: Option<u64>,
}

impl ProcessStats {
    /// Read this process's figures from `/proc/self` with the `procfs`
    /// crate (tick rate and page size from `sysconf`); each one that cannot
    /// be read stays `None`.
    #[cfg(target_os = "linux")]
    pub fn read() -> ProcessStats {
        use procfs::WithCurrentSystemInfo;
        use procfs::process::{LimitValue, Process};
        let mut s = ProcessStats::default();
        let Ok(me) = Process::myself() else {
            return s;
        };
        if let Ok(stat) = me.stat() {
            let ticks = procfs::ticks_per_second() as f64;
            s.cpu_seconds = Some((stat.utime + stat.stime) as f64 / ticks);
            s.threads = u64::try_from(stat.num_threads).ok();
            s.resident_bytes = Some(stat.rss_bytes().get());
            s.virtual_bytes = Some(stat.vsize);
            if let Ok(boot) = procfs::boot_time_secs() {
                s.start_time_seconds = Some(boot as f64 + stat.starttime as f64 / ticks);
            }
        }
        s.open_fds = me.fd_count().ok().map(|n| n as u64);
        if let Ok(limits) = me.limits()
            && let LimitValue::Value(max) = limits.max_open_files.soft_limit
        {
            s.max_fds = Some(max);
        }
        s
    }

    /// Nothing to read without `/proc`.
    #[cfg(not(target_os = "linux"))]
    pub fn read() -> ProcessStats {
        ProcessStats::default()
    }
}

fn encode_gauge(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: Option<f64>,
) -> Result<(), std::fmt::Error> {
    if let Some(v) = value {
        let g = ConstGauge::new(v);
        let me = encoder.encode_descriptor(name, help, None, g.metric_type())?;
        g.encode(me)?;
    }
    Ok(())
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let s = ProcessStats::read();
        if let Some(cpu) = s.cpu_seconds {
            let c = ConstCounter::new(cpu);
            let me = encoder.encode_descriptor(
                "process_cpu_seconds",
                "User and system CPU time spent",
                None,
                c.metric_type(),
            )?;
            c.encode(me)?;
        }
        let as_f = |v: Option<u64>| v.map(|v| v as f64);
        encode_gauge(
            &mut encoder,
            "process_resident_memory_bytes",
            "Resident memory size",
            as_f(s.resident_bytes),
        )?;
        // RSS minus this is what the allocator keeps mapped but unused
        // (free pages not returned yet, fragmentation), plus code and
        // stacks: a leak grows this, allocator retention does not.
        encode_gauge(
            &mut encoder,
            "exwatch_heap_allocated_bytes",
            "Heap bytes allocated and not freed, as the global allocator counts them",
            HEAP_ALLOCATED.get().map(|probe| probe() as f64),
        )?;
        encode_gauge(
            &mut encoder,
            "process_virtual_memory_bytes",
            "Virtual memory size",
            as_f(s.virtual_bytes),
        )?;
        encode_gauge(
            &mut encoder,
            "process_open_fds",
            "Open file descriptors",
            as_f(s.open_fds),
        )?;
        encode_gauge(
            &mut encoder,
            "process_max_fds",
            "Limit of open file descriptors",
            as_f(s.max_fds),
        )?;
        encode_gauge(
            &mut encoder,
            "process_threads",
            "OS threads",
            as_f(s.threads),
        )?;
        encode_gauge(
            &mut encoder,
            "process_start_time_seconds",
            "Start time of the process since the unix epoch",
            s.start_time_seconds,
        )?;
        encode_gauge(
            &mut encoder,
            "exwatch_host_clock_step_seconds",
            "The host's wall clock minus exwatch's slewed clock: the part of a step of the host's clock not absorbed yet (0 normally)",
            Some(crate::clock::offset_ms() as f64 / 1000.0),
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_stats_are_read_on_linux() {
        if !std::path::Path::new("/proc/self/stat").exists() {
            return;
        }
        let s = ProcessStats::read();
        assert!(s.resident_bytes.is_some_and(|b| b > 0), "{s:?}");
        assert!(s.open_fds.is_some_and(|n| n >= 3), "{s:?}");
        assert!(s.cpu_seconds.is_some(), "{s:?}");
        assert!(s.virtual_bytes.is_some_and(|b| b > 0), "{s:?}");
        assert!(s.threads.is_some_and(|n| n >= 1), "{s:?}");
        let now = crate::clock::wall_ms() as f64 / 1000.0;
        // Started in the past, and not before 2020.
        assert!(
            s.start_time_seconds
                .is_some_and(|t| t <= now + 1.0 && t > 1_577_836_800.0),
            "{s:?}"
        );
    }
}
