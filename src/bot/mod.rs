//! The Telegram bot: `chatkeeper run`.
//!
//! Long polling is our own loop ([`poll`]) rather than teloxide's dispatcher, because the offset
//! that confirms updates to Telegram must advance only after the batch is durably stored. Each
//! update is then handed to a dptree of handlers ([`handlers`], [`commands`]) on its own task.
//! Everything shares one [`Ctx`]: the store, the configuration, the throttled bot, the reply
//! engines, limits and metrics; maintenance tasks ([`crate::tasks`]) get the same handle.

pub mod commands;
mod handlers;
pub mod http;
mod limits;
pub mod metrics;
pub mod policy;
mod poll;
pub mod record;
pub mod settings;
pub mod spontaneous;
pub mod texts;

use crate::analyzer::cache::AnalysisCache;
use crate::analyzer::profile::Profiles;
use crate::analyzer::trends::Trends;
use crate::analyzer::Analyzer;
use crate::chart::Painter;
use crate::config::Config;
use crate::reply::Responder;
use crate::store::Store;
use anyhow::{anyhow, bail, Context as _};
use limits::RateLimiter;
use metrics::Metrics;
use std::collections::VecDeque;
use std::future::Future;
use std::ops::Deref;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use teloxide::adaptors::throttle::Limits;
use teloxide::adaptors::Throttle;
use teloxide::prelude::*;
use teloxide::requests::{Output, Request};
use teloxide::types::Me;
use teloxide::{ApiError, RequestError};
use tokio::sync::watch;

/// The bot as handlers use it: throttled to Telegram's limits (queued, and `RetryAfter`
/// honoured for sends).
pub type TgBot = Throttle<Bot>;

/// Everything the bot loop, handlers and maintenance tasks share. Cheap to clone.
#[derive(Clone)]
pub struct Ctx(Arc<Shared>);

/// The state behind a [`Ctx`].
pub struct Shared {
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
    pub limiter: RateLimiter,
    pub metrics: Metrics,
    /// The handler tree, built once rather than per update.
    handlers: handlers::Tree,
    pub started: Instant,
    /// Messages dated before this (start-up minus `bot.backlog_secs`) are not answered.
    pub backlog_before: i64,
    alerts: Alerts,
    /// Flips to `true` once on SIGTERM / Ctrl-C.
    pub shutdown: watch::Receiver<bool>,
}

impl Deref for Ctx {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

const NO_TOKEN: &str = "TELOXIDE_TOKEN is not set. Create a bot with @BotFather in Telegram \
     (https://t.me/BotFather, command /newbot), then run `export TELOXIDE_TOKEN=<the token>` \
     (or put it in the systemd unit's environment file) and start chatkeeper again";

/// Where the Bot API is and how to log in.
#[derive(Clone)]
pub struct Connection {
    pub token: String,
    /// `None` for Telegram's own `https://api.telegram.org`.
    pub api_url: Option<reqwest::Url>,
}

/// Without the token: a connection may end up in a log.
impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("token", &"***")
            .field("api_url", &self.api_url)
            .finish()
    }
}

impl Connection {
    /// From `TELOXIDE_TOKEN` and `TELOXIDE_API_URL`, with errors that say what to do.
    pub fn from_env() -> anyhow::Result<Connection> {
        let token = std::env::var("TELOXIDE_TOKEN")
            .ok()
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
            .ok_or_else(|| anyhow!(NO_TOKEN))?;
        let api_url = match std::env::var("TELOXIDE_API_URL") {
            Ok(url) => Some(url.parse().with_context(|| {
                format!("TELOXIDE_API_URL {url:?} is not a URL like https://api.telegram.org")
            })?),
            Err(_) => None,
        };
        Ok(Connection { token, api_url })
    }
}

/// Runs the bot until `shutdown` resolves, then stops polling, lets in-flight handlers finish
/// (briefly), flushes the store and returns.
pub async fn run(
    config: Config,
    store: Store,
    connection: Connection,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let mut bot = Bot::new(connection.token);
    if let Some(url) = connection.api_url {
        bot = bot.set_api_url(url);
    }
    let me = match bot.get_me().await {
        Ok(me) => me,
        Err(RequestError::Api(ApiError::InvalidToken)) => bail!(
            "Telegram rejected the bot token in TELOXIDE_TOKEN. Copy it again from @BotFather \
             (/mybots → your bot → API Token; /revoke makes a new one) and restart"
        ),
        Err(e) => bail!("cannot reach the Telegram Bot API to check the token: {e}"),
    };
    tracing::info!(username = ?me.username, id = me.id.0, "logged in");
    let responder = Responder::new(&config.llm, store.clone())?;
    tracing::info!(engine = responder.primary_name(), "reply engine");
    let config_backlog = config.bot.backlog_secs;
    let (stop_tx, stop_rx) = watch::channel(false);
    let profile_store = store.clone();
    let opted_out = tokio::task::spawn_blocking(move || settings::profile_opt_outs(&profile_store))
        .await
        .context("reading the profile opt-outs panicked")??;
    let ctx = Ctx(Arc::new(Shared {
        profiles: Profiles::new(store.clone(), PROFILE_CACHE_ENTRIES, opted_out),
        painter: Painter::start().context("cannot start the chart painter")?,
        limiter: RateLimiter::new(config.limits.chat_per_minute, config.limits.user_per_minute),
        bot: bot.throttle(Limits::default()),
        analysis: AnalysisCache::new(Analyzer::default(), ANALYSIS_CACHE_ENTRIES),
        trends: Trends::new(TREND_WINDOW_SECS / 3600),
        store,
        config,
        me,
        responder,
        metrics: Metrics::default(),
        handlers: handlers::tree(),
        started: Instant::now(),
        backlog_before: chrono::Utc::now().timestamp()
            - i64::try_from(config_backlog).unwrap_or(i64::MAX / 2),
        alerts: Alerts::default(),
        shutdown: stop_rx,
    }));
    tokio::spawn(async move {
        shutdown.await;
        tracing::info!("shutting down: no new updates, finishing handlers, flushing");
        let _ = stop_tx.send(true);
    });
    let rebuilt = ctx.clone();
    tokio::task::spawn_blocking(move || rebuilt.rebuild_trends(None))
        .await
        .context("rebuilding the chats' trends panicked")??;
    commands::set_menu(&ctx).await;
    if ctx.config.metrics.enabled {
        http::serve(ctx.clone()).await?;
    }
    let tasks = crate::tasks::spawn(&ctx);
    poll::run(&ctx).await;
    for task in tasks {
        task.abort();
    }
    let store = ctx.store.clone();
    tokio::task::spawn_blocking(move || store.flush())
        .await
        .context("the final flush panicked")??;
    tracing::info!("stopped; everything received is stored");
    Ok(())
}

/// Analyses kept in memory (each a few hundred bytes: ~1.5 MiB). What is re-analysed is recent
/// history (`/words` reads a chat's last 3,000 messages), and a miss costs only ~3.4 µs.
const ANALYSIS_CACHE_ENTRIES: usize = 4_096;
/// Profiles kept in memory (each about 300 bytes); the rest are read from the store.
const PROFILE_CACHE_ENTRIES: usize = 10_000;
/// How far back `/analytics` can look.
pub const TREND_WINDOW_SECS: i64 = 7 * 86_400;

impl Ctx {
    /// Rebuilds the trends of one chat (or of all) from the stored messages of the window: at
    /// start-up, and after messages were deleted. Blocking: call it off the async runtime.
    pub fn rebuild_trends(&self, chat: Option<i64>) -> anyhow::Result<()> {
        let now = chrono::Utc::now().timestamp();
        let chats = self
            .trends
            .rebuild_from_store(&self.store, &self.analysis, chat, now)?;
        tracing::info!(chats, "trends rebuilt from the store");
        Ok(())
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

    /// Sends a request, retrying network errors, malformed answers and server errors with
    /// backoff and honouring `RetryAfter`; counts every failure in the metrics.
    pub async fn call<R>(&self, request: R) -> Result<Output<R>, RequestError>
    where
        R: Request<Err = RequestError>,
    {
        let mut backoff = Duration::from_millis(250);
        let mut attempt = 0;
        loop {
            attempt += 1;
            match request.send_ref().await {
                Ok(output) => return Ok(output),
                Err(e) => {
                    let kind = error_kind(&e);
                    self.metrics.api_error(kind);
                    let wait = match &e {
                        RequestError::RetryAfter(after) => after.duration(),
                        _ if retryable(&e) => backoff,
                        _ => return Err(e),
                    };
                    if attempt >= 5 || *self.shutdown.borrow() {
                        self.note_error(format!("{kind}: {e}"));
                        return Err(e);
                    }
                    tracing::warn!(error = %e, attempt, "Bot API call failed; retrying");
                    tokio::time::sleep(wait).await;
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
            }
        }
    }

    /// Whether `user` is one of the configured bot administrators.
    pub fn is_admin(&self, user: Option<&teloxide::types::User>) -> bool {
        user.is_some_and(|u| self.config.admins.contains(&(u.id.0 as i64)))
    }

    /// Remembers an error; when errors pile up, tells the admins (at most once per half hour).
    pub fn note_error(&self, what: String) {
        tracing::error!(error = %what, "bot error");
        if let Some(summary) = self.alerts.record(what, Instant::now()) {
            let ctx = self.clone();
            tokio::spawn(async move {
                for &admin in &ctx.config.admins {
                    let text = format!("⚠️ chatkeeper: {summary}");
                    // Not `call`: an alert about failing calls must not retry into more alerts.
                    let _ = ctx.bot.send_message(ChatId(admin), text).await;
                }
            });
        }
    }
}

/// The metrics label of a failed call.
fn error_kind(e: &RequestError) -> &'static str {
    match e {
        RequestError::RetryAfter(_) => "retry_after",
        RequestError::Network(_) => "network",
        RequestError::InvalidJson { .. } => "invalid_json",
        RequestError::Io(_) => "io",
        RequestError::MigrateToChatId(_) => "migrated",
        RequestError::Api(ApiError::Unknown(_)) => "server",
        RequestError::Api(_) => "api",
    }
}

/// Errors worth retrying: the request may well succeed a moment later.
fn retryable(e: &RequestError) -> bool {
    match e {
        RequestError::Network(_) | RequestError::InvalidJson { .. } | RequestError::Io(_) => true,
        RequestError::Api(ApiError::Unknown(text)) => {
            let text = text.to_ascii_lowercase();
            [
                "internal server error",
                "bad gateway",
                "gateway",
                "unavailable",
                "timeout",
            ]
            .iter()
            .any(|s| text.contains(s))
        }
        _ => false,
    }
}

/// Repeated-error detection for admin alerts.
#[derive(Default)]
struct Alerts(Mutex<AlertState>);

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
    /// Records an error; returns the alert text when one is due.
    fn record(&self, what: String, now: Instant) -> Option<String> {
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
        Some(format!(
            "{} errors in the last {} minutes; the last one: {what}",
            state.recent.len(),
            ALERT_WINDOW.as_secs() / 60
        ))
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
        assert!(
            alert.contains("5 errors") && alert.contains("timeout"),
            "{alert}"
        );
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
