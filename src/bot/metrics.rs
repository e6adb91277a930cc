//! Counters and latency histograms of the running bot, exposed in the OpenMetrics text format
//! for `/metrics` (by `prometheus-client`) and summarised by `/health`. Counters, gauges and
//! histograms are atomics; a labelled family takes a short read lock (a write lock the first
//! time a label is seen), never held across an `.await`.

use prometheus_client::encoding::text::{encode_eof, encode_registry};
use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::{Registry, Unit};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// A cumulative latency histogram.
///
/// Kept instead of `prometheus-client`'s own: that one takes a write lock per observation and
/// shows its sum and count only to tests, while `/health` needs the mean. This one is atomics,
/// and the crate encodes it like its own. Clones share their counts (one goes to the registry).
#[derive(Clone, Debug, Default)]
pub struct Histogram(Arc<Counts>);

#[derive(Debug, Default)]
struct Counts {
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    /// Records one observation.
    pub fn observe(&self, took: Duration) {
        let seconds = took.as_secs_f64();
        let counts = &self.0;
        if let Some(i) = BUCKETS.iter().position(|&bound| seconds <= bound) {
            counts.buckets[i].fetch_add(1, Relaxed);
        }
        counts.count.fetch_add(1, Relaxed);
        counts
            .sum_micros
            .fetch_add(took.as_micros() as u64, Relaxed);
    }

    /// How many observations.
    pub fn count(&self) -> u64 {
        self.0.count.load(Relaxed)
    }

    /// The mean, or zero before any observation.
    pub fn mean(&self) -> Duration {
        let count = self.count();
        Duration::from_micros(
            self.0
                .sum_micros
                .load(Relaxed)
                .checked_div(count)
                .unwrap_or(0),
        )
    }
}

impl TypedMetric for Histogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for Histogram {
    fn encode(&self, mut encoder: MetricEncoder) -> std::fmt::Result {
        // The encoder makes the counts cumulative itself; observations above the last bound
        // are only in the total count, so the `+Inf` bucket gets what the others lack.
        let mut buckets: Vec<(f64, u64)> = BUCKETS
            .iter()
            .zip(&self.0.buckets)
            .map(|(&bound, bucket)| (bound, bucket.load(Relaxed)))
            .collect();
        let bounded: u64 = buckets.iter().map(|(_, n)| n).sum();
        // An observation in progress may be in its bucket and not yet in the count.
        let count = self.count().max(bounded);
        buckets.push((f64::MAX, count - bounded));
        let sum = self.0.sum_micros.load(Relaxed) as f64 / 1e6;
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

/// A counter by one label, with its total for `/health` (a family cannot be summed).
struct Labelled<L> {
    family: Family<L, Counter>,
    total: Counter,
}

impl<L: Clone + std::hash::Hash + Eq> Default for Labelled<L> {
    fn default() -> Self {
        Labelled {
            family: Family::default(),
            total: Counter::default(),
        }
    }
}

impl<L: Clone + std::hash::Hash + Eq> Labelled<L> {
    fn inc(&self, label: L) {
        self.family.get_or_create(&label).inc();
        self.total.inc();
    }
}

/// The engine a reply was written by.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EngineLabel {
    engine: &'static str,
}

/// The kind of a failed Bot API call.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: &'static str,
}

/// Everything `/metrics` shows that the bot counts itself.
pub struct Metrics {
    pub updates_received: Counter,
    pub messages_stored: Counter,
    pub batches_stored: Counter,
    pub reactions_sent: Counter,
    pub spontaneous_posts: Counter,
    pub store_errors: Counter,
    /// Update handlers running now (commands, replies, buttons).
    pub handlers_in_flight: Gauge,
    /// Replies sent, by the engine that wrote them.
    replies: Labelled<EngineLabel>,
    /// Bot API errors by kind (`retry_after`, `network`, `server`, `api`, `invalid_json`, …).
    api_errors: Labelled<KindLabel>,
    /// Storing and flushing one `getUpdates` batch.
    pub flush_latency: Histogram,
    /// From an update's arrival to its reply request leaving.
    pub reply_latency: Histogram,
    /// The metrics above by name; they are registered once, as clones sharing their values.
    registry: Registry,
}

/// A figure read at scrape time (the store's size, uptime, …) by whoever renders.
pub enum Scraped {
    /// A value that goes up and down, with its unit if it has one.
    Gauge(f64, Option<Unit>),
    /// A count since start, read from where it is kept.
    Counter(u64),
}

impl Default for Metrics {
    fn default() -> Self {
        let metrics = Metrics {
            updates_received: Counter::default(),
            messages_stored: Counter::default(),
            batches_stored: Counter::default(),
            reactions_sent: Counter::default(),
            spontaneous_posts: Counter::default(),
            store_errors: Counter::default(),
            handlers_in_flight: Gauge::default(),
            replies: Labelled::default(),
            api_errors: Labelled::default(),
            flush_latency: Default::default(),
            reply_latency: Default::default(),
            registry: Registry::default(),
        };
        let mut registry = Registry::default();
        for (name, help, counter) in [
            (
                "chatkeeper_updates_received",
                "Updates received from getUpdates",
                &metrics.updates_received,
            ),
            (
                "chatkeeper_messages_stored",
                "Messages and edits written to the store",
                &metrics.messages_stored,
            ),
            (
                "chatkeeper_batches_stored",
                "getUpdates batches stored durably",
                &metrics.batches_stored,
            ),
            (
                "chatkeeper_reactions_sent",
                "Emoji reactions set",
                &metrics.reactions_sent,
            ),
            (
                "chatkeeper_spontaneous_posts",
                "Posts made without being addressed",
                &metrics.spontaneous_posts,
            ),
            (
                "chatkeeper_store_errors",
                "Failed store writes (the batch is retried)",
                &metrics.store_errors,
            ),
        ] {
            registry.register(name, help, counter.clone());
        }
        registry.register(
            "chatkeeper_replies_sent",
            "Replies sent, by reply engine",
            metrics.replies.family.clone(),
        );
        registry.register(
            "chatkeeper_api_errors",
            "Failed Bot API calls, by kind",
            metrics.api_errors.family.clone(),
        );
        registry.register_with_unit(
            "chatkeeper_flush",
            "Time to store and flush one getUpdates batch",
            Unit::Seconds,
            metrics.flush_latency.clone(),
        );
        registry.register_with_unit(
            "chatkeeper_reply",
            "Time from receiving an update to sending its reply request",
            Unit::Seconds,
            metrics.reply_latency.clone(),
        );
        registry.register(
            "chatkeeper_handlers_in_flight",
            "Update handlers running now",
            metrics.handlers_in_flight.clone(),
        );
        Metrics {
            registry,
            ..metrics
        }
    }
}

impl Metrics {
    /// Counts a reply written by `engine`.
    pub fn reply_sent(&self, engine: &'static str) {
        self.replies.inc(EngineLabel { engine });
    }

    /// Counts a failed Bot API call.
    pub fn api_error(&self, kind: &'static str) {
        self.api_errors.inc(KindLabel { kind });
    }

    /// All API errors so far.
    pub fn api_errors_total(&self) -> u64 {
        self.api_errors.total.get()
    }

    /// All replies so far.
    pub fn replies_total(&self) -> u64 {
        self.replies.total.get()
    }

    /// The OpenMetrics text exposition: the bot's own metrics, then `scraped`, the figures the
    /// caller read for this scrape as (name, help, value).
    pub fn render(&self, scraped: Vec<(&str, &str, Scraped)>) -> String {
        let mut figures = Registry::default();
        for (name, help, value) in scraped {
            match value {
                Scraped::Gauge(value, None) => figures.register(name, help, ConstGauge::new(value)),
                Scraped::Gauge(value, Some(unit)) => {
                    figures.register_with_unit(name, help, unit, ConstGauge::new(value))
                }
                Scraped::Counter(value) => figures.register(name, help, ConstCounter::new(value)),
            }
        }
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode_registry(&mut out, &self.registry)
            .and_then(|()| encode_registry(&mut out, &figures))
            .and_then(|()| encode_eof(&mut out));
        out
    }
}

/// The content type of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative_and_render_every_series() {
        let metrics = Metrics::default();
        metrics.flush_latency.observe(Duration::from_micros(1500));
        metrics.flush_latency.observe(Duration::from_millis(30));
        metrics.flush_latency.observe(Duration::from_secs(60));
        metrics.reply_sent("offline");
        metrics.reply_sent("offline");
        metrics.api_error("retry_after");
        metrics.updates_received.inc_by(3);
        let text = metrics.render(vec![
            (
                "chatkeeper_store",
                "Size",
                Scraped::Gauge(42.0, Some(Unit::Bytes)),
            ),
            ("chatkeeper_store_commits", "Commits", Scraped::Counter(7)),
        ]);
        for line in [
            "# TYPE chatkeeper_updates_received counter",
            "chatkeeper_updates_received_total 3",
            "chatkeeper_flush_seconds_bucket{le=\"0.002\"} 1",
            "chatkeeper_flush_seconds_bucket{le=\"0.05\"} 2",
            "chatkeeper_flush_seconds_bucket{le=\"+Inf\"} 3",
            "chatkeeper_flush_seconds_count 3",
            "chatkeeper_replies_sent_total{engine=\"offline\"} 2",
            "chatkeeper_api_errors_total{kind=\"retry_after\"} 1",
            "chatkeeper_handlers_in_flight 0",
            "chatkeeper_store_bytes 42",
            "chatkeeper_store_commits_total 7",
        ] {
            assert!(text.lines().any(|l| l.starts_with(line)), "{line}\n{text}");
        }
        assert!(text.ends_with("# EOF\n"), "{text}");
        assert_eq!(metrics.replies_total(), 2);
        assert_eq!(metrics.api_errors_total(), 1);
        assert_eq!(
            metrics.flush_latency.mean(),
            Duration::from_micros((1_500 + 30_000 + 60_000_000) / 3)
        );
    }
}
