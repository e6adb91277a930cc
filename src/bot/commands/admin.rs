//! The bot administrators' commands: `/global`, `/health`, `/backup`, `/import` and
//! `/purge_chat` (with its confirmation button). Store-wide figures and backups go to the admin
//! privately.

use crate::bot::buttons::Button;
use crate::bot::ctx::Ctx;
use crate::bot::outbox::{cannot_reach_privately, replace_text, say, say_privately, say_with};
use crate::import::{import_file, ImportOptions, ProfileUpdate};
use crate::search::Deletion;
use crate::texts::{self, BotHealth, Lang, Phrase};
use anyhow::Context as _;
use teloxide::net::Download;
use teloxide::prelude::*;
use teloxide::types::{InlineKeyboardButton, InlineKeyboardMarkup, InputFile, User};
use tokio::io::AsyncWriteExt;

/// `/global`: the store's totals.
pub async fn global(ctx: &Ctx, msg: &Message, lang: Lang) -> anyhow::Result<()> {
    let day_ago = chrono::Utc::now().timestamp() - 86_400;
    let (global, active) = ctx
        .blocking(move |ctx| {
            let store = &ctx.store;
            Ok((store.global_stats(), store.active_chats(day_ago).len()))
        })
        .await?;
    say_privately(ctx, msg, lang, texts::global(lang, &global, active)).await
}

/// `/health`: the bot's and the store's figures.
pub async fn health(ctx: &Ctx, msg: &Message, lang: Lang) -> anyhow::Result<()> {
    let store = ctx.blocking(|ctx| Ok(ctx.store.health())).await?;
    let metrics = &ctx.metrics;
    let bot = BotHealth {
        uptime_secs: ctx.started.elapsed().as_secs(),
        flush_mean_ms: metrics.flush_latency.mean().as_secs_f64() * 1e3,
        updates: metrics.updates_received.get(),
        handlers_running: metrics.handlers_in_flight.get().max(0) as u64,
        replies: metrics.replies_total(),
        api_errors: metrics.api_errors_total(),
        store_errors: metrics.store_errors.get(),
        offline_models: ctx.responder.offline().models(),
    };
    say_privately(ctx, msg, lang, texts::health(lang, &store, &bot)).await
}

/// `/backup`: writes a backup now and sends it to the admin privately when small enough.
pub async fn backup(ctx: &Ctx, msg: &Message, lang: Lang) -> anyhow::Result<()> {
    let Some(admin) = msg.from.as_ref() else {
        return Ok(());
    };
    say(ctx, msg, Phrase::BackupStarted.text(lang)).await?;
    let dir = ctx.config.backup_dir();
    let (summary, file) = ctx
        .blocking(move |ctx| {
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create the backup directory {}", dir.display()))?;
            let file = dir.join(format!(
                "manual-{}.ckb",
                chrono::Utc::now().format("%Y%m%d-%H%M%S")
            ));
            let summary = ctx.store.backup(&file)?;
            Ok((summary, file))
        })
        .await?;
    let described = format!(
        "{} · {} · {:.1} MB",
        file.display(),
        texts::messages(lang, summary.messages),
        summary.bytes as f64 / 1e6
    );
    // The path and the store's size are for the admin only.
    if summary.bytes > ctx.config.bot.max_backup_document_bytes {
        let text = format!("{} {described}", Phrase::BackupTooLarge.text(lang));
        return say_privately(ctx, msg, lang, text).await;
    }
    // Privately: a backup holds every chat, it must not land in a group.
    let sent = ctx
        .call(
            ctx.bot
                .send_document(admin.id, InputFile::file(&file))
                .caption(described.clone()),
        )
        .await;
    match sent {
        Ok(_) if msg.chat.is_private() => Ok(()),
        Ok(_) => say(ctx, msg, Phrase::SentPrivately.text(lang)).await,
        Err(e) => {
            tracing::warn!(error = %e, "could not send the backup to the admin");
            let phrase = if cannot_reach_privately(&e) {
                Phrase::NeedsPrivateChat
            } else {
                Phrase::BackupNotSent
            };
            say(ctx, msg, phrase.text(lang)).await
        }
    }
}

/// `/import` in reply to an uploaded `result.json`.
pub async fn import(ctx: &Ctx, msg: &Message, lang: Lang) -> anyhow::Result<()> {
    let Some(document) = msg.reply_to_message().and_then(|m| m.document()) else {
        return say(ctx, msg, Phrase::ImportNeedsDocument.text(lang)).await;
    };
    // teloxide reports an unknown size as u32::MAX; getFile below tells the real one.
    let known = document.file.size != u32::MAX;
    if known && u64::from(document.file.size) > ctx.config.bot.max_import_bytes {
        return say(ctx, msg, Phrase::ImportTooLarge.text(lang)).await;
    }
    say(ctx, msg, Phrase::ImportStarted.text(lang)).await?;
    let file = ctx.call(ctx.bot.get_file(document.file.id.clone())).await?;
    if u64::from(file.size) > ctx.config.bot.max_import_bytes {
        return say(ctx, msg, Phrase::ImportTooLarge.text(lang)).await;
    }
    let dir = ctx.config.data_dir.join("tmp");
    tokio::fs::create_dir_all(&dir).await?;
    let path = dir.join(format!("import-{}-{}.json", msg.chat.id.0, msg.id.0));
    let mut out = tokio::fs::File::create(&path).await?;
    let downloaded = match ctx.bot.download_file(&file.path, &mut out).await {
        // tokio writes in the background: the file is complete only once flushed.
        Ok(()) => out.flush().await.map_err(anyhow::Error::from),
        Err(e) => Err(e.into()),
    };
    drop(out);
    if let Err(e) = downloaded {
        let _ = tokio::fs::remove_file(&path).await;
        return Err(e).context("downloading the export from Telegram");
    }
    let import_path = path.clone();
    let result = ctx
        .blocking(move |ctx| {
            // `/me` should know the imported history too.
            let profiles = ProfileUpdate {
                profiles: &ctx.profiles,
                analyzer: ctx.analysis.analyzer(),
            };
            let summary = import_file(
                Some(&ctx.store),
                Some(profiles),
                &import_path,
                &ImportOptions::default(),
                &Default::default(),
            )?;
            ctx.store.flush()?;
            Ok(summary)
        })
        .await;
    let _ = tokio::fs::remove_file(&path).await;
    match result {
        Ok(summary) => {
            ctx.history_changed(None).await?;
            say(ctx, msg, texts::import_summary(lang, &summary)).await
        }
        // Bad files are the user's to fix: tell them what is wrong, as the CLI would.
        Err(e) => say(ctx, msg, texts::import_failed(lang, &format!("{e:#}"))).await,
    }
}

/// `/purge_chat`: asks for confirmation with a button.
pub async fn ask_to_purge(ctx: &Ctx, msg: &Message, lang: Lang) -> anyhow::Result<()> {
    let keyboard = InlineKeyboardMarkup::new([[InlineKeyboardButton::callback(
        Phrase::PurgeButton.text(lang),
        Button::PurgeChat {
            chat: msg.chat.id.0,
        }
        .data(),
    )]]);
    say_with(ctx, msg, Phrase::PurgeAsk.text(lang), Some(keyboard)).await
}

/// The purge button of `chat`, pressed by `by`; returns the short answer.
pub async fn purge(
    ctx: &Ctx,
    by: &User,
    chat: i64,
    message: Option<&Message>,
    lang: Lang,
) -> anyhow::Result<String> {
    if !ctx.is_admin(Some(by)) {
        return Ok(Phrase::AdminOnly.text(lang).into());
    }
    let deleted = ctx
        .blocking(move |ctx| {
            let n = ctx.store.purge_chat(chat)?;
            ctx.profiles.forget(Some(chat), None)?;
            ctx.store.flush()?;
            ctx.search.forget_deleted([chat], Deletion::Asked);
            Ok(n)
        })
        .await?;
    ctx.history_changed(Some(chat)).await?;
    let text = format!("{} {deleted}", Phrase::PurgeDone.text(lang));
    replace_text(ctx, message, &text).await;
    Ok(text)
}
