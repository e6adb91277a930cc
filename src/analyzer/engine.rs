//! [`Analyzer`]: one pass over a text, one map lookup per word.

use super::analysis::{Analysis, Emotion, Language, Style, Topic};
use super::lexicon::{self, EmojiSignal, Lexicon};
use super::normalize;
use crate::tokens::{fold_into, is_cyrillic, is_emoji, is_letter, tokens, Kind};

/// Flags that make a word carry sentiment or emotion.
const SIGNALS: u32 = lexicon::POSITIVE | lexicon::NEGATIVE | (0b11_1111 << lexicon::EMOTION_SHIFT);
const MAX_KEYWORDS: usize = 5;
/// Emoji weigh more than words: in chats they are the clearest signal.
const EMOJI_WEIGHT: f32 = 1.5;
/// Emoji that laugh (the lexicon files them under joy; they also mark humour).
const LAUGHING_EMOJI: [char; 5] = ['😂', '🤣', '😆', '😹', '😅'];

/// The analyzer: lexicons loaded once, shared by reference.
pub struct Analyzer {
    lexicon: Lexicon,
}

impl Default for Analyzer {
    fn default() -> Self {
        Analyzer::new(Lexicon::embedded())
    }
}

impl Analyzer {
    /// An analyzer over `lexicon`.
    pub fn new(lexicon: Lexicon) -> Self {
        Analyzer { lexicon }
    }

    /// Analyses one text.
    pub fn analyze(&self, text: &str) -> Analysis {
        let mut scan = Scan::default();
        let mut folded = String::new();
        for token in tokens(text) {
            match token.kind {
                Kind::Word => {
                    if scan.words == 0 {
                        scan.starts_upper = token.text.starts_with(char::is_uppercase);
                    }
                    self.word(token.text, &mut folded, &mut scan);
                }
                Kind::Emoji => {
                    for c in token.text.chars().filter(|&c| is_emoji(c)) {
                        scan.emoji += 1;
                        scan.humour |= LAUGHING_EMOJI.contains(&c);
                        if let Some(signal) = self.lexicon.emoji(c) {
                            scan.signal(signal, EMOJI_WEIGHT);
                        }
                        scan.modifier = Modifier::None;
                    }
                }
                Kind::SentenceEnd => {
                    scan.exclaim += token.text.bytes().filter(|&b| b == b'!').count() as u32;
                    scan.question |= token.text.contains('?');
                }
                // `))` (or more) is the chats' smile: casual and warm.
                Kind::Symbol => scan.smiles += u32::from(token.text.starts_with("))")),
                Kind::ClauseMark => {}
            }
        }
        scan.ends_with_period = text.trim_end().ends_with('.');
        scan.finish()
    }

    fn word(&self, word: &str, folded: &mut String, scan: &mut Scan) {
        fold_into(word, folded);
        // Before stemming, which would clip "хаха".
        let laughter = normalize::is_laughter(folded);
        let whole = self.lexicon.flags(folded);
        let len = folded.len();
        self.lexicon.stemmer.stem_in_place(folded);
        let flags = if folded.len() == len {
            whole
        } else {
            whole | self.lexicon.flags(folded)
        };
        if flags == 0 && word.contains('-') {
            // The lists hold single words and a few compounds ("wi-fi"); any other compound
            // ("будь-ласка") is read as its parts.
            scan.humour |= laughter;
            for part in word.split('-') {
                self.word(part, folded, scan);
            }
            return;
        }
        scan.words += 1;
        scan.humour |= laughter;
        for c in word.chars() {
            if is_cyrillic(c) {
                scan.cyrillic += 1;
                match c {
                    'і' | 'ї' | 'є' | 'ґ' | 'І' | 'Ї' | 'Є' | 'Ґ' => {
                        scan.ukrainian_letters += 1
                    }
                    'ы' | 'э' | 'ъ' | 'ё' | 'Ы' | 'Э' | 'Ъ' | 'Ё' => {
                        scan.russian_letters += 1
                    }
                    _ => {}
                }
            } else if c.is_ascii_alphabetic() {
                scan.latin += 1;
            } else if is_letter(c) {
                scan.other_letters += 1;
            }
        }
        // Only a word on one language's lists tells the language ("хватит" yes, "страшно" no).
        let languages = (flags >> lexicon::LANG_SHIFT) & 0b111;
        if languages.count_ones() == 1 {
            scan.language_hits[languages.trailing_zeros() as usize] += 1;
        }
        scan.formal += u32::from(flags & lexicon::FORMAL != 0);
        scan.casual += u32::from(flags & lexicon::CASUAL != 0);
        scan.friendly += u32::from(flags & lexicon::FRIENDLY != 0);
        scan.humour |= flags & lexicon::HUMOUR != 0;
        if flags & lexicon::NEGATION != 0 {
            scan.modifier = Modifier::Negated;
            return;
        }
        if flags & lexicon::INTENSIFIER != 0 {
            // "не дуже радий" stays negated.
            if scan.modifier != Modifier::Negated {
                scan.modifier = Modifier::Intensified;
            }
            return;
        }
        let weight = match scan.modifier {
            Modifier::Intensified => 2.0,
            _ => 1.0,
        };
        let negated = scan.modifier == Modifier::Negated;
        if flags & lexicon::POSITIVE != 0 {
            scan.sentiment += if negated { -weight } else { weight };
            scan.polar_words += 1.0;
        }
        if flags & lexicon::NEGATIVE != 0 {
            // "not bad" is mildly positive.
            scan.sentiment += if negated { weight * 0.5 } else { -weight };
            scan.polar_words += 1.0;
        }
        for (i, emotion) in Emotion::SCORED.iter().enumerate() {
            if flags & (1 << (lexicon::EMOTION_SHIFT + i as u32)) != 0 {
                if negated {
                    // "не радий": no joy, and the opposite polarity.
                    scan.sentiment -= emotion.polarity() * weight * 0.5;
                } else {
                    scan.emotions[i] += weight;
                    scan.sentiment += emotion.polarity() * weight * 0.5;
                }
            }
        }
        for (i, count) in scan.topics.iter_mut().enumerate() {
            *count += (flags >> (lexicon::TOPIC_SHIFT + i as u32)) & 1;
        }
        if flags & lexicon::STOP == 0
            && word.chars().count() >= 3
            && word.chars().all(is_letter)
            && scan.keywords.len() < MAX_KEYWORDS
        {
            let mut keyword = String::new();
            fold_into(word, &mut keyword);
            if !scan.keywords.contains(&keyword) {
                scan.keywords.push(keyword);
            }
        }
        // A modifier reaches over stop-words ("not at all happy") to the next other word.
        if flags & lexicon::STOP == 0 || flags & SIGNALS != 0 {
            scan.modifier = Modifier::None;
        }
    }
}

/// What a negation or an intensifier does to the next signal word.
#[derive(Clone, Copy, Default, PartialEq)]
enum Modifier {
    #[default]
    None,
    Negated,
    Intensified,
}

/// Running counts over one text.
#[derive(Default)]
struct Scan {
    words: u32,
    emoji: u32,
    cyrillic: u32,
    latin: u32,
    other_letters: u32,
    ukrainian_letters: u32,
    russian_letters: u32,
    /// Words found on the lists of only one language: uk / ru / en.
    language_hits: [u32; 3],
    emotions: [f32; 6],
    topics: [u32; 10],
    sentiment: f32,
    polar_words: f32,
    exclaim: u32,
    question: bool,
    modifier: Modifier,
    keywords: Vec<String>,
    formal: u32,
    casual: u32,
    friendly: u32,
    /// Emoji that signal joy or something positive.
    warm_emoji: u32,
    /// `))` runs.
    smiles: u32,
    starts_upper: bool,
    ends_with_period: bool,
    humour: bool,
}

impl Scan {
    fn signal(&mut self, signal: EmojiSignal, weight: f32) {
        if matches!(
            signal,
            EmojiSignal::Positive | EmojiSignal::Emotion(Emotion::Joy)
        ) {
            self.warm_emoji += 1;
        }
        match signal {
            EmojiSignal::Positive => self.sentiment += weight,
            EmojiSignal::Negative => self.sentiment -= weight,
            EmojiSignal::Emotion(emotion) => {
                let i = Emotion::SCORED
                    .iter()
                    .position(|e| *e == emotion)
                    .unwrap_or(0);
                self.emotions[i] += weight;
                self.sentiment += emotion.polarity() * weight * 0.5;
            }
        }
        self.polar_words += 1.0;
    }

    fn language(&self) -> Language {
        let [uk, ru, en] = self.language_hits;
        if self.cyrillic > self.latin {
            if self.ukrainian_letters != self.russian_letters {
                return if self.ukrainian_letters > self.russian_letters {
                    Language::Ukrainian
                } else {
                    Language::Russian
                };
            }
            // No telling letters: the words decide, and ties go to Ukrainian (the chats are).
            if ru > uk {
                Language::Russian
            } else {
                Language::Ukrainian
            }
        } else if self.latin > 0 && self.other_letters == 0 && en > 0 {
            Language::English
        } else {
            Language::Other
        }
    }

    /// The register with the most markers (words count double: they are the clearer sign); ties
    /// go to the warmer one, and a text without markers has none.
    fn style(&self, sentiment: f32) -> Option<Style> {
        let full_sentences = self.starts_upper
            && self.ends_with_period
            && self.words >= 5
            && self.casual == 0
            && self.smiles == 0;
        let formal = self.formal * 2 + u32::from(full_sentences);
        let friendly =
            self.friendly * 2 + self.warm_emoji + u32::from(sentiment > 0.3 && self.exclaim > 0);
        let casual = self.casual * 2 + self.smiles;
        [
            (Style::Friendly, friendly),
            (Style::Casual, casual),
            (Style::Formal, formal),
        ]
        .into_iter()
        .filter(|&(_, score)| score > 0)
        .reduce(|best, next| if next.1 > best.1 { next } else { best })
        .map(|(style, _)| style)
    }

    fn finish(mut self) -> Analysis {
        if self.exclaim >= 2 {
            self.sentiment *= 1.3;
        }
        let (top, &score) = self
            .emotions
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1).then(b.0.cmp(&a.0)))
            .expect("six emotions");
        let total: f32 = self.emotions.iter().sum();
        let (mut emotion, mut confidence) = if score > 0.0 {
            (Emotion::SCORED[top], score / (total + 0.5))
        } else {
            (Emotion::Neutral, 0.0)
        };
        if emotion == Emotion::Neutral && self.question && self.exclaim > 0 {
            // "?!" without other signals reads as surprise.
            emotion = Emotion::Surprise;
            confidence = 0.3;
        }
        let sentiment = if self.polar_words > 0.0 {
            (self.sentiment / (self.polar_words + 1.0)).clamp(-1.0, 1.0)
        } else {
            0.0
        };
        let topic = self
            .topics
            .iter()
            .enumerate()
            .filter(|(_, &n)| n > 0)
            .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(&a.0)))
            .map(|(i, _)| Topic::ALL[i]);
        Analysis {
            language: self.language(),
            style: self.style(sentiment),
            humour: self.humour,
            emotion,
            confidence,
            sentiment,
            topic,
            keywords: self.keywords,
            emoji: self.emoji,
            words: self.words,
        }
    }
}
