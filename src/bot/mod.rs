//! The Telegram bot: `chatkeeper run`.
//!
//! Long polling is our own loop ([`poll`]) rather than teloxide's dispatcher, because the offset
//! that confirms updates to Telegram must advance only after the batch is durably stored. Each
//! update is then routed ([`handlers`]) on its own task to the commands ([`commands`], by
//! audience), the buttons, or the replies to ordinary messages ([`replies`]). Everything shares
//! one [`Ctx`]: the store, the configuration, the throttled bot, the reply engines, limits and
//! metrics; the maintenance tasks ([`tasks`]) get the same handle.
//!
//! The modules read top-down: this file starts everything; below it the poll loop, the tasks and
//! the metrics endpoint; then routing, the commands, replies, spontaneous posts and the daily
//! digest; then what they share to speak (the outbox, prompts, buttons); and at the bottom the
//! context, its clock, the API calls, settings, limits, metrics and the mapping of Telegram's
//! messages to stored ones.
//! Nothing imports upwards. Whatever the bot says comes from [`crate::texts`].

mod alerts;
mod api;
mod buttons;
mod clock;
mod commands;
mod ctx;
mod digest;
mod handlers;
mod http;
mod limits;
mod metrics;
mod outbox;
mod policy;
mod poll;
mod prompts;
pub mod record;
mod replies;
pub mod settings;
mod spontaneous;
mod tasks;

pub use clock::Clock;
pub use ctx::Ctx;

use crate::analyzer::cache::AnalysisCache;
use crate::analyzer::profile::Profiles;
use crate::analyzer::trends::Trends;
use crate::analyzer::Analyzer;
use crate::chart::Painter;
use crate::config::Config;
use crate::reply::Responder;
use crate::search::SearchIndex;
use crate::store::Store;
use anyhow::{anyhow, bail, Context as _};
use limits::RateLimiter;
use metrics::Metrics;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;
use teloxide::adaptors::throttle::Limits;
use teloxide::prelude::*;
use teloxide::{ApiError, RequestError};
use tokio::sync::watch;

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

/// Analyses kept in memory (each a few hundred bytes: ~1.5 MiB). What is re-analysed is recent
/// history (`/words` reads a chat's last 3,000 messages), and a miss costs only ~3.4 µs.
const ANALYSIS_CACHE_ENTRIES: usize = 4_096;
/// Profiles kept in memory (each about 300 bytes); the rest are read from the store.
const PROFILE_CACHE_ENTRIES: usize = 10_000;

/// Runs the bot until `shutdown` resolves, then stops polling, lets in-flight handlers finish
/// (briefly), flushes the store and returns.
///
/// In debug builds the bot checks that it never calls the store on the runtime's workers (see
/// [`Store::checking_runtime`]); tests pass a checking handle in every build.
pub async fn run(
    config: Config,
    store: Store,
    connection: Connection,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    run_with_clock(config, store, connection, shutdown, Clock::system()).await
}

/// [`run`] with the time of scheduled work (the daily digest) read from `clock`: tests set it.
pub async fn run_with_clock(
    config: Config,
    store: Store,
    connection: Connection,
    shutdown: impl Future<Output = ()> + Send + 'static,
    clock: Clock,
) -> anyhow::Result<()> {
    let store = match cfg!(debug_assertions) {
        true => store.checking_runtime(),
        false => store,
    };
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
    let opted_out = crate::store::blocking(move || settings::profile_opt_outs(&profile_store))
        .await
        .context("reading the profile opt-outs panicked")??;
    let index_store = store.clone();
    let search = crate::store::blocking(move || SearchIndex::open(&index_store))
        .await
        .context("opening the search index panicked")?
        .context("opening the search index")?;
    let ctx = Ctx(Arc::new(ctx::Shared {
        search,
        profiles: Profiles::new(store.clone(), PROFILE_CACHE_ENTRIES, opted_out),
        painter: Painter::start().context("cannot start the chart painter")?,
        settings: settings::Settings::default(),
        limiter: RateLimiter::new(config.limits.chat_per_minute, config.limits.user_per_minute),
        bot: bot.throttle(Limits::default()),
        analysis: AnalysisCache::new(Analyzer::default(), ANALYSIS_CACHE_ENTRIES),
        trends: Trends::new(ctx::TREND_WINDOW_SECS / 3600),
        store,
        config,
        me,
        responder,
        metrics: Metrics::default(),
        started: Instant::now(),
        backlog_before: chrono::Utc::now().timestamp()
            - i64::try_from(config_backlog).unwrap_or(i64::MAX / 2),
        alerts: Default::default(),
        clock,
        shutdown: stop_rx,
    }));
    tokio::spawn(async move {
        shutdown.await;
        tracing::info!("shutting down: no new updates, finishing handlers, flushing");
        let _ = stop_tx.send(true);
    });
    ctx.blocking(|ctx| ctx.rebuild_trends(None))
        .await
        .context("rebuilding the chats' trends")?;
    commands::set_menu(&ctx).await;
    if ctx.config.metrics.enabled {
        http::serve(ctx.clone()).await?;
    }
    let tasks = tasks::spawn(&ctx);
    // Started last, and stopped on the blocking pool: stopping waits for its thread.
    let indexing = ctx
        .search
        .spawn()
        .context("starting the search index thread")?;
    poll::run(&ctx, handlers::tree()).await;
    for task in tasks {
        task.abort();
    }
    let flushed = ctx
        .blocking(|ctx| Ok(ctx.store.flush()?))
        .await
        .context("the final flush");
    // The index writes its buffer out (what it has not read, the next start reads).
    crate::store::blocking(move || indexing.stop())
        .await
        .context("stopping the search index panicked")?;
    flushed?;
    tracing::info!("stopped; everything received is stored");
    Ok(())
}
