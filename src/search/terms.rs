//! The terms a message is indexed under and a query looks for: its words, folded and stemmed by
//! the analyzer's normaliser (so that "радий" and "радію" meet), without stop-words (they are in
//! most messages, so they would cost the most space and tell the least). A word is a stop-word
//! by its folded form, not its stem: the stemmer cuts "намет" (tent) to "нам" (to us).

use crate::analyzer::lexicon;
use crate::analyzer::normalize::Stemmer;
use crate::tokens;
use rustc_hash::{FxHashMap, FxHashSet};

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

    /// The terms of a query word's forms: the analyzer's stemmer is light and does not always
    /// bring a word's forms to one stem ("вокзал" → "вокза", "вокзалу" → "вокзал", "вокзала"
    /// → "вокз"), so a query looks for the stems of the forms the word's inflections make. The
    /// word's own term comes first; `None` for a stop-word.
    pub fn forms(&self, word: &str) -> Option<Vec<String>> {
        let own = self.term(word)?;
        let folded = tokens::fold(word);
        let endings = if folded.chars().any(tokens::is_cyrillic) {
            CYRILLIC_ENDINGS
        } else if folded.is_ascii() {
            LATIN_ENDINGS
        } else {
            &[]
        };
        // The word, and the word without each ending it has that leaves a base to inflect.
        let mut bases = vec![folded.as_str()];
        for ending in endings {
            if let Some(base) = folded.strip_suffix(ending) {
                if base.chars().count() >= 3 && !bases.contains(&base) {
                    bases.push(base);
                }
            }
        }
        let mut terms = vec![own];
        let mut form = String::new();
        for base in bases {
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
        Some(terms)
    }

    /// A word folded, stemmed and cut, stop-word or not (what a `word*` prefix is matched by).
    pub fn stem(&self, word: &str) -> String {
        let mut term = String::with_capacity(word.len());
        tokens::fold_into(word, &mut term);
        self.stemmer.stem_in_place(&mut term);
        cut(&mut term);
        term
    }

    /// The distinct terms of `text` with how often each occurs, and the number of its words
    /// (stop-words included: the length that ranking normalises by).
    pub fn of_text(&self, text: &str) -> (FxHashMap<String, u16>, u32) {
        let mut terms: FxHashMap<String, u16> = FxHashMap::default();
        let mut length = 0u32;
        for word in tokens::words(text) {
            length += 1;
            if let Some(term) = self.term(word) {
                let count = terms.entry(term).or_default();
                *count = count.saturating_add(1);
            }
        }
        (terms, length)
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
/// English forms.
const LATIN_ENDINGS: &[&str] = &["s", "es", "ed", "ing", "er"];

/// Words whose stems change when the stemmer's rules do.
const STEMMER_SAMPLE: &[&str] = &[
    "радію", "зустрічаємося", "подорожували", "книжками", "вчительці", "говорили", "красивого",
    "встречались", "путешествия", "running", "happiness", "books", "walked", "friendly",
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
        let (found, length) = terms.of_text("Я радий, дуже радий тебе бачити!");
        assert_eq!(length, 6);
        assert_eq!(found[&terms.term("радий").unwrap()], 2);
        assert!(!found.contains_key("я"));
    }

    #[test]
    fn a_query_word_looks_for_the_stems_of_its_forms() {
        let terms = Terms::default();
        for (word, forms) in [
            ("вокзал", &["вокзалу", "вокзала", "вокзале", "вокзалі", "вокзалом"][..]),
            ("вокзала", &["вокзал", "вокзалу"]),
            ("намет", &["намети", "наметом", "намету"]),
            ("Карпати", &["Карпатах", "Карпат"]),
            ("book", &["books", "booking"]),
        ] {
            let looked_for = terms.forms(word).unwrap();
            assert_eq!(looked_for[0], terms.term(word).unwrap());
            for form in forms {
                let term = terms.term(form).unwrap();
                assert!(looked_for.contains(&term), "{word}: {form} ({term}) not in {looked_for:?}");
            }
        }
        assert_eq!(terms.forms("і"), None);
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
        assert_eq!(Terms::default().fingerprint(), Terms::default().fingerprint());
    }
}
