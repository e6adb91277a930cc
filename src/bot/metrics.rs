//! Counters and latency histograms of the running bot, rendered in Prometheus' text format for
//! `/metrics` and summarised by `/health`. Plain atomics: updating them never blocks a handler.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// A cumulative latency histogram.
#[derive(Default)]
pub struct Histogram {
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    /// Records one observation.
    pub fn observe(&self, took: Duration) {
        let seconds = took.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|&bound| seconds <= bound) {
            self.buckets[i].fetch_add(1, Relaxed);
        }
        self.count.fetch_add(1, Relaxed);
        self.sum_micros.fetch_add(took.as_micros() as u64, Relaxed);
    }

    /// How many observations.
    pub fn count(&self) -> u64 {
        self.count.load(Relaxed)
    }

    /// The mean, or zero before any observation.
    pub fn mean(&self) -> Duration {
        let count = self.count();
        Duration::from_micros(
            self.sum_micros
                .load(Relaxed)
                .checked_div(count)
                .unwrap_or(0),
        )
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0;
        for (bound, bucket) in BUCKETS.iter().zip(&self.buckets) {
            cumulative += bucket.load(Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        let count = self.count();
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let sum = self.sum_micros.load(Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {count}");
    }
}

/// Everything `/metrics` shows.
#[derive(Default)]
pub struct Metrics {
    pub updates_received: AtomicU64,
    pub messages_stored: AtomicU64,
    pub batches_stored: AtomicU64,
    pub reactions_sent: AtomicU64,
    pub spontaneous_posts: AtomicU64,
    pub store_errors: AtomicU64,
    /// Update handlers running now (commands, replies, buttons).
    pub handlers_in_flight: AtomicU64,
    /// Replies sent, by the engine that wrote them.
    replies: Mutex<BTreeMap<&'static str, u64>>,
    /// Bot API errors by kind (`retry_after`, `network`, `server`, `api`, `invalid_json`, …).
    api_errors: Mutex<BTreeMap<&'static str, u64>>,
    /// Storing and flushing one `getUpdates` batch.
    pub flush_latency: Histogram,
    /// From an update's arrival to its reply request leaving.
    pub reply_latency: Histogram,
}

impl Metrics {
    /// Counts a reply written by `engine`.
    pub fn reply_sent(&self, engine: &'static str) {
        *self
            .replies
            .lock()
            .expect("metrics")
            .entry(engine)
            .or_default() += 1;
    }

    /// Counts a failed Bot API call.
    pub fn api_error(&self, kind: &'static str) {
        *self
            .api_errors
            .lock()
            .expect("metrics")
            .entry(kind)
            .or_default() += 1;
    }

    /// All API errors so far.
    pub fn api_errors_total(&self) -> u64 {
        self.api_errors.lock().expect("metrics").values().sum()
    }

    /// All replies so far.
    pub fn replies_total(&self) -> u64 {
        self.replies.lock().expect("metrics").values().sum()
    }

    /// The Prometheus text exposition; `gauges` are point-in-time values read by the caller
    /// (store size, uptime, …) as (name, help, value).
    pub fn render(&self, gauges: &[(&str, &str, f64)]) -> String {
        let mut out = String::new();
        for (name, help, counter) in [
            (
                "chatkeeper_updates_received_total",
                "Updates received from getUpdates.",
                &self.updates_received,
            ),
            (
                "chatkeeper_messages_stored_total",
                "Messages and edits written to the store.",
                &self.messages_stored,
            ),
            (
                "chatkeeper_batches_stored_total",
                "getUpdates batches stored durably.",
                &self.batches_stored,
            ),
            (
                "chatkeeper_reactions_sent_total",
                "Emoji reactions set.",
                &self.reactions_sent,
            ),
            (
                "chatkeeper_spontaneous_posts_total",
                "Posts made without being addressed.",
                &self.spontaneous_posts,
            ),
            (
                "chatkeeper_store_errors_total",
                "Failed store writes (the batch is retried).",
                &self.store_errors,
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                counter.load(Relaxed)
            );
        }
        for (name, help, label, map) in [
            (
                "chatkeeper_replies_sent_total",
                "Replies sent, by reply engine.",
                "engine",
                &self.replies,
            ),
            (
                "chatkeeper_api_errors_total",
                "Failed Bot API calls, by kind.",
                "kind",
                &self.api_errors,
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for (key, value) in map.lock().expect("metrics").iter() {
                let _ = writeln!(out, "{name}{{{label}=\"{key}\"}} {value}");
            }
        }
        self.flush_latency.render(
            &mut out,
            "chatkeeper_flush_seconds",
            "Time to store and flush one getUpdates batch.",
        );
        self.reply_latency.render(
            &mut out,
            "chatkeeper_reply_seconds",
            "Time from receiving an update to sending its reply request.",
        );
        let _ = writeln!(
            out,
            "# HELP chatkeeper_handlers_in_flight Update handlers running now.\n\
             # TYPE chatkeeper_handlers_in_flight gauge\nchatkeeper_handlers_in_flight {}",
            self.handlers_in_flight.load(Relaxed)
        );
        for (name, help, value) in gauges {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative_and_render_every_series() {
        let metrics = Metrics::default();
        metrics.flush_latency.observe(Duration::from_micros(1500));
        metrics.flush_latency.observe(Duration::from_millis(30));
        metrics.reply_sent("offline");
        metrics.reply_sent("offline");
        metrics.api_error("retry_after");
        let text = metrics.render(&[("chatkeeper_store_bytes", "Size.", 42.0)]);
        assert!(text.contains("chatkeeper_flush_seconds_bucket{le=\"0.002\"} 1"));
        assert!(text.contains("chatkeeper_flush_seconds_bucket{le=\"0.05\"} 2"));
        assert!(text.contains("chatkeeper_flush_seconds_count 2"));
        assert!(text.contains("chatkeeper_replies_sent_total{engine=\"offline\"} 2"));
        assert!(text.contains("chatkeeper_api_errors_total{kind=\"retry_after\"} 1"));
        assert!(text.contains("chatkeeper_store_bytes 42"));
        assert_eq!(metrics.flush_latency.mean(), Duration::from_micros(15750));
    }
}
