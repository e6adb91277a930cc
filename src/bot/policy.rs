//! When and how the bot speaks, given the chat's mood: it answers whoever addresses it, but does
//! not chime in on its own (or react) in a tense thread, is more talkative where people are
//! lively, and sounds calm or playful to match.

use crate::analyzer::trends::Summary;
use crate::analyzer::Emotion;
use crate::reply::Tone;

/// How far back the mood looks: the current and the previous hour of the chat's trends.
pub const MOOD_WINDOW_SECS: i64 = 3600;

/// A chat's recent mood and engagement.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Mood {
    pub messages: u32,
    pub active_users: usize,
    pub mean_sentiment: f64,
    /// Share of messages carrying anger or disgust.
    pub hostile_share: f64,
}

impl Mood {
    /// The mood of a chat's recent summary.
    pub fn of(summary: &Summary) -> Mood {
        let hostile = [Emotion::Anger, Emotion::Disgust]
            .iter()
            .filter_map(|e| Emotion::SCORED.iter().position(|s| s == e))
            .map(|i| summary.emotions[i])
            .sum::<u32>();
        Mood {
            messages: summary.messages,
            active_users: summary.active_users,
            mean_sentiment: summary.mean_sentiment,
            hostile_share: f64::from(hostile) / f64::from(summary.messages.max(1)),
        }
    }

    /// An angry or bitter thread: a few messages at least, and a third of them hostile or the
    /// mood clearly negative.
    pub fn tense(&self) -> bool {
        self.messages >= 3 && (self.hostile_share >= 0.3 || self.mean_sentiment <= -0.25)
    }

    /// Several people talking a lot.
    pub fn lively(&self) -> bool {
        self.messages >= 20 && self.active_users >= 3
    }

    /// How to sound here.
    pub fn tone(&self) -> Tone {
        if self.tense() {
            Tone::Calm
        } else if self.lively() && self.mean_sentiment > 0.1 {
            Tone::Playful
        } else {
            Tone::Neutral
        }
    }

    /// The chance of an unprompted reply, from the configured one: none in a tense thread
    /// (nobody asked for jokes there), half again as much in a lively chat, at most 1.
    pub fn reply_chance(&self, configured: f64) -> f64 {
        if self.tense() {
            0.0
        } else if self.lively() {
            (configured * 1.5).min(1.0)
        } else {
            configured
        }
    }

    /// Whether an emoji reaction fits (not into a tense thread).
    pub fn reactions_fit(&self) -> bool {
        !self.tense()
    }

    /// How much a chat deserves a spontaneous post: busy chats and chats whose mood turned
    /// negative (where a calm word may help) come first.
    pub fn spontaneous_priority(&self) -> f64 {
        let tense_bonus = if self.tense() { 50.0 } else { 0.0 };
        f64::from(self.messages) + tense_bonus
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mood(messages: u32, users: usize, sentiment: f64, emotions: [u32; 7]) -> Mood {
        Mood::of(&Summary {
            messages,
            active_users: users,
            emotions,
            dominant_emotion: Emotion::Neutral,
            top_topics: Vec::new(),
            mean_sentiment: sentiment,
            per_hour: Vec::new(),
        })
    }

    #[test]
    fn an_angry_thread_gets_no_jokes_and_no_unprompted_words() {
        // Ten messages, four angry, one disgusted.
        let angry = mood(10, 3, -0.2, [1, 0, 4, 0, 0, 1, 4]);
        assert!(angry.tense());
        assert_eq!(angry.tone(), Tone::Calm);
        assert_eq!(angry.reply_chance(0.5), 0.0);
        assert!(!angry.reactions_fit());
        let bitter = mood(5, 2, -0.4, [0, 2, 0, 0, 0, 0, 3]);
        assert!(bitter.tense());
    }

    #[test]
    fn a_lively_happy_chat_gets_more_and_lighter_words() {
        let lively = mood(40, 5, 0.3, [12, 0, 1, 0, 2, 0, 25]);
        assert!(!lively.tense() && lively.lively());
        assert_eq!(lively.tone(), Tone::Playful);
        assert_eq!(lively.reply_chance(0.1), 0.15000000000000002);
        assert_eq!(lively.reply_chance(0.9), 1.0);
        let quiet = mood(2, 1, -0.9, [0, 0, 2, 0, 0, 0, 0]);
        assert!(!quiet.tense(), "two messages are not a thread");
        assert_eq!(quiet.tone(), Tone::Neutral);
        assert_eq!(quiet.reply_chance(0.1), 0.1);
    }

    #[test]
    fn spontaneous_posts_prefer_busy_or_soured_chats() {
        let busy = mood(30, 4, 0.1, [3, 0, 0, 0, 0, 0, 27]);
        let soured = mood(6, 2, -0.5, [0, 1, 3, 0, 0, 0, 2]);
        let calm = mood(6, 2, 0.1, [1, 0, 0, 0, 0, 0, 5]);
        assert!(busy.spontaneous_priority() > calm.spontaneous_priority());
        assert!(soured.spontaneous_priority() > busy.spontaneous_priority());
    }
}
