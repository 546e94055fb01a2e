//! exwatch's own process figures: CPU time, memory, file descriptors,
//! threads and start time, read when Prometheus scrapes.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// exwatch's own process figures, read from `/proc/self` on each scrape
/// (nothing is exported where `/proc` is missing).
#[derive(Debug)]
pub(super) struct ProcessCollector;

/// `USER_HZ`: the unit of the tick counts in `/proc/<pid>/stat`. The kernel
/// fixes it at 100 for user space on every architecture Linux ships for
/// servers (x86, arm, arm64, riscv, ppc, s390); reading it needs `sysconf`,
/// which would need `unsafe`.
const TICKS_PER_SEC: f64 = 100.0;

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
    /// Read this process's figures; each one that cannot be read stays `None`.
    pub fn read() -> ProcessStats {
        let mut s = ProcessStats::default();
        if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
            // Fields after the command name, which is in parentheses and may hold spaces.
            let fields: Vec<&str> = stat
                .rsplit_once(')')
                .map(|(_, rest)| rest.split_whitespace().collect())
                .unwrap_or_default();
            // `fields[0]` is field 3 (state) of proc(5).
            let field = |n: usize| fields.get(n - 3).and_then(|v| v.parse::<u64>().ok());
            if let (Some(u), Some(k)) = (field(14), field(15)) {
                s.cpu_seconds = Some((u + k) as f64 / TICKS_PER_SEC);
            }
            s.threads = field(20);
            let boot = std::fs::read_to_string("/proc/stat").ok().and_then(|t| {
                t.lines()
                    .find_map(|l| l.strip_prefix("btime "))
                    .and_then(|v| v.trim().parse::<u64>().ok())
            });
            if let (Some(start), Some(boot)) = (field(22), boot) {
                s.start_time_seconds = Some(boot as f64 + start as f64 / TICKS_PER_SEC);
            }
        }
        if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
            let kb = |key: &str| {
                status
                    .lines()
                    .find_map(|l| l.strip_prefix(key))
                    .and_then(|v| v.split_whitespace().next())
                    .and_then(|v| v.parse::<u64>().ok())
                    .map(|v| v * 1024)
            };
            s.resident_bytes = kb("VmRSS:");
            s.virtual_bytes = kb("VmSize:");
        }
        if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
            s.open_fds = Some(dir.count() as u64);
        }
        if let Ok(limits) = std::fs::read_to_string("/proc/self/limits") {
            s.max_fds = limits
                .lines()
                .find_map(|l| l.strip_prefix("Max open files"))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse::<u64>().ok());
        }
        s
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
        let now = crate::clock::wall_ms() as f64 / 1000.0;
        // Started in the past, and not before 2020.
        assert!(
            s.start_time_seconds
                .is_some_and(|t| t <= now + 1.0 && t > 1_577_836_800.0),
            "{s:?}"
        );
    }
}
