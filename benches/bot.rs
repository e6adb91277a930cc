//! The bot benchmark: the real `chatkeeper run` process against the fake Bot API server of
//! `tests/support/`, over a store that already holds 1M messages.
//!
//! Measures (1) updates recorded per second when Telegram hands them out in batches of 100
//! (file → durable store: a batch counts once the bot confirmed it with its next `getUpdates`),
//! (2) the time from an update entering `getUpdates` to the reply request arriving, with the
//! offline engine, (3) the bot process's memory after the replies and after an admin's `/backup`
//! and `/stats` in 20 chats (what walks the most history), the first and last at rest (once the
//! bot's periodic release of freed memory ran), and (4) its peak RSS overall. Run with
//! `cargo bench --bench bot` (`-- --messages N --updates N --replies N` to change the sizes).
//! The store's search index is built before the bot starts, as a bot that has run a while has
//! it; `--index-at-start` leaves it to the bot (its first start after the upgrade that brought
//! search, or after the index was lost).

#[path = "../tests/support/mod.rs"]
mod support;

use chatkeeper::bench::workload::{Workload, WorkloadSpec};
use chatkeeper::bench::{peak_rss_of, rss_of};
use chatkeeper::search::SearchIndex;
use chatkeeper::store::{Store, StoreConfig};
use serde_json::json;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::fake_telegram::{Chat, FakeTelegram, User, BOT_USERNAME, TOKEN};

/// Long enough for the bot's periodic release of freed memory (every 10 s) to have run.
const REST: Duration = Duration::from_secs(11);

/// The admin who asks for the backup.
const ADMIN: i64 = 777_000_001;

struct Args {
    messages: u64,
    updates: usize,
    replies: usize,
    index_at_start: bool,
}

fn args() -> Args {
    let mut args = Args {
        messages: 1_000_000,
        updates: 50_000,
        replies: 200,
        index_at_start: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().and_then(|v| v.parse().ok()).expect("a number");
        match arg.as_str() {
            "--messages" => args.messages = value(),
            "--updates" => args.updates = value() as usize,
            "--replies" => args.replies = value() as usize,
            "--index-at-start" => args.index_at_start = true,
            _ => {} // cargo bench passes --bench
        }
    }
    args
}

fn main() {
    let args = args();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let spec = WorkloadSpec {
        messages: args.messages,
        ..WorkloadSpec::default()
    };
    let filled = Instant::now();
    {
        let store = Store::open(StoreConfig::new(&data)).unwrap();
        let mut workload = Workload::new(spec);
        loop {
            let batch: Vec<_> = workload.by_ref().take(10_000).collect();
            if batch.is_empty() {
                break;
            }
            store.save_batch(batch).unwrap();
        }
        store.flush().unwrap();
        if !args.index_at_start {
            let index = SearchIndex::open(&store).unwrap();
            index.catch_up().unwrap();
            index.flush().unwrap();
        }
    }
    println!(
        "store filled with {} messages in {:.1} s{}",
        args.messages,
        filled.elapsed().as_secs_f64(),
        if args.index_at_start {
            "; the bot builds the search index at start"
        } else {
            ", search index built"
        }
    );

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let tg = FakeTelegram::start().await;
        let mut bot = spawn_bot(dir.path(), &tg);
        tg.wait_for("setMyCommands", 2, Duration::from_secs(60))
            .await;
        println!(
            "started: bot RSS {:.1} MiB",
            rss_of(&bot.id().to_string()) as f64 / (1 << 20) as f64
        );

        // 1. Recording: every update queued at once, handed out 100 per getUpdates.
        let people: Vec<User> = (0..50).map(|i| User::new(900_000 + i, "Bench")).collect();
        let chats: Vec<Chat> = (0..50)
            .map(|i| Chat::supergroup(-2_000_000 - i, "Bench"))
            .collect();
        let mut last = 0;
        for i in 0..args.updates {
            let text = format!("повідомлення для заміру номер {i}, трохи тексту як у житті");
            last = tg
                .push_message(&chats[i % chats.len()], &people[i % people.len()], &text)
                .0;
        }
        let started = Instant::now();
        while tg.confirmed_offset() <= last {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let seconds = started.elapsed().as_secs_f64();
        let polls = tg.requests("getUpdates").len();
        println!(
            "recording: {} updates in {seconds:.2} s = {:.0} updates/s ({polls} getUpdates calls); \
             peak RSS so far {:.1} MiB",
            args.updates,
            args.updates as f64 / seconds,
            peak_rss_of(&bot.id().to_string()) as f64 / (1 << 20) as f64
        );

        // 2. Replies: one addressed message at a time into 15 of the workload's chats (which
        // have history for the offline engine). The first reply in a chat builds its model
        // (cold); later ones find it in memory (warm). 15 chats keep each under Telegram's
        // 20 messages a minute per group, which Throttle would otherwise enforce.
        let reply_chats = 15.min(spec.chats as usize);
        let mut cold = Vec::new();
        let mut latencies = Vec::with_capacity(args.replies);
        let asker = User::new(Workload::user_id(1), "Bench");
        for i in 0..args.replies {
            let chat = Chat::supergroup(Workload::chat_id((i % reply_chats) as u32), "Bench");
            let before = tg.requests("sendMessage").len();
            let sent = Instant::now();
            tg.push_message_with(
                &chat,
                &asker,
                json!({"message_id": 50_000_000 + i as i64,
                       "text": format!("@{BOT_USERNAME} що скажеш про це {i}?")}),
            );
            tg.wait_for("sendMessage", before + 1, Duration::from_secs(30))
                .await;
            let took = sent.elapsed();
            if took > Duration::from_millis(100) {
                println!("  slow reply {i}: {:.1} ms", took.as_secs_f64() * 1e3);
            }
            if i < reply_chats {
                cold.push(took);
            } else {
                latencies.push(took);
            }
            // teloxide's Throttle sends a queued request at once when it is idle, then rests
            // 250 ms; spacing the questions measures the bot, not that rest.
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        for (what, mut latencies) in [("warm", latencies), ("cold (model built)", cold)] {
            latencies.sort();
            let ms = |q: f64| {
                let i = ((latencies.len() as f64 * q) as usize).min(latencies.len() - 1);
                latencies[i].as_secs_f64() * 1e3
            };
            println!(
                "reply latency, {what} (update queued → reply request arrived, offline engine, \
                 {} replies): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
                latencies.len(),
                ms(0.5),
                ms(0.99),
                ms(1.0)
            );
        }

        // 3. What walks the most history: a backup of everything, then /stats (counters and a
        // chart of 30 days) in 20 chats.
        // The bot hands freed memory back every 10 s: what it holds at rest, not in passing.
        let pid = bot.id().to_string();
        tokio::time::sleep(REST).await;
        println!(
            "after the replies, at rest: bot RSS {:.1} MiB (peak so far {:.1} MiB)",
            rss_of(&pid) as f64 / (1 << 20) as f64,
            peak_rss_of(&pid) as f64 / (1 << 20) as f64
        );
        let admin = User::new(ADMIN, "Admin");
        let started = Instant::now();
        tg.push_message(&Chat::private(ADMIN), &admin, "/backup");
        let deadline = Instant::now() + Duration::from_secs(900);
        while !tg.requests("sendDocument").iter().any(|_| true)
            && !tg
                .requests("sendMessage")
                .iter()
                .any(|m| m["text"].as_str().is_some_and(|t| t.contains(".ckb")))
        {
            assert!(Instant::now() < deadline, "no backup after 15 minutes");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        println!(
            "/backup of {} messages: {:.1} s; bot RSS {:.1} MiB (peak so far {:.1} MiB)",
            args.messages,
            started.elapsed().as_secs_f64(),
            rss_of(&pid) as f64 / (1 << 20) as f64,
            peak_rss_of(&pid) as f64 / (1 << 20) as f64
        );
        let started = Instant::now();
        let photos = tg.requests("sendPhoto").len();
        for i in 0..20 {
            let chat = Chat::supergroup(Workload::chat_id(i), "Bench");
            tg.push_message(&chat, &asker, "/stats");
        }
        tg.wait_for("sendPhoto", photos + 20, Duration::from_secs(120))
            .await;
        let took = started.elapsed();
        tokio::time::sleep(REST).await;
        println!(
            "/stats in 20 chats: {:.1} s; at rest: bot RSS {:.1} MiB (peak so far {:.1} MiB)",
            took.as_secs_f64(),
            rss_of(&pid) as f64 / (1 << 20) as f64,
            peak_rss_of(&pid) as f64 / (1 << 20) as f64
        );

        // 4. Memory of the whole bot process, then a clean stop.
        let peak = peak_rss_of(&pid);
        println!(
            "bot peak RSS with {} stored messages: {:.1} MiB",
            args.messages,
            peak as f64 / (1 << 20) as f64
        );
        stop(&mut bot);
    });
}

fn spawn_bot(dir: &std::path::Path, tg: &FakeTelegram) -> Child {
    Command::new(env!("CARGO_BIN_EXE_chatkeeper"))
        .arg("run")
        .current_dir(dir)
        .env("CHATKEEPER_DATA_DIR", dir.join("data"))
        .env("TELOXIDE_TOKEN", TOKEN)
        .env("TELOXIDE_API_URL", tg.url())
        .env("CHATKEEPER_METRICS__ENABLED", "false")
        .env("CHATKEEPER_SPONTANEOUS__ENABLED", "false")
        .env("CHATKEEPER_BACKUP__EVERY_HOURS", "0")
        .env("CHATKEEPER_BOT__REPLY_CHANCE", "0")
        .env("CHATKEEPER_BOT__REACTION_CHANCE", "0")
        .env("CHATKEEPER_QUIET_HOURS__START", "0")
        .env("CHATKEEPER_QUIET_HOURS__END", "0")
        .env("CHATKEEPER_LIMITS__CHAT_PER_MINUTE", "100000")
        .env("CHATKEEPER_LIMITS__USER_PER_MINUTE", "100000")
        .env("CHATKEEPER_ADMINS", format!("[{ADMIN}]"))
        .env("RUST_LOG", "warn")
        .envs(std::env::vars().filter(|(k, _)| k.starts_with("CHATKEEPER_")))
        .stdout(Stdio::null())
        .spawn()
        .unwrap()
}

fn stop(bot: &mut Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &bot.id().to_string()])
        .status();
    let _ = bot.wait();
}
