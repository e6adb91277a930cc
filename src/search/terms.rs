//! The terms a message is indexed under and a query looks for: its words, folded and stemmed by
//! the analyzer's normaliser (so that "радий" and "радію" meet), without stop-words (they are in
//! most messages, so they would cost the most space and tell the least). A word is a stop-word
//! by its folded form, not its stem: the stemmer cuts "намет" (tent) to "нам" (to us).

use super::want::Want;
use crate::analyzer::lexicon;
use crate::analyzer::normalize::Stemmer;
use crate::store::{Message, MessageKind};
use crate::tokens;
use rustc_hash::FxHashSet;

/// Whether a message is searched: it has text, and is neither a service message nor a bot
/// command (a `/search Карпати` is not what the next search for "Карпати" wants).
pub fn searchable(message: &Message) -> bool {
    message.kind != MessageKind::Service && !message.text.is_empty() && !is_command(&message.text)
}

/// Whether `text` is a bot command (`/search …`): what people tell the bot, not each other.
pub fn is_command(text: &str) -> bool {
    text.strip_prefix('/')
        .and_then(|rest| rest.chars().next())
        .is_some_and(|c| c.is_ascii_alphabetic())
}

/// Stems longer than this many bytes are cut (at a character boundary): a 200-letter "word" is
/// a URL or a key, and a long term would only bloat the dictionary.
pub const MAX_TERM_BYTES: usize = 48;

/// Stemmer and stop-words: one per index, shared by indexing and queries.
pub struct Terms {
    stemmer: Stemmer,
    stop: FxHashSet<Box<str>>,
}

impl Default for Terms {
    /// The lists compiled into the binary: the index must not change meaning with a lexicon
    /// directory set for tuning the analyzer.
    fn default() -> Self {
        Terms {
            stemmer: Stemmer::default(),
            stop: lexicon::embedded_words("stopwords")
                .map(|word| tokens::fold(word).into_boxed_str())
                .collect(),
        }
    }
}

impl Terms {
    /// The term of one word: folded, stemmed and cut; `None` for a stop-word.
    pub fn term(&self, word: &str) -> Option<String> {
        let mut term = String::with_capacity(word.len());
        tokens::fold_into(word, &mut term);
        if self.stop.contains(term.as_str()) {
            return None;
        }
        self.stemmer.stem_in_place(&mut term);
        cut(&mut term);
        Some(term)
    }

    /// What a query word looks for: the stems of its forms, and, for a long word, its stem as
    /// a start. The analyzer's stemmer is light and does not always bring a word's forms to one
    /// stem ("вокзал" → "вокза", "вокзалу" → "вокзал", "вокзала" → "вокз"), and Ukrainian and
    /// Russian change a word's last syllable as they inflect it ("квиток", "квитка"; "кіт",
    /// "кота"; "відпустка", "у відпустці"), so a query makes the word's forms itself: it strips
    /// each ending the word may have, applies those changes, adds each ending, and looks for
    /// the stems of the results. The word's own term comes first; `None` for a stop-word.
    pub fn want(&self, word: &str) -> Option<Want> {
        let own = self.term(word)?;
        let folded = tokens::fold(word);
        let cyrillic = folded.chars().any(tokens::is_cyrillic);
        let endings = if cyrillic {
            CYRILLIC_ENDINGS
        } else if folded.is_ascii() {
            LATIN_ENDINGS
        } else {
            &[]
        };
        // The word, and the word without each ending it has that leaves a base to inflect.
        let mut bases = vec![folded.clone()];
        for ending in endings {
            if let Some(base) = folded.strip_suffix(ending) {
                if base.chars().count() >= 3 {
                    bases.push(base.to_string());
                }
            }
        }
        for base in bases.clone() {
            if cyrillic {
                bases.extend(alternations(&base));
            } else if let Some(stem) = base.strip_suffix('y') {
                bases.push(format!("{stem}ie"));
            } else if let Some(stem) = base.strip_suffix("ie") {
                bases.push(format!("{stem}y"));
            }
        }
        bases.sort_unstable();
        bases.dedup();
        let mut terms = vec![own.clone()];
        let mut form = String::new();
        for base in &bases {
            for ending in endings.iter().chain(std::iter::once(&"")) {
                form.clear();
                form.push_str(base);
                form.push_str(ending);
                if self.stop.contains(form.as_str()) {
                    continue;
                }
                let term = self.stem(&form);
                if !terms.contains(&term) {
                    terms.push(term);
                }
            }
        }
        let starts = if own.chars().count() >= LONG_STEM {
            vec![own]
        } else {
            Vec::new()
        };
        Some(Want { terms, starts })
    }

    /// A word folded, stemmed and cut, stop-word or not (what a `word*` prefix is matched by).
    pub fn stem(&self, word: &str) -> String {
        let mut term = String::with_capacity(word.len());
        tokens::fold_into(word, &mut term);
        self.stemmer.stem_in_place(&mut term);
        cut(&mut term);
        term
    }

    /// The distinct terms of `text`, sorted, and the number of its words (stop-words included:
    /// the length that ranking normalises by). The terms are written into `scratch`, whose
    /// strings are reused from call to call, so that indexing allocates almost nothing.
    pub fn distinct_terms<'s>(
        &self,
        text: &str,
        scratch: &'s mut Vec<String>,
    ) -> (&'s [String], u32) {
        let mut n = 0;
        let mut length = 0u32;
        for word in tokens::words(text) {
            length += 1;
            if n == scratch.len() {
                scratch.push(String::new());
            }
            let term = &mut scratch[n];
            tokens::fold_into(word, term);
            if self.stop.contains(term.as_str()) {
                continue;
            }
            self.stemmer.stem_in_place(term);
            cut(term);
            n += 1;
        }
        let terms = &mut scratch[..n];
        terms.sort_unstable();
        let mut distinct = 0;
        for i in 0..terms.len() {
            if distinct == 0 || terms[i] != terms[distinct - 1] {
                terms.swap(i, distinct);
                distinct += 1;
            }
        }
        (&scratch[..distinct], length)
    }

    /// A fingerprint of the stemming and the stop-words: an index written with others is
    /// rebuilt (a release that changes the normaliser changes what terms mean).
    pub fn fingerprint(&self) -> u32 {
        let mut stop: Vec<&str> = self.stop.iter().map(|s| &**s).collect();
        stop.sort_unstable();
        let mut hasher = crc32fast::Hasher::new();
        for word in stop {
            hasher.update(word.as_bytes());
            hasher.update(&[0]);
        }
        // The stemmer's effect on a fixed sample stands for its rules.
        for word in STEMMER_SAMPLE {
            let mut folded = tokens::fold(word);
            self.stemmer.stem_in_place(&mut folded);
            hasher.update(folded.as_bytes());
            hasher.update(&[0]);
        }
        hasher.finalize()
    }
}

/// Endings that make the forms of Ukrainian and Russian nouns, adjectives and verbs.
const CYRILLIC_ENDINGS: &[&str] = &[
    "а", "я", "у", "ю", "і", "и", "ы", "е", "є", "о", "ь", "ом", "ем", "ою", "ею", "ой", "ей",
    "ам", "ям", "ах", "ях", "ами", "ями", "ів", "ов", "ий", "ій", "ого", "ому", "ої", "им", "их",
    "ими", "ая", "ое", "ые", "ую", "ых", "ым", "ти", "ть", "ла", "ли", "в",
];
/// A word whose stem has this many letters also finds the words made from it.
const LONG_STEM: usize = 5;

/// Bases that inflection makes of `base` by changing its end: a vowel that drops or appears
/// before the last consonant ("квиток" / "квитк", "книжк" / "книжок"), і alternating with о and
/// е in the last syllable ("кіт" / "кот", "гор" / "гір"), and к, г, х alternating with ц, з, с
/// ("відпустк" / "відпустц").
fn alternations(base: &str) -> Vec<String> {
    const VOWELS: &str = "аеєиіїоуюяыэё";
    let chars: Vec<char> = base.chars().collect();
    let n = chars.len();
    let mut out = Vec::new();
    if n < 3 {
        return out;
    }
    let vowel = |c: char| VOWELS.contains(c);
    let (prev, last) = (chars[n - 2], chars[n - 1]);
    let with = |at: usize, replaced: &[char]| -> String {
        chars[..at]
            .iter()
            .chain(replaced)
            .chain(&chars[at + 1..])
            .collect()
    };
    if matches!(prev, 'о' | 'е' | 'є' | 'ё') && !vowel(last) && n >= 4 {
        out.push(with(n - 2, &[]));
    }
    if !vowel(prev) && !vowel(last) && prev != 'ь' && last != 'ь' {
        out.push(with(n - 1, &['о', last]));
        out.push(with(n - 1, &['е', last]));
    }
    if let Some(at) = (n.saturating_sub(3)..n).rev().find(|&i| vowel(chars[i])) {
        match chars[at] {
            'і' => {
                out.push(with(at, &['о']));
                out.push(with(at, &['е']));
            }
            'о' | 'е' => out.push(with(at, &['і'])),
            _ => {}
        }
    }
    let swapped = match last {
        'к' => Some('ц'),
        'ц' => Some('к'),
        'г' => Some('з'),
        'з' => Some('г'),
        'х' => Some('с'),
        'с' => Some('х'),
        _ => None,
    };
    if let Some(swapped) = swapped {
        out.push(with(n - 1, &[swapped]));
    }
    out
}

/// English forms.
const LATIN_ENDINGS: &[&str] = &["s", "es", "ed", "ing", "er"];

/// Words whose stems change when the stemmer's rules do.
const STEMMER_SAMPLE: &[&str] = &[
    "радію",
    "зустрічаємося",
    "подорожували",
    "книжками",
    "вчительці",
    "говорили",
    "красивого",
    "встречались",
    "путешествия",
    "running",
    "happiness",
    "books",
    "walked",
    "friendly",
];

/// Cuts `term` to at most [`MAX_TERM_BYTES`] bytes at a character boundary.
fn cut(term: &mut String) {
    if term.len() > MAX_TERM_BYTES {
        let mut end = MAX_TERM_BYTES;
        while !term.is_char_boundary(end) {
            end -= 1;
        }
        term.truncate(end);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_forms_meet_and_stop_words_are_left_out() {
        let terms = Terms::default();
        assert_eq!(terms.term("Радий"), terms.term("радію"));
        assert_eq!(terms.term("зустрічі"), terms.term("зустріч"));
        assert_eq!(terms.term("books"), terms.term("book"));
        assert_eq!(terms.term("і"), None);
        // Not a stop-word though its stem is one's.
        assert_eq!(terms.term("намет"), Some(terms.stem("намет")));
        assert_eq!(terms.term("нам"), None);
        assert_eq!(terms.term("the"), None);
        let mut scratch = vec!["старе".to_string(); 2];
        let (found, length) =
            terms.distinct_terms("Я радий, дуже радий тебе бачити!", &mut scratch);
        assert_eq!(length, 6);
        let mut expected: Vec<String> = ["радий", "дуже", "бачити"]
            .iter()
            .map(|w| terms.term(w).unwrap())
            .collect();
        expected.sort();
        assert_eq!(found, expected);
    }

    #[test]
    fn a_query_word_looks_for_the_stems_of_its_forms() {
        let terms = Terms::default();
        for (word, forms) in [
            (
                "вокзал",
                &["вокзалу", "вокзала", "вокзале", "вокзалі", "вокзалом"][..],
            ),
            ("вокзала", &["вокзал", "вокзалу"]),
            ("намет", &["намети", "наметом", "намету"]),
            ("Карпати", &["Карпатах", "Карпат"]),
            ("book", &["books", "booking"]),
            ("квиток", &["квитки", "квитка"]),
            ("кіт", &["кота", "котові"]),
            ("відпустка", &["відпустці", "відпустку"]),
            ("книжка", &["книжок", "книжки"]),
            ("гори", &["гір", "горах"]),
            ("футбол", &["футбольний", "футболу"]),
            ("party", &["parties"]),
        ] {
            let want = terms.want(word).unwrap();
            assert_eq!(want.terms[0], terms.term(word).unwrap());
            for form in forms {
                let term = terms.term(form).unwrap();
                assert!(want.holds(&term), "{word}: {form} ({term}) not in {want:?}");
            }
        }
        assert_eq!(terms.want("і"), None);
    }

    #[test]
    fn long_terms_are_cut_at_a_character_boundary() {
        let terms = Terms::default();
        let long = "ї".repeat(100);
        let term = terms.term(&long).unwrap();
        assert!(term.len() <= MAX_TERM_BYTES && term.chars().all(|c| c == 'ї'));
    }

    #[test]
    fn the_fingerprint_is_stable() {
        assert_eq!(
            Terms::default().fingerprint(),
            Terms::default().fingerprint()
        );
    }
}
