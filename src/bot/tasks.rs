//! Maintenance tasks of a running bot: retention, scheduled backups with rotation, trimming of
//! in-memory models and limits, handing freed memory back to the system, expiry of old trend
//! hours, spontaneous posts, the daily digest. They share the bot's [`Ctx`], log what they did, and stop with the
//! bot. (Flushing is the store's own group commit, every 100 ms, plus one
//! flush per `getUpdates` batch in the poll loop.)

use super::ctx::Ctx;
use super::digest;
use super::spontaneous;
use crate::search::Deletion;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

/// Starts every enabled task.
pub fn spawn(ctx: &Ctx) -> Vec<JoinHandle<()>> {
    let mut tasks = vec![
        every(ctx, "trim", Duration::from_secs(600), trim),
        every(ctx, "memory", MEMORY_RELEASE_PERIOD, release_memory),
        every(ctx, "trends", Duration::from_secs(3600), expire_trends),
        every(
            ctx,
            "digest",
            Duration::from_secs(ctx.config.digest.check_every_secs),
            daily_digest,
        ),
    ];
    if ctx.config.retention.days > 0 {
        tasks.push(every(
            ctx,
            "retention",
            Duration::from_secs(3600),
            retention,
        ));
    }
    if ctx.config.backup.every_hours > 0 {
        let period = Duration::from_secs(ctx.config.backup.every_hours * 3600);
        // Due one period after the newest scheduled backup, so that restarts do not keep
        // postponing it (and at least a minute after start-up).
        let age = newest_backup_age(&ctx.config.backup_dir()).unwrap_or(period);
        let first = period.saturating_sub(age).max(Duration::from_secs(60));
        tasks.push(every_after(ctx, "backup", first, period, scheduled_backup));
    }
    if ctx.config.spontaneous.enabled {
        let period = Duration::from_secs_f64(ctx.config.spontaneous.check_every_minutes * 60.0);
        tasks.push(every(ctx, "spontaneous", period, spontaneous_post));
    }
    tasks
}

/// Runs `work` every `period` (first after one period) until shutdown.
fn every<F, Fut>(ctx: &Ctx, name: &'static str, period: Duration, work: F) -> JoinHandle<()>
where
    F: Fn(Ctx) -> Fut + Send + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send,
{
    every_after(ctx, name, period, period, work)
}

/// Runs `work` after `first`, then every `period`, until shutdown; errors are logged and noted
/// for the admins, and the task goes on.
fn every_after<F, Fut>(
    ctx: &Ctx,
    name: &'static str,
    first: Duration,
    period: Duration,
    work: F,
) -> JoinHandle<()>
where
    F: Fn(Ctx) -> Fut + Send + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send,
{
    let ctx = ctx.clone();
    tokio::spawn(async move {
        let mut shutdown = ctx.shutdown.clone();
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + first, period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                _ = shutdown.wait_for(|&stop| stop) => return,
            }
            if let Err(e) = work(ctx.clone()).await {
                ctx.note_error(format!("maintenance task {name}: {e:#}"));
            }
        }
    })
}

/// How often freed memory goes back to the system: soon after a backup, a chart or a model
/// build, at a cost of about a millisecond each time.
const MEMORY_RELEASE_PERIOD: Duration = Duration::from_secs(10);

async fn release_memory(ctx: Ctx) -> anyhow::Result<()> {
    let took = ctx
        .blocking(|_| {
            let started = Instant::now();
            crate::memory::release_free_memory();
            Ok(started.elapsed())
        })
        .await?;
    tracing::debug!(micros = took.as_micros(), "handed freed memory back");
    Ok(())
}

async fn trim(ctx: Ctx) -> anyhow::Result<()> {
    let keep = ctx.config.llm.offline.max_chats / 2;
    let models = ctx.responder.offline().trim(keep);
    let windows = ctx.limiter.trim(Instant::now());
    tracing::info!(
        models,
        windows,
        "trimmed offline models and rate-limit windows"
    );
    Ok(())
}

/// Drops trend hours older than the window; logs how the analysis cache does.
async fn expire_trends(ctx: Ctx) -> anyhow::Result<()> {
    let hours = ctx.trends.trim(chrono::Utc::now().timestamp());
    let stats = ctx.analysis.stats();
    tracing::info!(
        trend_hours = hours,
        analysis_hits = stats.hits,
        analysis_misses = stats.misses,
        "expired old trend hours"
    );
    Ok(())
}

async fn retention(ctx: Ctx) -> anyhow::Result<()> {
    let days = ctx.config.retention.days;
    let before = chrono::Utc::now().timestamp() - days as i64 * 86_400;
    let purged = ctx
        .blocking(move |ctx| {
            let store = &ctx.store;
            let old: Vec<i64> = store
                .chats()
                .into_iter()
                .filter(|&chat| {
                    store
                        .chat_stats(chat)
                        .and_then(|s| s.first_activity)
                        .is_some_and(|first| first < before)
                })
                .collect();
            let purged = store.purge_before(before)?;
            if purged > 0 {
                ctx.search.forget_deleted(old, Deletion::Expired);
            }
            Ok(purged)
        })
        .await?;
    if purged > 0 {
        ctx.responder.offline().trim(0);
    }
    tracing::info!(purged, days, "retention purge");
    Ok(())
}

async fn scheduled_backup(ctx: Ctx) -> anyhow::Result<()> {
    let dir = ctx.config.backup_dir();
    let keep = ctx.config.backup.keep;
    let (file, summary, removed) = ctx
        .blocking(move |ctx| {
            std::fs::create_dir_all(&dir)?;
            let file = dir.join(format!(
                "{SCHEDULED_PREFIX}{}.ckb",
                chrono::Utc::now().format("%Y%m%d-%H%M%S")
            ));
            let summary = ctx.store.backup(&file)?;
            let removed = rotate(&dir, keep)?;
            Ok((file, summary, removed))
        })
        .await?;
    tracing::info!(
        file = %file.display(),
        messages = summary.messages,
        bytes = summary.bytes,
        removed,
        "scheduled backup"
    );
    Ok(())
}

async fn daily_digest(ctx: Ctx) -> anyhow::Result<()> {
    let posted = digest::post_due(&ctx).await?;
    if !posted.is_empty() {
        tracing::info!(chats = ?posted, "posted the daily digest");
    }
    Ok(())
}

async fn spontaneous_post(ctx: Ctx) -> anyhow::Result<()> {
    if spontaneous::post_once(&ctx).await?.is_none() {
        tracing::debug!("no chat for a spontaneous post");
    }
    Ok(())
}

/// Scheduled backups are named so; manual ones (`/backup`) are not rotated.
const SCHEDULED_PREFIX: &str = "scheduled-";

/// The scheduled backups in `dir`, oldest first (names carry the UTC time, so name order is
/// age order).
fn scheduled_backups(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut backups: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| {
            path.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(SCHEDULED_PREFIX) && n.ends_with(".ckb"))
        })
        .collect();
    backups.sort();
    Ok(backups)
}

/// How long ago the newest scheduled backup was written, if there is one.
fn newest_backup_age(dir: &Path) -> Option<Duration> {
    let newest = scheduled_backups(dir).ok()?.pop()?;
    std::fs::metadata(newest)
        .ok()?
        .modified()
        .ok()?
        .elapsed()
        .ok()
}

/// Deletes the oldest scheduled backups beyond `keep`; returns how many.
pub fn rotate(dir: &Path, keep: usize) -> std::io::Result<usize> {
    let backups = scheduled_backups(dir)?;
    let excess = backups.len().saturating_sub(keep);
    for old in &backups[..excess] {
        std::fs::remove_file(old)?;
    }
    Ok(excess)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_keeps_the_newest_scheduled_backups_only() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "scheduled-20260101-000000.ckb",
            "scheduled-20260102-000000.ckb",
            "scheduled-20260103-000000.ckb",
            "manual-20250101-000000.ckb",
            "scheduled-20260104-000000.partial",
        ] {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        assert_eq!(rotate(dir.path(), 2).unwrap(), 1);
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                "manual-20250101-000000.ckb",
                "scheduled-20260102-000000.ckb",
                "scheduled-20260103-000000.ckb",
                "scheduled-20260104-000000.partial"
            ]
        );
    }
}
