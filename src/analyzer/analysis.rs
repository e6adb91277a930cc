//! What an analysis finds in a text: its language, emotion, topic and register, and the
//! analysis itself.

use serde::{Deserialize, Serialize};

/// Sentiment beyond this is positive or negative.
const POLARITY_THRESHOLD: f32 = 0.1;

/// The language of a text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Language {
    Ukrainian,
    Russian,
    English,
    Other,
}

impl Language {
    /// The short code used in labels and JSON.
    pub fn code(self) -> &'static str {
        match self {
            Language::Ukrainian => "uk",
            Language::Russian => "ru",
            Language::English => "en",
            Language::Other => "other",
        }
    }

    /// The English name, for instructions to language models.
    pub fn english_name(self) -> &'static str {
        match self {
            Language::Ukrainian => "Ukrainian",
            Language::Russian => "Russian",
            Language::English => "English",
            Language::Other => "another language",
        }
    }
}

/// The dominant emotion of a text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Emotion {
    Joy,
    Sadness,
    Anger,
    Fear,
    Surprise,
    Disgust,
    Neutral,
}

impl Emotion {
    /// The emotions the lexicon scores (all but neutral), in flag order.
    pub const SCORED: [Emotion; 6] = [
        Emotion::Joy,
        Emotion::Sadness,
        Emotion::Anger,
        Emotion::Fear,
        Emotion::Surprise,
        Emotion::Disgust,
    ];

    /// The lower-case name used by lexicon files and labels.
    pub fn name(self) -> &'static str {
        match self {
            Emotion::Joy => "joy",
            Emotion::Sadness => "sadness",
            Emotion::Anger => "anger",
            Emotion::Fear => "fear",
            Emotion::Surprise => "surprise",
            Emotion::Disgust => "disgust",
            Emotion::Neutral => "neutral",
        }
    }

    /// The polarity an emotion word lends a text (surprise lends none).
    pub(super) fn polarity(self) -> f32 {
        match self {
            Emotion::Joy => 1.0,
            Emotion::Surprise | Emotion::Neutral => 0.0,
            _ => -1.0,
        }
    }
}

/// Everyday topics of group chats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Topic {
    Tech,
    WorkStudy,
    DailyLife,
    Entertainment,
    WeatherNature,
    Relationships,
    PoliticsNews,
    Food,
    HealthSport,
    Travel,
}

impl Topic {
    /// Every topic, in flag order.
    pub const ALL: [Topic; 10] = [
        Topic::Tech,
        Topic::WorkStudy,
        Topic::DailyLife,
        Topic::Entertainment,
        Topic::WeatherNature,
        Topic::Relationships,
        Topic::PoliticsNews,
        Topic::Food,
        Topic::HealthSport,
        Topic::Travel,
    ];

    /// The name used by lexicon files (`topic_<name>.txt`).
    pub fn name(self) -> &'static str {
        match self {
            Topic::Tech => "tech",
            Topic::WorkStudy => "work_study",
            Topic::DailyLife => "daily_life",
            Topic::Entertainment => "entertainment",
            Topic::WeatherNature => "weather_nature",
            Topic::Relationships => "relationships",
            Topic::PoliticsNews => "politics_news",
            Topic::Food => "food",
            Topic::HealthSport => "health_sport",
            Topic::Travel => "travel",
        }
    }

    /// The English words for it, for instructions to language models.
    pub fn label(self) -> &'static str {
        match self {
            Topic::Tech => "technology",
            Topic::WorkStudy => "work and study",
            Topic::DailyLife => "daily life",
            Topic::Entertainment => "entertainment",
            Topic::WeatherNature => "weather and nature",
            Topic::Relationships => "relationships",
            Topic::PoliticsNews => "politics and news",
            Topic::Food => "food",
            Topic::HealthSport => "health and sport",
            Topic::Travel => "travel",
        }
    }
}

/// How a text is written: the register a person keeps tells the bot how to talk back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Style {
    /// Polite forms, official words, full sentences.
    Formal,
    /// Warm words, thanks, kind emoji.
    Friendly,
    /// Slang, chat shorthand, `))`.
    Casual,
}

impl Style {
    /// Every style, in the order profiles count them.
    pub const ALL: [Style; 3] = [Style::Formal, Style::Friendly, Style::Casual];

    /// The lower-case name used in labels and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Style::Formal => "formal",
            Style::Friendly => "friendly",
            Style::Casual => "casual",
        }
    }
}

/// The analysis of one text.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Analysis {
    pub language: Language,
    pub emotion: Emotion,
    /// How sure the emotion is, 0–1 (0 for neutral texts without signals).
    pub confidence: f32,
    /// -1 (negative) … 1 (positive).
    pub sentiment: f32,
    pub topic: Option<Topic>,
    /// Up to five content words (stop-words removed), in order of appearance, lower case.
    pub keywords: Vec<String>,
    pub emoji: u32,
    pub words: u32,
    /// The register the text is written in, when it shows one.
    pub style: Option<Style>,
    /// Whether the text laughs or jokes ("хахаха", "lol", 😂).
    pub humour: bool,
}

impl Analysis {
    /// `positive`, `negative` or `neutral`.
    pub fn polarity(&self) -> &'static str {
        if self.sentiment > POLARITY_THRESHOLD {
            "positive"
        } else if self.sentiment < -POLARITY_THRESHOLD {
            "negative"
        } else {
            "neutral"
        }
    }
}
