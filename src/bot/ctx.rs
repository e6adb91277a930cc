//! [`Ctx`]: what the poll loop, the handlers and the maintenance tasks share.

use super::alerts::Alerts;
use super::clock::Clock;
use super::limits::RateLimiter;
use super::metrics::Metrics;
use super::policy;
use super::settings::Settings;
use crate::analyzer::cache::AnalysisCache;
use crate::analyzer::profile::Profiles;
use crate::analyzer::trends::Trends;
use crate::chart::Painter;
use crate::config::Config;
use crate::reply::Responder;
use crate::search::SearchIndex;
use crate::store::Store;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Instant;
use teloxide::adaptors::Throttle;
use teloxide::types::Me;
use teloxide::Bot;
use tokio::sync::watch;

/// The bot as handlers use it: throttled to Telegram's limits (queued, and `RetryAfter`
/// honoured for sends).
pub type TgBot = Throttle<Bot>;

/// Everything the bot loop, handlers and maintenance tasks share. Cheap to clone.
#[derive(Clone)]
pub struct Ctx(pub(super) Arc<Shared>);

/// The state behind a [`Ctx`].
pub struct Shared {
    /// In debug builds (and in tests) a handle that refuses calls on the runtime's workers: see
    /// [`Ctx::blocking`].
    pub store: Store,
    pub config: Config,
    pub bot: TgBot,
    pub me: Me,
    pub responder: Responder,
    /// Analyses of messages, the recent ones cached in memory.
    pub analysis: AnalysisCache,
    /// Hourly summaries of the last week per chat (`/analytics`, the chats' mood).
    pub trends: Trends,
    /// How each person writes in each chat (`/me`, prompt hints).
    pub profiles: Profiles,
    /// Draws the charts, one at a time on one canvas.
    pub painter: Painter,
    /// The search index of the store, kept current by its own thread.
    pub search: SearchIndex,
    /// Chats' and users' settings, held in memory and written through.
    pub settings: Settings,
    pub limiter: RateLimiter,
    pub metrics: Metrics,
    pub started: Instant,
    /// Messages dated before this (start-up minus `bot.backlog_secs`) are not answered.
    pub backlog_before: i64,
    pub(super) alerts: Alerts,
    /// The time of scheduled work (the daily digest).
    pub clock: Clock,
    /// Flips to `true` once on SIGTERM / Ctrl-C.
    pub shutdown: watch::Receiver<bool>,
}

impl Deref for Ctx {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// How far back `/analytics` can look.
pub const TREND_WINDOW_SECS: i64 = 7 * 86_400;

impl Ctx {
    /// Runs `work` off the async runtime: every store, profile and settings call of the bot goes
    /// through here, so that waiting on disk never stalls the runtime's two workers (the store
    /// handle refuses anything else in debug builds and tests).
    pub async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Ctx) -> anyhow::Result<T> + Send + 'static,
    ) -> anyhow::Result<T> {
        let ctx = self.clone();
        crate::store::blocking(move || work(&ctx)).await?
    }

    /// Rebuilds the trends of one chat (or of all) from the stored messages of the window: at
    /// start-up, and after messages were deleted. Blocking: call it through [`Ctx::blocking`].
    pub fn rebuild_trends(&self, chat: Option<i64>) -> anyhow::Result<()> {
        let now = chrono::Utc::now().timestamp();
        let chats = self
            .trends
            .rebuild_from_store(&self.store, &self.analysis, chat, now)?;
        tracing::info!(chats, "trends rebuilt from the store");
        Ok(())
    }

    /// After messages were deleted or imported (in one chat, or anywhere): the offline models and
    /// the trends were built from the old history, so they are rebuilt.
    pub async fn history_changed(&self, chat: Option<i64>) -> anyhow::Result<()> {
        match chat {
            Some(chat) => {
                self.responder.offline().forget(chat);
            }
            None => {
                self.responder.offline().trim(0);
            }
        }
        self.blocking(move |ctx| ctx.rebuild_trends(chat)).await
    }

    /// The mood of a chat over the last [`policy::MOOD_WINDOW_SECS`].
    pub fn mood(&self, chat: i64) -> policy::Mood {
        let now = chrono::Utc::now().timestamp();
        policy::Mood::of(
            &self
                .trends
                .summary(chat, now - policy::MOOD_WINDOW_SECS, now),
        )
    }

    /// Whether `user` is one of the configured bot administrators.
    pub fn is_admin(&self, user: Option<&teloxide::types::User>) -> bool {
        user.is_some_and(|u| self.config.admins.contains(&(u.id.0 as i64)))
    }
}
