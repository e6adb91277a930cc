//! A chat's chart as one PNG — activity by hour of day, messages per day, emotion mix — for
//! `/stats`, `/analytics` and `chatkeeper chart`. It is rendered in process into memory, with an
//! embedded font, so that a VPS without fonts (or a desktop) draws the same picture.

use crate::analyzer::Emotion;
use crate::store::{ChatId, Store, Timestamp};
use crate::texts::{self, Lang, Phrase};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::sync::OnceLock;

/// The image width in pixels: wide enough for 30 day labels, narrow enough for a phone screen.
pub const WIDTH: u32 = 1000;
/// The image height in pixels: three panels stacked, a portrait picture as phones show best.
pub const HEIGHT: u32 = 1200;
/// The most days the messages-per-day panel shows (a year): beyond it bars are thinner than a
/// pixel.
pub const MAX_DAYS: usize = 366;

/// DejaVu Sans (Bitstream Vera licence, `data/fonts/LICENSE-DejaVu.txt`): Latin and Cyrillic.
const FONT: &[u8] = include_bytes!("../data/fonts/DejaVuSans.ttf");
/// The family every text style names; the embedded font is registered under it.
const FAMILY: &str = "sans-serif";
const DAY: i64 = 86_400;

const TITLE_SIZE: f64 = 40.0;
const CAPTION_SIZE: f64 = 30.0;
const LABEL_SIZE: f64 = 22.0;
const MARGIN: i32 = 16;
/// A bar's slot on its axis. Positions are integers (plotters formats custom ticks only on
/// integer axes), so a slot is 100 units wide and a bar fills 76 of them.
const SLOT: i32 = 100;
const BAR_HALF: i32 = 38;
/// Day labels wanted on the x axis at most, so that `dd.mm` labels never overlap.
const MAX_DAY_LABELS: usize = 8;

const HOURS_COLOR: RGBColor = RGBColor(0x3d, 0x6f, 0xb6);
const DAYS_COLOR: RGBColor = RGBColor(0x2a, 0x9d, 0x8f);
/// Colours in [`ChartData::emotions`] order: joy, sadness, anger, fear, surprise, disgust,
/// neutral.
const EMOTION_COLORS: [RGBColor; 7] = [
    RGBColor(0xf4, 0xb4, 0x00),
    RGBColor(0x4a, 0x7f, 0xc1),
    RGBColor(0xd6, 0x3c, 0x3c),
    RGBColor(0x8e, 0x5b, 0xb5),
    RGBColor(0xf0, 0x8a, 0x24),
    RGBColor(0x5c, 0x9e, 0x31),
    RGBColor(0x9a, 0x9a, 0x9a),
];

/// Why a chart could not be made. None of these depends on the data: every input, empty ones
/// included, draws a chart.
#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    #[error("the embedded chart font could not be loaded")]
    Font,
    #[error("drawing the chart failed: {0}")]
    Draw(String),
    #[error("encoding the chart as PNG failed: {0}")]
    Encode(#[from] png::EncodingError),
    #[error("the chart painter has stopped")]
    Stopped,
}

impl<E: std::error::Error + Send + Sync> From<DrawingAreaErrorKind<E>> for ChartError {
    fn from(e: DrawingAreaErrorKind<E>) -> Self {
        ChartError::Draw(e.to_string())
    }
}

/// What a chart shows, gathered by the caller (usually [`ChartData::from_store`]) so that the
/// bot and the command line draw the same chart.
#[derive(Clone, Debug, PartialEq)]
pub struct ChartData {
    /// Drawn above the panels; an empty title leaves the room to the panels.
    pub title: String,
    /// Messages by local hour of day (already shifted from UTC by the caller).
    pub hours: [u64; 24],
    /// (UTC day number = Unix time div 86400, messages) of the last days, oldest first, days
    /// without messages included so that gaps show.
    pub days: Vec<(i64, u64)>,
    /// Counts in [`Emotion::SCORED`] order, then neutral (as trend summaries give them).
    pub emotions: [u32; 7],
}

impl ChartData {
    /// The chart data of `chat`: its hours of day shifted to `utc_offset_hours` (the bot's
    /// `bot.utc_offset_hours`), its messages per day for the `days` days up to `now` (at most
    /// [`MAX_DAYS`]), and the given emotion mix (from a trend summary, which the caller chooses
    /// the span of). `None` when the store has no such chat.
    pub fn from_store(
        store: &Store,
        chat: ChatId,
        emotions: [u32; 7],
        now: Timestamp,
        days: usize,
        utc_offset_hours: i32,
    ) -> Option<ChartData> {
        let stats = store.chat_stats(chat)?;
        let mut hours = [0; 24];
        for (utc_hour, &n) in stats.hour_histogram.iter().enumerate() {
            hours[(utc_hour as i64 + i64::from(utc_offset_hours)).rem_euclid(24) as usize] = n;
        }
        let counts = store.daily_counts(chat);
        let today = now.div_euclid(DAY);
        let first = today - days.min(MAX_DAYS) as i64 + 1;
        let days = (first..=today)
            .map(|day| (day, counts.get(&day).copied().unwrap_or(0)))
            .collect();
        Some(ChartData {
            title: stats.title,
            hours,
            days,
            emotions,
        })
    }
}

/// The texts of a chart, so that the bot can draw it in the language of whoever asked.
#[derive(Clone, Debug, PartialEq)]
pub struct ChartLabels {
    pub by_hour: String,
    pub per_day: String,
    pub emotions: String,
    /// Names in [`ChartData::emotions`] order.
    pub emotion_names: [String; 7],
    /// Shown in a panel that has nothing to draw.
    pub no_data: String,
}

impl ChartLabels {
    /// The labels in `lang`, emotion names as the bot's texts call them.
    pub fn new(lang: Lang) -> ChartLabels {
        ChartLabels {
            by_hour: Phrase::ChartByHour.text(lang).into(),
            per_day: Phrase::ChartPerDay.text(lang).into(),
            emotions: Phrase::ChartEmotions.text(lang).into(),
            emotion_names: std::array::from_fn(|i| {
                let emotion = Emotion::SCORED.get(i).copied().unwrap_or(Emotion::Neutral);
                texts::emotion(lang, emotion).to_string()
            }),
            no_data: Phrase::ChartNoData.text(lang).into(),
        }
    }
}

/// Draws `data` as a [`WIDTH`]×[`HEIGHT`] PNG: the title, then activity by hour, messages per
/// day (the last [`MAX_DAYS`] of them) and the emotion mix. A panel without data says so instead
/// of drawing empty axes.
pub fn render_png(data: &ChartData, labels: &ChartLabels) -> Result<Vec<u8>, ChartError> {
    Canvas::default().render_png(data, labels)
}

/// Draws charts on a thread of its own, one at a time on one canvas: a bot asked for twenty
/// charts at once holds one canvas (a few MB), not twenty spread over as many threads' memory,
/// and the async runtime never waits for drawing.
#[derive(Clone)]
pub struct Painter {
    jobs: std::sync::mpsc::Sender<PaintJob>,
}

/// One drawing, run on the painter's canvas.
type PaintJob = Box<dyn FnOnce(&mut Canvas) + Send>;

impl Painter {
    /// Starts the painting thread; it ends when the last clone of the painter is dropped.
    pub fn start() -> std::io::Result<Painter> {
        let (jobs, queue) = std::sync::mpsc::channel::<PaintJob>();
        std::thread::Builder::new()
            .name("chatkeeper-charts".into())
            .spawn(move || {
                let mut canvas = Canvas::default();
                for job in queue {
                    job(&mut canvas);
                }
            })?;
        Ok(Painter { jobs })
    }

    /// Runs `paint` on the painting thread with its canvas and returns what it returns.
    pub async fn paint<T: Send + 'static>(
        &self,
        paint: impl FnOnce(&mut Canvas) -> T + Send + 'static,
    ) -> Result<T, ChartError> {
        let (done, result) = tokio::sync::oneshot::channel();
        self.jobs
            .send(Box::new(move |canvas| {
                let _ = done.send(paint(canvas));
            }))
            .map_err(|_| ChartError::Stopped)?;
        result.await.map_err(|_| ChartError::Stopped)
    }
}

/// The pixels a chart is drawn on (a few MB), kept for the next chart by whoever draws many.
#[derive(Default)]
pub struct Canvas {
    pixels: Vec<u8>,
}

impl Canvas {
    /// [`render_png`] on this canvas.
    pub fn render_png(
        &mut self,
        data: &ChartData,
        labels: &ChartLabels,
    ) -> Result<Vec<u8>, ChartError> {
        self.pixels.resize(WIDTH as usize * HEIGHT as usize * 3, 0);
        draw(&mut self.pixels, data, labels)?;
        encode(&self.pixels)
    }
}

fn draw(pixels: &mut [u8], data: &ChartData, labels: &ChartLabels) -> Result<(), ChartError> {
    register_font()?;
    {
        let root = BitMapBackend::with_buffer(pixels, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE)?;
        // plotters places text a little above the box it reserves for it: the margin keeps the
        // title's top inside the image.
        let framed = root.margin(MARGIN, 0, 0, 0);
        let body = if data.title.is_empty() {
            framed
        } else {
            let title = fit(&framed, &data.title, TITLE_SIZE, WIDTH as i32 - 2 * MARGIN);
            framed.titled(&title, text_style(TITLE_SIZE))?
        };
        let panels = body.split_evenly((3, 1));
        draw_bars(
            &panels[0],
            &labels.by_hour,
            &data.hours,
            (0..24).step_by(3).collect(),
            &|hour| format!("{hour:02}"),
            HOURS_COLOR,
            &labels.no_data,
        )?;
        let days = &data.days[data.days.len().saturating_sub(MAX_DAYS)..];
        let per_day: Vec<u64> = days.iter().map(|&(_, n)| n).collect();
        // Counted back from the last day, so that today is always labelled.
        let every = days.len().div_ceil(MAX_DAY_LABELS).max(1);
        draw_bars(
            &panels[1],
            &labels.per_day,
            &per_day,
            (0..days.len()).rev().step_by(every).collect(),
            &|i| days.get(i).map_or(String::new(), |&(day, _)| dd_mm(day)),
            DAYS_COLOR,
            &labels.no_data,
        )?;
        draw_emotions(&panels[2], &data.emotions, labels)?;
        root.present()?;
    }
    Ok(())
}

/// Registers the embedded font with plotters under [`FAMILY`], once per process: plotters keeps
/// its fonts in a process-wide table (its API, not our state), and registering again would only
/// parse the font again.
fn register_font() -> Result<(), ChartError> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let registered = *REGISTERED
        .get_or_init(|| plotters::style::register_font(FAMILY, FontStyle::Normal, FONT).is_ok());
    registered.then_some(()).ok_or(ChartError::Font)
}

type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;

fn text_style(size: f64) -> TextStyle<'static> {
    (FAMILY, size).into_font().color(&BLACK)
}

/// The width of `text` in pixels at `size`.
fn text_width(area: &Area, text: &str, size: f64) -> i32 {
    area.estimate_text_size(text, &text_style(size))
        .map_or(0, |(width, _)| width as i32)
}

/// `text`, shortened with an ellipsis when it is wider than `width` pixels (a chat title can be
/// 128 characters long).
fn fit(area: &Area, text: &str, size: f64, width: i32) -> String {
    if text_width(area, text, size) <= width {
        return text.to_string();
    }
    let mut short = text.to_string();
    loop {
        short.pop();
        let shortened = format!("{short}…");
        if short.is_empty() || text_width(area, &shortened, size) <= width {
            return shortened;
        }
    }
}

/// A bar per slot of `bars`; the x axis is labelled at the slots in `ticks` by `tick_label`.
fn draw_bars(
    area: &Area,
    caption: &str,
    bars: &[u64],
    ticks: Vec<usize>,
    tick_label: &dyn Fn(usize) -> String,
    color: RGBColor,
    no_data: &str,
) -> Result<(), ChartError> {
    let top = bars.iter().copied().max().unwrap_or(0);
    if top == 0 {
        return draw_no_data(area, caption, no_data);
    }
    let slots = bars.len() as i32;
    let ticks = ticks.into_iter().map(|i| i as i32 * SLOT).collect();
    // Headroom above the highest bar, at least 1 so that the range is never empty.
    let y_top = top.saturating_add(top / 10).saturating_add(1);
    let mut chart = ChartBuilder::on(area)
        .caption(caption, text_style(CAPTION_SIZE))
        .margin(MARGIN)
        // The last bar's label is centred on it and wider than a slot.
        .margin_right(LABEL_SIZE as i32 * 2)
        .x_label_area_size(LABEL_SIZE as i32 * 2)
        // As wide as the widest count, however busy the chat.
        .y_label_area_size(text_width(area, &y_top.to_string(), LABEL_SIZE) + MARGIN)
        .build_cartesian_2d(
            (-SLOT / 2..slots * SLOT - SLOT / 2).with_key_points(ticks),
            0..y_top,
        )?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .light_line_style(TRANSPARENT)
        .y_labels(5)
        .x_label_formatter(&|&x| tick_label((x / SLOT) as usize))
        .label_style(text_style(LABEL_SIZE))
        .draw()?;
    chart.draw_series(bars.iter().enumerate().map(|(i, &n)| {
        let x = i as i32 * SLOT;
        Rectangle::new([(x - BAR_HALF, 0), (x + BAR_HALF, n)], color.filled())
    }))?;
    Ok(())
}

/// Horizontal bars, one per emotion from the top, each with its count and share.
fn draw_emotions(area: &Area, emotions: &[u32; 7], labels: &ChartLabels) -> Result<(), ChartError> {
    let total: u64 = emotions.iter().map(|&n| u64::from(n)).sum();
    let top = emotions.iter().copied().max().unwrap_or(0);
    if total == 0 {
        return draw_no_data(area, &labels.emotions, &labels.no_data);
    }
    let rows = emotions.len();
    // The first emotion goes on top, where plotters' y axis ends.
    let row_of = |i: usize| (rows - 1 - i) as i32 * SLOT;
    let name_width = labels
        .emotion_names
        .iter()
        .map(|name| text_width(area, name, LABEL_SIZE))
        .max()
        .unwrap_or(0);
    let mut chart = ChartBuilder::on(area)
        .caption(&labels.emotions, text_style(CAPTION_SIZE))
        .margin(MARGIN)
        .y_label_area_size(name_width + MARGIN)
        // Room right of the longest bar for its count and share.
        .build_cartesian_2d(
            0.0..f64::from(top) * 1.3,
            (-SLOT / 2..rows as i32 * SLOT - SLOT / 2)
                .with_key_points((0..rows).map(row_of).collect()),
        )?;
    chart
        .configure_mesh()
        .disable_mesh()
        .disable_x_axis()
        .y_label_formatter(&|&y| {
            let row = (y / SLOT) as usize;
            let i = rows - 1 - row.min(rows - 1);
            labels.emotion_names[i].clone()
        })
        .label_style(text_style(LABEL_SIZE))
        .draw()?;
    let bars = emotions.iter().zip(EMOTION_COLORS).enumerate();
    chart.draw_series(bars.map(|(i, (&n, color))| {
        let (y, n) = (row_of(i), f64::from(n));
        Rectangle::new([(0.0, y - BAR_HALF), (n, y + BAR_HALF)], color.filled())
    }))?;
    let value_style = text_style(LABEL_SIZE).pos(Pos::new(HPos::Left, VPos::Center));
    let gap = f64::from(top) * 0.02;
    chart.draw_series(emotions.iter().enumerate().map(|(i, &n)| {
        let share = 100.0 * f64::from(n) / total as f64;
        Text::new(
            format!("{n} · {share:.0}%"),
            (f64::from(n) + gap, row_of(i)),
            value_style.clone(),
        )
    }))?;
    Ok(())
}

/// A panel's caption and `no_data` in its middle.
fn draw_no_data(area: &Area, caption: &str, no_data: &str) -> Result<(), ChartError> {
    let inner = area.titled(caption, text_style(CAPTION_SIZE))?;
    let (width, height) = inner.dim_in_pixel();
    let style = text_style(CAPTION_SIZE)
        .color(&RGBColor(0x80, 0x80, 0x80))
        .pos(Pos::new(HPos::Center, VPos::Center));
    inner.draw(&Text::new(
        no_data,
        (width as i32 / 2, height as i32 / 2),
        style,
    ))?;
    Ok(())
}

/// `dd.mm` of a UTC day number.
fn dd_mm(day: i64) -> String {
    use chrono::Datelike;
    chrono::DateTime::from_timestamp(day.saturating_mul(DAY), 0).map_or(String::new(), |t| {
        format!("{:02}.{:02}", t.day(), t.month())
    })
}

/// RGB pixels as a PNG file's bytes.
fn encode(pixels: &[u8]) -> Result<Vec<u8>, ChartError> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, WIDTH, HEIGHT);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    // Telegram recompresses photos anyway: fast deflate takes a fifth of the time of the
    // default for a file under twice the size (about 90 KB).
    encoder.set_compression(png::Compression::Fast);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(pixels)?;
    writer.finish()?;
    Ok(out)
}
