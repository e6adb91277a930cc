//! Measuring a benchmark: latency histograms, operation figures, disk use and peak RSS. Every
//! benchmark (storage, import, search) reports with these.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::{Duration, Instant};

/// One operation's figures.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OpResult {
    pub name: String,
    pub count: u64,
    pub per_sec: f64,
    pub p50_micros: f64,
    pub p99_micros: f64,
    pub p999_micros: f64,
    pub max_micros: f64,
}

pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000_000, 3).expect("valid histogram bounds")
}

pub fn record(h: &mut Histogram<u64>, started: Instant) {
    let _ = h.record(started.elapsed().as_nanos().max(1) as u64);
}

pub fn op(name: &str, count: u64, elapsed: Duration, latencies: &Histogram<u64>) -> OpResult {
    OpResult {
        name: name.into(),
        count,
        per_sec: count as f64 / elapsed.as_secs_f64().max(1e-9),
        p50_micros: latencies.value_at_quantile(0.5) as f64 / 1e3,
        p99_micros: latencies.value_at_quantile(0.99) as f64 / 1e3,
        p999_micros: latencies.value_at_quantile(0.999) as f64 / 1e3,
        max_micros: latencies.max() as f64 / 1e3,
    }
}

/// Bytes allocated on disk under `dir`.
pub fn disk_bytes(dir: &Path) -> anyhow::Result<u64> {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        total += if meta.is_dir() {
            disk_bytes(&entry.path())?
        } else {
            meta.blocks() * 512
        };
    }
    Ok(total)
}

/// This process's peak resident memory (VmHWM), in bytes.
pub fn peak_rss() -> u64 {
    peak_rss_of("self")
}

/// Resets this process's peak resident memory to what is resident now (Linux: writing 5 to
/// `/proc/self/clear_refs`), so that a later [`peak_rss`] is the peak since this call.
pub fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// The peak resident set of process `pid` (a number, or `self`), from `/proc/PID/status`;
/// 0 where that is not available.
pub fn peak_rss_of(pid: &str) -> u64 {
    status_figure(pid, "VmHWM:")
}

/// The resident set of process `pid` now.
pub fn rss_of(pid: &str) -> u64 {
    status_figure(pid, "VmRSS:")
}

/// A figure in kB from `/proc/PID/status`, in bytes.
fn status_figure(pid: &str, name: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}
