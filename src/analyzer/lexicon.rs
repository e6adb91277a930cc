//! The word lists of `data/lexicon/` (see its README), compiled into the binary so that a VPS
//! needs no data files, and loadable from a directory for tuning. Every entry is normalised like
//! the texts it is matched against, and all lists fold into one map: a word's flags say every
//! list it is on, so analysing a word is one lookup.

use super::analysis::{Emotion, Topic};
use super::normalize::Stemmer;
use crate::tokens::fold_into;
use rustc_hash::FxHashMap;
use std::path::Path;

/// The languages with lists, in flag order.
pub const LANGUAGES: [&str; 3] = ["uk", "ru", "en"];

/// Flags of a word (bit positions).
pub const LANG_SHIFT: u32 = 0; // 3 bits: on some list of uk / ru / en
pub const STOP: u32 = 1 << 3;
pub const POSITIVE: u32 = 1 << 4;
pub const NEGATIVE: u32 = 1 << 5;
pub const NEGATION: u32 = 1 << 6;
pub const INTENSIFIER: u32 = 1 << 7;
pub const EMOTION_SHIFT: u32 = 8; // 6 bits, in Emotion::SCORED order
pub const TOPIC_SHIFT: u32 = 14; // Topic::ALL.len() bits
pub const FORMAL: u32 = 1 << 24;
pub const CASUAL: u32 = 1 << 25;
pub const FRIENDLY: u32 = 1 << 26;
pub const HUMOUR: u32 = 1 << 27;

/// One list file: its name in a language directory and the flags its words get.
fn list_flags(name: &str) -> Option<u32> {
    Some(match name {
        "stopwords" => STOP,
        "positive" => POSITIVE,
        "negative" => NEGATIVE,
        "negations" => NEGATION,
        "intensifiers" => INTENSIFIER,
        "style_formal" => FORMAL,
        "style_casual" => CASUAL,
        "style_friendly" => FRIENDLY,
        "humour" => HUMOUR,
        _ => {
            if let Some(emotion) = name.strip_prefix("emotion_") {
                let i = Emotion::SCORED.iter().position(|e| e.name() == emotion)?;
                1 << (EMOTION_SHIFT + i as u32)
            } else {
                let topic = name.strip_prefix("topic_")?;
                let i = Topic::ALL.iter().position(|t| t.name() == topic)?;
                1 << (TOPIC_SHIFT + i as u32)
            }
        }
    })
}

/// What an emoji signals.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EmojiSignal {
    Emotion(Emotion),
    Positive,
    Negative,
}

/// Every list, folded into lookups.
pub struct Lexicon {
    pub stemmer: Stemmer,
    // Fx: short keys looked up once or twice per word; SipHash's flood resistance buys nothing
    // for a fixed word list.
    words: FxHashMap<Box<str>, u32>,
    emoji: FxHashMap<char, EmojiSignal>,
}

/// The lists of one language directory, as (language, list, contents); every language has the
/// same lists, named once here.
macro_rules! language_lists {
    ($lang:literal) => {
        language_lists!($lang;
            "stopwords", "positive", "negative", "negations", "intensifiers",
            "emotion_joy", "emotion_sadness", "emotion_anger", "emotion_fear", "emotion_surprise",
            "emotion_disgust", "topic_tech", "topic_work_study", "topic_daily_life",
            "topic_entertainment", "topic_weather_nature", "topic_relationships",
            "topic_politics_news", "topic_food", "topic_health_sport", "topic_travel",
            "style_formal", "style_casual", "style_friendly", "humour")
    };
    ($lang:literal; $($name:literal),*) => {
        &[$(($lang, $name, include_str!(concat!("../../data/lexicon/", $lang, "/", $name, ".txt")))),*]
    };
}

/// The lists shipped in the repository, per language in [`LANGUAGES`] order.
const EMBEDDED: [&[(&str, &str, &str)]; 3] = [
    language_lists!("uk"),
    language_lists!("ru"),
    language_lists!("en"),
];
const EMBEDDED_EMOJI: &str = include_str!("../../data/lexicon/emoji.txt");

impl Lexicon {
    /// The lists compiled into the binary.
    pub fn embedded() -> Lexicon {
        let mut lexicon = Lexicon::empty();
        for (lang, name, text) in EMBEDDED.iter().copied().flatten() {
            lexicon.add_list(lang, name, text);
        }
        lexicon.add_emoji(EMBEDDED_EMOJI);
        lexicon
    }

    /// The lists of a directory laid out like `data/lexicon/` (for tuning them without a
    /// rebuild). Missing files are errors that name them.
    pub fn from_dir(dir: &Path) -> anyhow::Result<Lexicon> {
        let mut lexicon = Lexicon::empty();
        let read = |path: std::path::PathBuf| {
            std::fs::read_to_string(&path).map_err(|e| {
                anyhow::anyhow!("cannot read the lexicon file {}: {e}", path.display())
            })
        };
        for (lang, name, _) in EMBEDDED.iter().copied().flatten() {
            let text = read(dir.join(lang).join(format!("{name}.txt")))?;
            lexicon.add_list(lang, name, &text);
        }
        lexicon.add_emoji(&read(dir.join("emoji.txt"))?);
        Ok(lexicon)
    }

    fn empty() -> Lexicon {
        Lexicon {
            stemmer: Stemmer::default(),
            words: FxHashMap::default(),
            emoji: FxHashMap::default(),
        }
    }

    fn add_list(&mut self, lang: &str, name: &str, text: &str) {
        let lang_bit =
            1 << (LANG_SHIFT + LANGUAGES.iter().position(|l| *l == lang).unwrap_or(0) as u32);
        let flags = list_flags(name).unwrap_or(0) | lang_bit;
        let mut folded = String::new();
        for entry in entries(text) {
            // Multi-word entries contribute each word (the analyzer looks at words).
            for word in entry.split_whitespace() {
                fold_into(word, &mut folded);
                self.stemmer.stem_in_place(&mut folded);
                *self.words.entry(folded.as_str().into()).or_default() |= flags;
            }
        }
    }

    fn add_emoji(&mut self, text: &str) {
        for entry in entries(text) {
            let Some((emoji, class)) = entry.split_once('\t') else {
                continue;
            };
            let signal = match class.trim() {
                "positive" => EmojiSignal::Positive,
                "negative" => EmojiSignal::Negative,
                other => match Emotion::SCORED.iter().find(|e| e.name() == other) {
                    Some(&emotion) => EmojiSignal::Emotion(emotion),
                    None => continue,
                },
            };
            if let Some(c) = emoji.chars().find(|&c| c != '\u{FE0F}') {
                self.emoji.insert(c, signal);
            }
        }
    }

    /// The flags of a normalised word (0 when it is on no list).
    pub fn flags(&self, word: &str) -> u32 {
        self.words.get(word).copied().unwrap_or(0)
    }

    /// What an emoji signals, if anything.
    pub fn emoji(&self, c: char) -> Option<EmojiSignal> {
        self.emoji.get(&c).copied()
    }

    /// How many distinct normalised words the lists hold.
    pub fn len(&self) -> usize {
        self.words.len()
    }

    /// Whether no list was loaded.
    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }
}

/// The words of list `name` (such as "stopwords") of every language compiled into the binary,
/// as written (not normalised).
pub fn embedded_words(name: &str) -> impl Iterator<Item = &'static str> + '_ {
    EMBEDDED
        .iter()
        .copied()
        .flatten()
        .filter(move |(_, list, _)| *list == name)
        .flat_map(|(_, _, text)| entries(text))
        .flat_map(str::split_whitespace)
}

/// The entries of a list: trimmed lines, without blanks and `#` comments.
fn entries(text: &str) -> impl Iterator<Item = &str> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokens::{self, is_emoji, Kind};

    #[test]
    fn every_listed_emoji_is_one_the_tokenizer_finds() {
        let lexicon = Lexicon::embedded();
        let missed: Vec<char> = lexicon
            .emoji
            .keys()
            .copied()
            .filter(|&c| !is_emoji(c))
            .collect();
        assert!(missed.is_empty(), "{missed:?}");
    }

    #[test]
    fn every_listed_word_is_one_word_to_the_tokenizer() {
        // Lists and texts must split alike, or an entry could never match.
        let mut unmatched = Vec::new();
        for (lang, name, text) in EMBEDDED.iter().copied().flatten() {
            for word in entries(text).flat_map(str::split_whitespace) {
                let found: Vec<_> = tokens::tokens(word).collect();
                if !(found.len() == 1 && found[0].kind == Kind::Word && found[0].text == word) {
                    unmatched.push(format!("{lang}/{name}: {word}"));
                }
            }
        }
        assert!(unmatched.is_empty(), "{unmatched:#?}");
    }
}
