//! Word forms as the analyzer compares them: lower case, one apostrophe, and a light suffix
//! stripper for Ukrainian and Russian inflection, so that "радий", "радію" and "радісно" meet
//! at one stem. The same function normalises lexicon entries, so lists and texts always agree.

use crate::tokens::{fold_into, is_cyrillic};

/// Inflectional endings (Ukrainian and Russian); the longest that fits is stripped.
const INFLECTIONS: &[&str] = &[
    "ість",
    "ості",
    "істю",
    "ость",
    "ости",
    "остью",
    "ннями",
    "ностями",
    "остями",
    "ністю",
    "остю",
    "ення",
    "ання",
    "іння",
    "уючи",
    "ючи",
    "ячи",
    "ться",
    "ись",
    "ами",
    "ями",
    "ові",
    "еві",
    "ого",
    "ому",
    "ими",
    "іми",
    "ими",
    "ого",
    "ему",
    "ими",
    "ыми",
    "ешь",
    "ишь",
    "ете",
    "ите",
    "ємо",
    "ємо",
    "имо",
    "емо",
    "ють",
    "уть",
    "ять",
    "ать",
    "ить",
    "ала",
    "ало",
    "али",
    "ила",
    "ило",
    "или",
    "ала",
    "ать",
    "ся",
    "сь",
    "ти",
    "ть",
    "ий",
    "ій",
    "ой",
    "ый",
    "ая",
    "яя",
    "ое",
    "ее",
    "ые",
    "ие",
    "ою",
    "ею",
    "ую",
    "юю",
    "ої",
    "ів",
    "їв",
    "ов",
    "ев",
    "ом",
    "ем",
    "ам",
    "ям",
    "ах",
    "ях",
    "ує",
    "ає",
    "ює",
    "ує",
    "ит",
    "ет",
    "ют",
    "ут",
    "ат",
    "ят",
    "ав",
    "ів",
    "ла",
    "ло",
    "ли",
    "ію",
    "ею",
    "а",
    "я",
    "о",
    "е",
    "і",
    "и",
    "ї",
    "у",
    "ю",
    "ь",
    "й",
    "ы",
    "л",
];

/// Derivational suffixes stripped after the inflection ("радісн" → "рад").
const DERIVATIONS: &[&str] = &[
    "еньк", "оньк", "ість", "існ", "іст", "ост", "ськ", "енн", "анн", "ува", "юва", "ічн", "очк",
    "ечк", "ниц", "изм", "ізм", "ств", "ивн", "ичн",
];

/// English endings; the longest that fits is stripped.
const ENGLISH: &[&str] = &["ness", "ing", "ful", "ed", "ly", "es", "s"];

/// A stem keeps at least this many characters (shorter words stay whole).
const MIN_STEM: usize = 3;

/// Strips endings, choosing the longest that fits. Endings are grouped by their last character
/// so that a word is compared with a handful of them, not all.
pub struct Stemmer {
    inflections: Endings,
    derivations: Endings,
    english: Endings,
}

/// Endings grouped by last character, longest first within a group.
struct Endings(std::collections::HashMap<char, Vec<&'static str>>);

impl Endings {
    fn new(list: &[&'static str]) -> Self {
        let mut groups: std::collections::HashMap<char, Vec<&'static str>> = Default::default();
        for ending in list {
            let last = ending.chars().last().expect("endings are not empty");
            groups.entry(last).or_default().push(ending);
        }
        for group in groups.values_mut() {
            group.sort_by_key(|e| std::cmp::Reverse(e.chars().count()));
            group.dedup();
        }
        Endings(groups)
    }

    /// Strips the longest ending that leaves at least [`MIN_STEM`] characters.
    fn strip(&self, word: &mut String) {
        let Some(group) = word.chars().last().and_then(|c| self.0.get(&c)) else {
            return;
        };
        let chars = word.chars().count();
        for ending in group {
            if word.ends_with(ending) && chars - ending.chars().count() >= MIN_STEM {
                let len = word.len() - ending.len();
                word.truncate(len);
                return;
            }
        }
    }
}

impl Default for Stemmer {
    fn default() -> Self {
        Stemmer {
            inflections: Endings::new(INFLECTIONS),
            derivations: Endings::new(DERIVATIONS),
            english: Endings::new(ENGLISH),
        }
    }
}

impl Stemmer {
    /// Stems a folded word (see [`fold_into`]) in place.
    pub fn stem_in_place(&self, word: &mut String) {
        if word.chars().any(is_cyrillic) {
            self.inflections.strip(word);
            self.derivations.strip(word);
        } else if word.is_ascii() {
            if let Some(base) = word.strip_suffix("'s") {
                let len = base.len();
                word.truncate(len);
            }
            self.english.strip(word);
        }
    }

    /// The normalised form of one word: folded, then stemmed.
    pub fn normalize(&self, word: &str) -> String {
        let mut out = String::with_capacity(word.len());
        fold_into(word, &mut out);
        self.stem_in_place(&mut out);
        out
    }
}

/// Whether a normalised word is written laughter: "хахаха", "ахах", "hahaha", "хехе" (any
/// length from four letters, of those letters only, with at least two х/h).
pub fn is_laughter(word: &str) -> bool {
    let (mut letters, mut h) = (0, 0);
    for c in word.chars() {
        match c {
            'х' | 'h' => h += 1,
            'а' | 'е' | 'a' | 'e' => {}
            // "ха-ха-ха"
            '-' => continue,
            _ => return false,
        }
        letters += 1;
    }
    letters >= 4 && h >= 2
}

#[cfg(test)]
mod tests {
    use super::*;

    fn normalize(word: &str) -> String {
        Stemmer::default().normalize(word)
    }

    #[test]
    fn ukrainian_word_forms_meet_at_one_stem() {
        let forms = ["радий", "радію", "радісно", "Радість", "рада"];
        let stems: Vec<String> = forms.iter().map(|w| normalize(w)).collect();
        assert!(stems.iter().all(|s| s == "рад"), "{stems:?}");
    }

    #[test]
    fn apostrophes_are_unified() {
        assert_eq!(normalize("м’ясо"), normalize("м'ясо"));
        assert_eq!(normalize("мʼясо"), normalize("м'ясо"));
        assert_eq!(normalize("м`ясо"), normalize("м'ясо"));
    }

    #[test]
    fn short_words_stay_whole_and_english_is_stemmed_lightly() {
        assert_eq!(normalize("не"), "не");
        assert_eq!(normalize("Loving"), "lov");
        assert_eq!(normalize("loved"), "lov");
        assert_eq!(normalize("cat's"), "cat");
        assert_eq!(normalize("дом"), "дом");
    }

    #[test]
    fn laughter_is_recognised() {
        assert!(is_laughter("хахаха") && is_laughter("ахах") && is_laughter("hahaha"));
        assert!(is_laughter("ха-ха-ха") && !is_laughter("ха-"));
        assert!(!is_laughter("хата") && !is_laughter("ha") && !is_laughter("ahead"));
    }
}
