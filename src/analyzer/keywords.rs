//! Keywords of a chat by TF-IDF against the chat's own history (`/words`): words frequent in
//! the recent messages but not everyday in this chat, so a chat that always talks about coffee
//! does not get "coffee" as news.

use super::analysis::Analysis;
use std::collections::{HashMap, HashSet};

/// The `k` best keywords of `recent` (the analyses of the latest messages) weighed against
/// `history` (the analyses of the chat's longer past, each message one document), with how often
/// each occurred recently. Terms are the analyzer's keywords (stop-words already removed).
pub fn tf_idf(recent: &[&Analysis], history: &[&Analysis], k: usize) -> Vec<(String, u32)> {
    let mut document_frequency: HashMap<&str, u32> = HashMap::new();
    for analysis in history {
        let distinct: HashSet<&str> = analysis.keywords.iter().map(String::as_str).collect();
        for word in distinct {
            *document_frequency.entry(word).or_default() += 1;
        }
    }
    let mut term_frequency: HashMap<&str, u32> = HashMap::new();
    for analysis in recent {
        for word in &analysis.keywords {
            *term_frequency.entry(word.as_str()).or_default() += 1;
        }
    }
    let documents = history.len().max(1) as f64;
    let df = |word: &str| f64::from(document_frequency.get(word).copied().unwrap_or(0));
    let mut scored: Vec<(&str, u32, f64)> = term_frequency
        .into_iter()
        // A word said once is not a topic of the day, and a word in most of the chat's messages
        // is its background, not news.
        .filter(|&(word, n)| n >= 2 && df(word) / documents <= 0.5)
        .map(|(word, n)| {
            (
                word,
                n,
                f64::from(n) * (1.0 + documents / (1.0 + df(word))).ln(),
            )
        })
        .collect();
    scored.sort_by(|a, b| b.2.total_cmp(&a.2).then(a.0.cmp(b.0)));
    scored
        .into_iter()
        .take(k)
        .map(|(word, n, _)| (word.to_string(), n))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyzer::Analyzer;

    #[test]
    fn words_new_to_the_chat_beat_its_everyday_words() {
        let analyzer = Analyzer::default();
        let history: Vec<Analysis> = (0..200)
            .map(|i| analyzer.analyze(&format!("ранкова кава смачна {i}")))
            .collect();
        let recent: Vec<Analysis> = [
            "ранкова кава смачна",
            "ранкова кава смачна",
            "ранкова кава смачна",
            "новий сервер впав",
            "сервер знову впав",
            "хто лагодить сервер",
        ]
        .iter()
        .map(|t| analyzer.analyze(t))
        .collect();
        let history: Vec<&Analysis> = history.iter().collect();
        let recent: Vec<&Analysis> = recent.iter().collect();
        let words = tf_idf(&recent, &history, 3);
        assert_eq!(words[0], ("сервер".to_string(), 3), "{words:?}");
        assert!(words.iter().all(|(w, _)| w != "кава"), "{words:?}");
    }
}
