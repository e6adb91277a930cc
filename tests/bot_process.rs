//! The `chatkeeper run` process: killed with SIGKILL mid-stream and restarted, every update the
//! fake Telegram saw confirmed is in the store; SIGTERM stops it cleanly within 5 s; a missing or
//! rejected token is a clear error.

mod support;

use chatkeeper::store::{Store, StoreConfig};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::fake_telegram::{Chat, FakeTelegram, User, TOKEN};

fn bot_command(dir: &Path, api_url: &str, token: Option<&str>) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_chatkeeper"));
    command
        .arg("run")
        .current_dir(dir)
        .env("CHATKEEPER_DATA_DIR", dir.join("data"))
        .env("TELOXIDE_API_URL", api_url)
        .env("CHATKEEPER_METRICS__ENABLED", "false")
        .env("CHATKEEPER_SPONTANEOUS__ENABLED", "false")
        .env("CHATKEEPER_BACKUP__EVERY_HOURS", "0")
        .env("CHATKEEPER_BOT__REPLY_CHANCE", "0")
        .env("CHATKEEPER_BOT__REACTION_CHANCE", "0")
        .env("RUST_LOG", "warn")
        .env_remove("TELOXIDE_TOKEN")
        .env_remove("CHATKEEPER_CONFIG");
    if let Some(token) = token {
        command.env("TELOXIDE_TOKEN", token);
    }
    command
}

fn spawn_bot(dir: &Path, tg: &FakeTelegram) -> Child {
    bot_command(dir, &tg.url(), Some(TOKEN))
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

/// Opens the bot's store after the process is gone and checks that each pushed message with an
/// update id below `confirmed` is in it. Returns how many were checked.
fn check_confirmed_are_stored(dir: &Path, pushed: &[(i64, i64, i32)], confirmed: i64) -> usize {
    let store = Store::open(StoreConfig::new(dir.join("data"))).unwrap();
    let mut checked = 0;
    for &(update, chat, message) in pushed.iter().filter(|p| p.0 < confirmed) {
        assert!(
            store.message(chat, message).unwrap().is_some(),
            "update {update} (chat {chat}, message {message}) was confirmed to Telegram \
             (offset {confirmed}) but is not in the store"
        );
        checked += 1;
    }
    let report = store.verify().unwrap();
    assert!(report.is_clean(), "{:?}", report.problems);
    checked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_stream_loses_no_confirmed_update_and_sigterm_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let tg = FakeTelegram::start().await;
    let chats = [
        Chat::supergroup(-1001, "Перша"),
        Chat::supergroup(-1002, "Друга"),
        Chat::private(7),
    ];
    let people = [User::new(7, "Олесь"), User::new(8, "Дарина")];
    let mut pushed: Vec<(i64, i64, i32)> = Vec::new();
    let push = |n: usize, pushed: &mut Vec<(i64, i64, i32)>| {
        for _ in 0..n {
            let i = pushed.len();
            let chat = &chats[i % chats.len()];
            let (update, message) =
                tg.push_message(chat, &people[i % 2], &format!("повідомлення номер {i}"));
            pushed.push((update, chat.id, message));
        }
    };
    let mut total_checked = 0;
    for round in 0..4u64 {
        let mut bot = spawn_bot(dir.path(), &tg);
        // Keep updates coming while the bot polls; kill it at a different moment each round.
        let kill_at = Instant::now() + Duration::from_millis(400 + 350 * round);
        while Instant::now() < kill_at {
            push(25, &mut pushed);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        bot.kill().unwrap(); // SIGKILL
        bot.wait().unwrap();
        let confirmed = tg.confirmed_offset();
        total_checked += check_confirmed_are_stored(dir.path(), &pushed, confirmed);
    }
    assert!(
        total_checked > 0,
        "the bot confirmed nothing before being killed: the test proved nothing"
    );

    // A last run catches up with everything (and a few new messages), then SIGTERM.
    let mut bot = spawn_bot(dir.path(), &tg);
    push(10, &mut pushed);
    let last = pushed.last().unwrap().0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while tg.confirmed_offset() <= last {
        assert!(
            Instant::now() < deadline,
            "the restarted bot did not catch up"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stopping = Instant::now();
    let status = Command::new("kill")
        .args(["-TERM", &bot.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = loop {
        if let Some(exit) = bot.try_wait().unwrap() {
            break exit;
        }
        assert!(
            stopping.elapsed() < Duration::from_secs(5),
            "SIGTERM did not stop the bot within 5 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(exit.success(), "{exit:?}");
    let checked = check_confirmed_are_stored(dir.path(), &pushed, i64::MAX);
    assert_eq!(checked, pushed.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_or_rejected_tokens_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let tg = FakeTelegram::start().await;
    let output = bot_command(dir.path(), &tg.url(), None).output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("TELOXIDE_TOKEN is not set") && stderr.contains("BotFather"),
        "{stderr}"
    );
    let output = bot_command(dir.path(), &tg.url(), Some("1:WRONG"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("Telegram rejected the bot token"),
        "{stderr}"
    );
}
