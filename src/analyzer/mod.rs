//! In-process text analysis of chat messages: language (Ukrainian, Russian, English, other),
//! emotion with a confidence, sentiment, topic, keywords and emoji — cheap enough to run on
//! every message (one pass over the text, one map lookup per word).
//!
//! The word lists live in `data/lexicon/` ([`lexicon`]); word forms are normalised
//! ([`normalize`]) so that inflected Ukrainian and Russian forms meet.

mod analysis;
pub mod cache;
mod engine;
pub mod keywords;
pub mod lexicon;
pub mod normalize;
pub mod profile;
pub mod trends;

pub use analysis::{Analysis, Emotion, Language, Style, Topic};
pub use engine::Analyzer;
