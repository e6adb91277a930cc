//! [`Clock`]: what time the bot's scheduled work thinks it is (the daily digest's hour), so that
//! tests can set it.

use std::sync::Arc;

/// Unix time for the bot's scheduled work. Cheap to clone.
#[derive(Clone)]
pub struct Clock(Arc<dyn Fn() -> i64 + Send + Sync>);

impl Clock {
    /// The system's clock.
    pub fn system() -> Clock {
        Clock(Arc::new(|| chrono::Utc::now().timestamp()))
    }

    /// A clock that reads `now` (a test's, which it moves as it likes).
    pub fn new(now: impl Fn() -> i64 + Send + Sync + 'static) -> Clock {
        Clock(Arc::new(now))
    }

    /// Now, in seconds since the Unix epoch.
    pub fn now(&self) -> i64 {
        (self.0)()
    }
}
