//! Long polling with at-least-once recording.
//!
//! Telegram treats every update below the `offset` of a `getUpdates` call as confirmed and never
//! sends it again. So a batch is stored and flushed (one group commit for the whole batch) before
//! the next call carries the higher offset; a crash at any point loses nothing Telegram will not
//! deliver again, and redelivered updates are stored idempotently (same keys).

use super::ctx::Ctx;
use super::handlers::{self, Tree};
use super::{api, record};
use crate::store::{ChatInfo, Message, MessageRef, UserInfo};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use teloxide::prelude::*;
use teloxide::types::{AllowedUpdate, Update, UpdateKind};
use teloxide::RequestError;
use tokio::task::JoinSet;

/// Long-poll timeout, below the HTTP client's own request timeout.
const POLL_SECS: u32 = 10;
/// Waits after failed polls: doubling from the first to the last.
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How long in-flight handlers may run on after shutdown before they are cancelled.
const HANDLER_GRACE: Duration = Duration::from_secs(3);

/// Polls until shutdown.
pub async fn run(ctx: &Ctx, tree: Tree) {
    let mut shutdown = ctx.shutdown.clone();
    let mut handlers = JoinSet::new();
    let mut offset: i32 = 0;
    let mut backoff = FIRST_BACKOFF;
    while !*shutdown.borrow() {
        let request = ctx
            .bot
            .inner()
            .get_updates()
            .offset(offset)
            .timeout(POLL_SECS)
            .allowed_updates(vec![
                AllowedUpdate::Message,
                AllowedUpdate::EditedMessage,
                AllowedUpdate::CallbackQuery,
            ]);
        let result = tokio::select! {
            result = request.send() => result,
            _ = shutdown.changed() => break,
        };
        let updates = match result {
            Ok(updates) => {
                backoff = FIRST_BACKOFF;
                updates
            }
            Err(e) => {
                ctx.metrics.api_error(api::error_kind(&e));
                let wait = match &e {
                    RequestError::RetryAfter(after) => after.duration(),
                    _ => {
                        ctx.note_error(format!("getUpdates: {e}"));
                        let wait = backoff;
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                        wait
                    }
                };
                tracing::warn!(error = %e, wait_ms = wait.as_millis() as u64, "getUpdates failed");
                tokio::select! {
                    _ = tokio::time::sleep(wait) => continue,
                    _ = shutdown.changed() => break,
                }
            }
        };
        let Some(last) = updates.last() else {
            continue;
        };
        let received = Instant::now();
        ctx.metrics.updates_received.inc_by(updates.len() as u64);
        let last = last.id.as_offset();
        let batch = Batch::of(&updates);
        let stored = batch.stored.clone();
        if !store_durably(ctx, batch).await {
            break;
        }
        offset = last;
        for (update, stored) in updates.into_iter().zip(stored) {
            handlers.spawn(handlers::dispatch(
                ctx.clone(),
                tree.clone(),
                update,
                stored,
                received,
            ));
        }
        while let Some(done) = handlers.try_join_next() {
            handler_done(ctx, done);
        }
    }
    confirm(ctx, offset).await;
    let finished = tokio::time::timeout(HANDLER_GRACE, async {
        while let Some(done) = handlers.join_next().await {
            handler_done(ctx, done);
        }
    })
    .await;
    if finished.is_err() {
        tracing::warn!(
            cancelled = handlers.len(),
            "handlers still running at shutdown were cancelled"
        );
        handlers.abort_all();
    }
}

/// A handler's end. A panic is an error to note, and the bot goes on; with a store that checks
/// the runtime rule (debug builds, tests) it is passed on, so that a broken rule fails loudly.
fn handler_done(ctx: &Ctx, done: Result<(), tokio::task::JoinError>) {
    let Err(e) = done else { return };
    if !e.is_panic() {
        return;
    }
    if ctx.store.checks_runtime() {
        std::panic::resume_unwind(e.into_panic());
    }
    ctx.note_error(format!("a handler panicked: {e}"));
}

/// Stores a batch and flushes it, retrying until it works; `false` when shutdown came first
/// (the batch is then not confirmed and Telegram will send it again).
async fn store_durably(ctx: &Ctx, batch: Batch) -> bool {
    let count = batch.stored.iter().flatten().count() as u64;
    loop {
        let batch = batch.clone();
        let started = Instant::now();
        let mut shutdown = ctx.shutdown.clone();
        let write = ctx.blocking(move |ctx| Ok(batch.write(ctx)?));
        let result = tokio::select! {
            result = write => result,
            // Not confirmed: Telegram sends the batch again, and storing it twice is harmless.
            _ = shutdown.wait_for(|&stop| stop) => return false,
        };
        match result {
            Ok(()) => {
                ctx.metrics.flush_latency.observe(started.elapsed());
                ctx.metrics.messages_stored.inc_by(count);
                ctx.metrics.batches_stored.inc();
                return true;
            }
            Err(e) => {
                ctx.metrics.store_errors.inc();
                ctx.note_error(format!("storing updates: {e:#}"));
            }
        }
        if *shutdown.borrow() {
            return false;
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = shutdown.changed() => return false,
        }
    }
}

/// What one batch of updates writes. Each update is converted to its stored form here, once:
/// the handlers get the same value.
#[derive(Clone, Default)]
struct Batch {
    /// Each update's message as stored, in the updates' order (`None`: not a message).
    stored: Vec<Option<MessageRef>>,
    /// Which updates carry a new message (not an edit): those count in the trends.
    new: Vec<bool>,
    chats: HashMap<i64, ChatInfo>,
    users: HashMap<i64, UserInfo>,
}

impl Batch {
    fn of(updates: &[Update]) -> Batch {
        let mut batch = Batch::default();
        for update in updates {
            let message = match &update.kind {
                UpdateKind::Message(m) | UpdateKind::EditedMessage(m) => Some(m),
                // teloxide could not parse it (a newer Bot API shape): say so rather than
                // confirm it silently.
                UpdateKind::Error(raw) => {
                    tracing::warn!(update = %raw, "an update teloxide cannot parse was skipped");
                    None
                }
                _ => None,
            };
            batch
                .stored
                .push(message.map(|m| Arc::new(record::to_stored(m))));
            batch
                .new
                .push(matches!(update.kind, UpdateKind::Message(_)));
            let Some(message) = message else {
                continue;
            };
            batch
                .chats
                .insert(message.chat.id.0, record::chat_info(&message.chat));
            if let Some(user) = &message.from {
                batch
                    .users
                    .insert(user.id.0 as i64, record::user_info(user));
            }
        }
        batch
    }

    fn write(self, ctx: &Ctx) -> crate::store::Result<()> {
        let store = &ctx.store;
        // Analysed on every message; a message counted before (redelivered) is ignored.
        let fresh: Vec<&Message> = self
            .stored
            .iter()
            .zip(&self.new)
            .filter_map(|(m, new)| m.as_deref().filter(|_| *new))
            .collect();
        let analyses = ctx
            .analysis
            .analyze_all(fresh.iter().map(|m| m.text.as_str()));
        for (message, analysis) in fresh.iter().zip(&analyses) {
            ctx.trends.record(message, analysis);
        }
        // Written before the flush below: as durable as the messages.
        ctx.profiles.record_all(
            fresh
                .iter()
                .copied()
                .zip(analyses.iter().map(|a| a.as_ref())),
        )?;
        for (chat, info) in self.chats {
            store.set_chat_info(chat, info)?;
        }
        for (user, info) in self.users {
            store.set_user_info(user, info)?;
        }
        store.save_batch(self.stored.into_iter().flatten().collect())?;
        store.flush()
    }
}

/// Confirms the stored updates to Telegram before exiting, so that a restart does not answer
/// them again (`limit 1, timeout 0`: the one update this may return stays unconfirmed).
async fn confirm(ctx: &Ctx, offset: i32) {
    if offset == 0 {
        return;
    }
    let request = ctx
        .bot
        .inner()
        .get_updates()
        .offset(offset)
        .limit(1)
        .timeout(0);
    if let Err(e) = tokio::time::timeout(Duration::from_secs(1), request.send()).await {
        tracing::warn!(error = %e, "could not confirm the last updates; they may be answered again");
    }
}
