//! Noticing when errors pile up, so that the admins are told (see `Ctx::note_error`).

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Repeated-error detection for admin alerts.
#[derive(Default)]
pub struct Alerts(Mutex<AlertState>);

#[derive(Default)]
struct AlertState {
    recent: VecDeque<Instant>,
    last_alert: Option<Instant>,
}

/// Errors within this window that make an alert.
const ALERT_WINDOW: Duration = Duration::from_secs(300);
const ALERT_AFTER: usize = 5;
const ALERT_EVERY: Duration = Duration::from_secs(1800);

impl Alerts {
    /// Records an error; returns the alert when one is due: how many errors within how many
    /// minutes, and the last one.
    pub fn record(&self, what: String, now: Instant) -> Option<(usize, u64, String)> {
        let mut state = self.0.lock().expect("alerts");
        state.recent.push_back(now);
        while state
            .recent
            .front()
            .is_some_and(|&t| now.duration_since(t) > ALERT_WINDOW)
        {
            state.recent.pop_front();
        }
        let due = state.recent.len() >= ALERT_AFTER
            && state
                .last_alert
                .is_none_or(|t| now.duration_since(t) >= ALERT_EVERY);
        if !due {
            return None;
        }
        state.last_alert = Some(now);
        Some((state.recent.len(), ALERT_WINDOW.as_secs() / 60, what))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alerts_fire_after_repeated_errors_and_then_rest() {
        let alerts = Alerts::default();
        let t0 = Instant::now();
        for i in 0..4 {
            assert_eq!(alerts.record(format!("e{i}"), t0), None);
        }
        let alert = alerts
            .record("timeout".into(), t0)
            .expect("fifth error alerts");
        assert_eq!(alert, (5, 5, "timeout".to_string()));
        assert_eq!(
            alerts.record("again".into(), t0 + Duration::from_secs(60)),
            None
        );
        let later = t0 + ALERT_EVERY + Duration::from_secs(1);
        for _ in 0..4 {
            alerts.record("x".into(), later);
        }
        assert!(alerts.record("x".into(), later).is_some());
    }
}
