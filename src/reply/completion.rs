//! [`Completion`]: one request to a language model, whatever it is for: a chat reply (rendered
//! from a [`Prompt`](super::Prompt)), a catch-up summary or an answer from history.

/// What a language model is asked: its instructions, the text it works on, and how much it may
/// write.
#[derive(Clone, Debug, PartialEq)]
pub struct Completion {
    /// The system instruction (Gemini's `systemInstruction`, OpenAI's `system` message).
    pub system: String,
    /// The user turn: the transcript or the numbered messages to work on.
    pub content: String,
    /// Tokens the answer may take.
    pub max_tokens: u32,
    /// Higher for chat talk (variety), lower for summaries and answers (faithfulness).
    pub temperature: f64,
}
