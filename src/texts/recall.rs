//! What `/catchup`, the daily digest and `/ask` say, in Telegram's HTML.

use super::lang::Lang;
use super::search::escape;
use crate::recall::cite::Piece;
use crate::recall::{Catchup, SpanError, MAX_SPAN_SECS};
use crate::search::Hit;
use crate::store::{Message, MessageRef, Timestamp};

/// What a message may take of Telegram's 4,096 UTF-16 units (the rest is for the notes).
const MAX_UNITS: usize = 3_700;
/// Characters of a key message or a quote shown.
const QUOTE_CHARS: usize = 220;

/// The link to a message, where the chat has links.
pub type Links<'a> = &'a dyn Fn(&Message) -> Option<String>;

/// What a catch-up covers, for its heading.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Since {
    /// Since the asker's last message here, at this time.
    LastMessage(Timestamp),
    /// The asker's last message here is older than [`MAX_SPAN_SECS`]: that span.
    LongAgo,
    /// The asked span, in seconds.
    Span(i64),
    /// The asker has not written here: the last day.
    NoMessageYet,
    /// The daily digest: the last 24 hours.
    Digest,
}

fn date(time: Timestamp, utc_offset_secs: i64) -> String {
    chrono::DateTime::from_timestamp(time + utc_offset_secs, 0)
        .map(|t| t.format("%d.%m %H:%M").to_string())
        .unwrap_or_default()
}

fn span_text(lang: Lang, secs: i64) -> String {
    let (n, uk, en) = if secs % 86_400 == 0 {
        (secs / 86_400, "дн.", "d")
    } else if secs % 3_600 == 0 {
        (secs / 3_600, "год", "h")
    } else {
        (secs / 60, "хв", "min")
    };
    match lang {
        Lang::Uk => format!("{n} {uk}"),
        Lang::En => format!("{n} {en}"),
    }
}

fn heading(lang: Lang, since: Since, utc_offset_secs: i64) -> String {
    match since {
        Since::LastMessage(t) => match lang {
            Lang::Uk => format!(
                "🧭 Від вашого останнього повідомлення ({})",
                date(t, utc_offset_secs)
            ),
            Lang::En => format!("🧭 Since your last message ({})", date(t, utc_offset_secs)),
        },
        Since::Span(secs) => match lang {
            Lang::Uk => format!("🧭 За останні {}", span_text(lang, secs)),
            Lang::En => format!("🧭 The last {}", span_text(lang, secs)),
        },
        Since::LongAgo => match lang {
            Lang::Uk => format!(
                "🧭 Ваше останнє повідомлення тут давніше за {} днів, тож ось останні {0} днів",
                MAX_SPAN_SECS / 86_400
            ),
            Lang::En => format!(
                "🧭 Your last message here is over {} days old, so here are the last {0} days",
                MAX_SPAN_SECS / 86_400
            ),
        },
        Since::NoMessageYet => lang
            .pick(
                "🧭 Ви тут ще не писали, тож ось останні 24 год",
                "🧭 You have not written here yet, so here are the last 24 h",
            )
            .into(),
        Since::Digest => lang
            .pick(
                "🗞 Підсумок дня: останні 24 год",
                "🗞 Daily digest: the last 24 h",
            )
            .into(),
    }
}

/// A message as one line: its date (a link where there is one), author and text.
fn quote_line(message: &Message, link: Option<String>, body: &str, utc_offset_secs: i64) -> String {
    let when = date(message.time, utc_offset_secs);
    let when = match link {
        Some(link) => format!("<a href=\"{}\">{when}</a>", escape(&link)),
        None => when,
    };
    let author = if message.sender_name.is_empty() {
        "—".to_string()
    } else {
        escape(&message.sender_name.chars().take(40).collect::<String>())
    };
    format!("{when} · {author}: {body}")
}

/// A message's text cut for a quote, escaped.
fn cut(text: &str) -> String {
    escape(&crate::reply::one_line(text, QUOTE_CHARS))
}

/// A quoted argument or question, escaped and cut (it goes into the reply's heading).
fn cut_short(text: &str) -> String {
    escape(&crate::reply::one_line(text, 200))
}

/// Appends `entry` unless the text would pass Telegram's limit; returns whether it did.
fn push_within(text: &mut String, entry: &str) -> bool {
    if text.encode_utf16().count() + entry.encode_utf16().count() > MAX_UNITS {
        return false;
    }
    text.push_str(entry);
    true
}

/// A catch-up: the heading with counts, then the language model's summary (`summary`, whose
/// citations point into `catchup.telling`) or the key messages by conversation, then what was
/// left out.
pub fn catchup(
    lang: Lang,
    since: Since,
    catchup: &Catchup,
    summary: Option<&[Piece]>,
    links: Links,
    utc_offset_secs: i64,
) -> String {
    let mut text = heading(lang, since, utc_offset_secs);
    let messages = catchup.coverage.messages;
    let busiest = catchup
        .busiest
        .iter()
        .map(|(name, n)| format!("{} ({n})", escape(name)))
        .collect::<Vec<_>>()
        .join(", ");
    match lang {
        Lang::Uk => text.push_str(&format!(
            ": {messages} повідомл. від {} людей. Найактивніші: {busiest}.\n",
            catchup.people
        )),
        Lang::En => text.push_str(&format!(
            ": {messages} messages from {} people. Most active: {busiest}.\n",
            catchup.people
        )),
    }
    match summary {
        Some(pieces) => {
            text.push('\n');
            text.push_str(&render_pieces(pieces, &catchup.telling, links));
            text.push('\n');
        }
        None => {
            for (n, thread) in catchup.threads.iter().enumerate() {
                let mut entry = format!("\n<b>{}.", n + 1);
                if !thread.words.is_empty() {
                    entry.push(' ');
                    entry.push_str(&escape(&thread.words.join(" · ")));
                }
                entry.push_str("</b>");
                if !thread.people.is_empty() {
                    entry.push_str(" — ");
                    entry.push_str(&escape(&thread.people.join(", ")));
                }
                entry.push('\n');
                for key in &thread.keys {
                    entry.push_str("• ");
                    entry.push_str(&quote_line(
                        key,
                        links(key),
                        &cut(&key.text),
                        utc_offset_secs,
                    ));
                    entry.push('\n');
                }
                if !push_within(&mut text, &entry) {
                    break;
                }
            }
        }
    }
    let coverage = &catchup.coverage;
    if let Some(from) = coverage.read_from {
        let from = date(from, utc_offset_secs);
        text.push_str(&match (lang, coverage.skipped) {
            (Lang::Uk, Some(skipped)) => format!(
                "\nℹ️ Прочитано найновіші {messages} повідомл., від {from}; ще близько {skipped} раніших не прочитано. Для коротшого проміжку: /catchup 6h."
            ),
            (Lang::Uk, None) => format!(
                "\nℹ️ Прочитано найновіші {messages} повідомл., від {from}; раніші не прочитано. Для коротшого проміжку: /catchup 6h."
            ),
            (Lang::En, Some(skipped)) => format!(
                "\nℹ️ Read the newest {messages} messages, from {from}; about {skipped} earlier ones were left out. For a shorter span: /catchup 6h."
            ),
            (Lang::En, None) => format!(
                "\nℹ️ Read the newest {messages} messages, from {from}; earlier ones were left out. For a shorter span: /catchup 6h."
            ),
        });
    }
    if coverage.cut_short {
        text.push_str(lang.pick(
            "\nℹ️ Повідомлень забагато: прочитано не до кінця проміжку.",
            "\nℹ️ Too many messages: reading stopped before the end of the span.",
        ));
    }
    text
}

/// Whether `text` fits in one Telegram message (4,096 UTF-16 units).
pub fn fits(text: &str) -> bool {
    text.encode_utf16().count() <= 4_096
}

/// When the window holds no messages.
pub fn catchup_nothing(lang: Lang, since: Since, utc_offset_secs: i64) -> String {
    let mut text = heading(lang, since, utc_offset_secs);
    text.push_str(lang.pick(": нових повідомлень немає.", ": no new messages."));
    text
}

/// Why `/catchup`'s arguments were refused, and what works.
pub fn catchup_refused(lang: Lang, error: &SpanError) -> String {
    let usage = lang.pick(
        "Пишіть /catchup (від вашого останнього повідомлення), /catchup 6h, /catchup 3d або /catchup 2w (до 30 днів); у темі форуму /catchup all — про весь чат.",
        "Write /catchup (since your last message), /catchup 6h, /catchup 3d or /catchup 2w (up to 30 days); in a forum topic, /catchup all for the whole chat.",
    );
    match error {
        SpanError::NotASpan(part) => match lang {
            Lang::Uk => format!("«{}» — не проміжок часу. {usage}", cut_short(part)),
            Lang::En => format!("\"{}\" is not a span of time. {usage}", cut_short(part)),
        },
        SpanError::TooLong => match lang {
            Lang::Uk => format!("Проміжок задовгий. {usage}"),
            Lang::En => format!("That span is too long. {usage}"),
        },
    }
}

/// The pieces of a model's text, escaped, with citations as links to the cited messages
/// (`given`: the messages the model was numbering).
fn render_pieces(pieces: &[Piece], given: &[MessageRef], links: Links) -> String {
    let mut text = String::new();
    for piece in pieces {
        match piece {
            Piece::Text(part) => text.push_str(&escape(part)),
            Piece::Cite(n) => {
                let label = format!("[{}]", n + 1);
                match given.get(*n).and_then(|m| links(m)) {
                    Some(link) => {
                        text.push_str(&format!(" <a href=\"{}\">{label}</a>", escape(&link)))
                    }
                    None => {
                        text.push(' ');
                        text.push_str(&label);
                    }
                }
            }
        }
    }
    text.trim().to_string()
}

/// A language model's answer with its citations linked, and the cited messages listed (date,
/// author, the start of the text) so that they can be checked even where a chat has no links.
pub fn answer(
    lang: Lang,
    pieces: &[Piece],
    given: &[MessageRef],
    links: Links,
    utc_offset_secs: i64,
) -> String {
    let mut text = format!("💡 {}\n", render_pieces(pieces, given, links));
    text.push_str(lang.pick("\nДжерела:\n", "\nSources:\n"));
    let mut cited: Vec<usize> = pieces
        .iter()
        .filter_map(|p| match p {
            Piece::Cite(n) => Some(*n),
            Piece::Text(_) => None,
        })
        .collect();
    cited.sort_unstable();
    cited.dedup();
    for n in cited {
        let Some(message) = given.get(n) else {
            continue;
        };
        let body: String = cut(&crate::reply::one_line(&message.text, 80));
        let entry = format!(
            "[{}] {}\n",
            n + 1,
            quote_line(message, links(message), &body, utc_offset_secs)
        );
        if !push_within(&mut text, &entry) {
            break;
        }
    }
    text
}

/// The offline answer to `/ask`: the best matching messages quoted, with links, instead of an
/// invented answer; or, with none, that the history holds no answer.
pub fn quotes(
    lang: Lang,
    question: &str,
    hits: &[Hit],
    links: Links,
    incomplete: bool,
    utc_offset_secs: i64,
) -> String {
    if hits.is_empty() {
        return no_answer(lang, question, &[], links, incomplete, utc_offset_secs);
    }
    let mut text = match lang {
        Lang::Uk => format!(
            "🔎 Ось що про «{}» писали в цьому чаті:\n",
            cut_short(question)
        ),
        Lang::En => format!(
            "🔎 What this chat said about \"{}\":\n",
            cut_short(question)
        ),
    };
    push_hits(&mut text, hits, links, utc_offset_secs);
    push_incomplete(&mut text, lang, incomplete);
    text
}

/// That the history holds no answer to `question`, with the closest messages when there are
/// some.
pub fn no_answer(
    lang: Lang,
    question: &str,
    closest: &[Hit],
    links: Links,
    incomplete: bool,
    utc_offset_secs: i64,
) -> String {
    let mut text = match lang {
        Lang::Uk => format!(
            "🤷 В історії цього чату немає відповіді на «{}».",
            cut_short(question)
        ),
        Lang::En => format!(
            "🤷 This chat's history holds no answer to \"{}\".",
            cut_short(question)
        ),
    };
    if !closest.is_empty() {
        text.push_str(lang.pick("\nНайближче, що знайшлося:\n", "\nThe closest messages:\n"));
        push_hits(
            &mut text,
            &closest[..closest.len().min(3)],
            links,
            utc_offset_secs,
        );
    }
    push_incomplete(&mut text, lang, incomplete);
    text
}

fn push_hits(text: &mut String, hits: &[Hit], links: Links, utc_offset_secs: i64) {
    for hit in hits {
        let body = hit.snippet.render("<b>", "</b>", escape);
        let entry = format!(
            "\n• {}\n",
            quote_line(&hit.message, links(&hit.message), &body, utc_offset_secs)
        );
        if !push_within(text, &entry) {
            break;
        }
    }
}

fn push_incomplete(text: &mut String, lang: Lang, incomplete: bool) {
    if incomplete {
        text.push_str(lang.pick(
            "\n⏳ Пошук ще читає історію чату: відповідь може бути неповною.",
            "\n⏳ Search is still reading the chat's history: the answer may be incomplete.",
        ));
    }
}

/// What `/ask` says without a question.
pub fn ask_usage(lang: Lang) -> &'static str {
    lang.pick(
        "Що саме запитати в історії чату? Наприклад: /ask коли виїзд у Карпати?",
        "What should I ask the chat's history? For example: /ask when do we leave for the Carpathians?",
    )
}
