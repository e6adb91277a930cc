//! Charts: the PNG decodes at the promised size and shows the data (coloured bars) or says there
//! is none (greyscale text only); the data comes from the store as stored; `chatkeeper chart`
//! writes the file, or explains an unknown chat without writing one.

use chatkeeper::chart::{render_png, ChartData, ChartLabels, HEIGHT, WIDTH};
use chatkeeper::store::{ChatInfo, Message, MessageKind, Store, StoreConfig};
use chatkeeper::texts::Lang;
use std::path::Path;
use std::process::{Command, Output};

const GROUP: i64 = -1_001_234_567_890;
const DAY: i64 = 86_400;

/// A month of a busy chat.
fn month() -> ChartData {
    let today = 20_000;
    ChartData {
        title: "Тестовий чат".into(),
        hours: std::array::from_fn(|h| (h as u64 * 7) % 24 * 10),
        days: (today - 29..=today)
            .map(|d| (d, (d % 5) as u64 * 30))
            .collect(),
        emotions: [40, 12, 8, 3, 9, 2, 120],
    }
}

fn empty() -> ChartData {
    ChartData {
        title: String::new(),
        hours: [0; 24],
        days: Vec::new(),
        emotions: [0; 7],
    }
}

/// The decoded image: (width, height, pixels whose channels differ, i.e. not black, white or
/// grey).
fn decode(png: &[u8]) -> (u32, u32, usize) {
    let mut reader = png::Decoder::new(std::io::Cursor::new(png))
        .read_info()
        .expect("a PNG header");
    let mut pixels = vec![0; reader.output_buffer_size().expect("a sane size")];
    let info = reader.next_frame(&mut pixels).expect("PNG pixels");
    assert_eq!(info.color_type, png::ColorType::Rgb);
    let coloured = pixels[..info.buffer_size()]
        .chunks(3)
        .filter(|p| p[0] != p[1] || p[1] != p[2])
        .count();
    (info.width, info.height, coloured)
}

#[test]
fn a_month_renders_as_a_png_of_the_promised_size_with_bars() {
    for lang in [Lang::En, Lang::Uk] {
        let png = render_png(&month(), &ChartLabels::new(lang)).unwrap();
        let (width, height, coloured) = decode(&png);
        assert_eq!((width, height), (WIDTH, HEIGHT));
        // Three panels of bars cover far more than a tenth of the image.
        let pixels = (WIDTH * HEIGHT) as usize;
        assert!(coloured > pixels / 10, "{coloured} of {pixels} coloured");
    }
}

#[test]
fn no_data_renders_a_clean_chart_without_bars() {
    let png = render_png(&empty(), &ChartLabels::new(Lang::En)).unwrap();
    let (width, height, coloured) = decode(&png);
    assert_eq!((width, height), (WIDTH, HEIGHT));
    assert_eq!(coloured, 0, "no bars, only grey text");
    assert_ne!(
        png,
        render_png(&empty(), &ChartLabels::new(Lang::Uk)).unwrap()
    );
    // Zero days are no data either, and one panel's data does not need the others'.
    let zero_days = ChartData {
        days: vec![(20_000, 0), (20_001, 0)],
        ..month()
    };
    assert!(decode(&render_png(&zero_days, &ChartLabels::new(Lang::En)).unwrap()).2 > 0);
}

#[test]
fn extreme_counts_and_spans_still_render() {
    let data = ChartData {
        title: "x".repeat(500),
        hours: std::array::from_fn(|h| if h == 5 { u64::MAX } else { 0 }),
        // More days than a chart shows, from before 1970 on.
        days: (-1..1_000_000).map(|d| (d, 1)).collect(),
        emotions: [u32::MAX, 0, 0, 0, 0, 0, 1],
    };
    let (width, height, _) = decode(&render_png(&data, &ChartLabels::new(Lang::En)).unwrap());
    assert_eq!((width, height), (WIDTH, HEIGHT));
}

fn message(id: i32, time: i64, user: i64) -> Message {
    Message {
        chat_id: GROUP,
        message_id: id,
        time,
        edit_time: None,
        user_id: Some(user),
        sender_name: format!("user {user}"),
        text: format!("Я дуже радий, чудовий день 😊 {id}"),
        kind: MessageKind::Text,
        reply_to: None,
        forwarded_from: None,
        is_bot: false,
        topic: None,
    }
}

/// A closed store holding `messages` of [`GROUP`], titled.
fn store_with(dir: &Path, messages: Vec<Message>) {
    let store = Store::open(StoreConfig::new(dir)).unwrap();
    store
        .set_chat_info(
            GROUP,
            ChatInfo {
                title: "Кавовий чат".into(),
                kind: "supergroup".into(),
                username: None,
            },
        )
        .unwrap();
    store.save_batch(messages).unwrap();
    store.flush().unwrap();
}

#[test]
fn chart_data_counts_what_the_store_holds_in_local_hours() {
    let dir = tempfile::tempdir().unwrap();
    let today = 20_000;
    let at = |day: i64, hour: i64| day * DAY + hour * 3600 + 59;
    let mut messages = Vec::new();
    for i in 0..3 {
        messages.push(message(i, at(today - 2, 5), 1));
    }
    for i in 3..5 {
        messages.push(message(i, at(today, 23), 2));
    }
    // Before the 30 days: counted by hour, not shown by day.
    messages.push(message(5, at(today - 40, 0), 3));
    store_with(dir.path(), messages);
    let store = Store::open(StoreConfig::new(dir.path())).unwrap();
    let now = at(today, 23) + 100;
    let emotions = [1, 2, 3, 4, 5, 6, 7];
    let data = ChartData::from_store(&store, GROUP, emotions, now, 30, 2).unwrap();
    assert_eq!(data.title, "Кавовий чат");
    assert_eq!(data.emotions, emotions);
    // UTC+2: 05 → 07, 23 → 01, 00 → 02.
    let mut hours = [0; 24];
    (hours[7], hours[1], hours[2]) = (3, 2, 1);
    assert_eq!(data.hours, hours);
    assert_eq!(data.days.len(), 30);
    assert_eq!(data.days.first(), Some(&(today - 29, 0)));
    assert_eq!(data.days.last(), Some(&(today, 2)));
    assert_eq!(data.days[27], (today - 2, 3));
    assert_eq!(data.days.iter().map(|&(_, n)| n).sum::<u64>(), 5);
    // West of UTC the hours wrap the other way.
    let west = ChartData::from_store(&store, GROUP, emotions, now, 1, -5).unwrap();
    assert_eq!((west.hours[0], west.hours[18], west.hours[19]), (3, 2, 1));
    assert_eq!(west.days, vec![(today, 2)]);
    assert_eq!(
        ChartData::from_store(&store, GROUP, emotions, now, 0, 0)
            .unwrap()
            .days,
        vec![]
    );
    assert_eq!(
        ChartData::from_store(&store, -5, emotions, now, 30, 2),
        None
    );
}

fn chart_command(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_chatkeeper"))
        .arg("chart")
        .args(args)
        .arg("--data-dir")
        .arg(dir.join("data"))
        // No chatkeeper.toml of the developer's: the default time zone.
        .current_dir(dir)
        .env_remove("CHATKEEPER_CONFIG")
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

#[test]
fn the_cli_writes_a_chart_or_explains_an_unknown_chat() {
    let dir = tempfile::tempdir().unwrap();
    let now = chrono::Utc::now().timestamp();
    let messages = (0..200)
        .map(|i| message(i, now - i64::from(i) * 5000, i64::from(i % 4)))
        .collect();
    store_with(&dir.path().join("data"), messages);

    let out_file = dir.path().join("chart.png");
    let group = GROUP.to_string();
    let out = chart_command(
        dir.path(),
        &[
            "--chat",
            &group,
            "--out",
            out_file.to_str().unwrap(),
            "--lang",
            "uk",
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("chart.png") && stdout.contains(" ms"),
        "{stdout}"
    );
    let (width, height, coloured) = decode(&std::fs::read(&out_file).unwrap());
    assert_eq!((width, height), (WIDTH, HEIGHT));
    assert!(coloured > 0);

    let missing = dir.path().join("missing.png");
    let out = chart_command(
        dir.path(),
        &["--chat", "-42", "--out", missing.to_str().unwrap()],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("no chat -42") && stderr.contains("--data-dir"),
        "{stderr}"
    );
    assert!(!missing.exists());

    let out = chart_command(
        dir.path(),
        &[
            "--chat",
            &group,
            "--out",
            missing.to_str().unwrap(),
            "--days",
            "0",
        ],
    );
    assert!(!out.status.success() && !missing.exists());
}
