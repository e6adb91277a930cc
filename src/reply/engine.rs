//! What every reply engine is: the trait the [`Responder`](super::Responder) holds them by, and
//! why an engine has no answer.

use super::completion::Completion;
use super::prompt::Prompt;
use futures::future::BoxFuture;

/// Usable messages the offline engine needs in a chat: below this many, a chain only parrots, and
/// the engine stays silent instead.
pub const MIN_MESSAGES: usize = 20;

/// Something that writes a message for a chat. Object-safe, so the [`Responder`] can hold
/// whichever engine the configuration picks.
pub trait ReplyEngine: Send + Sync {
    /// A short name for logs and metrics (`"gemini"`, `"openai"`, `"offline"`).
    fn name(&self) -> &'static str;

    /// The text to post, without the bot's name in front.
    fn reply<'a>(&'a self, prompt: &'a Prompt) -> BoxFuture<'a, Result<String, EngineError>>;
}

/// A language model: besides chat replies, it does what only a model can (summaries, answers
/// from history) with a [`Completion`] of the caller's making.
pub trait LanguageModel: ReplyEngine {
    /// The model's text for `request`, as it came.
    fn complete<'a>(
        &'a self,
        request: &'a Completion,
    ) -> BoxFuture<'a, Result<String, EngineError>>;
}

/// Why an engine has no answer. None of these carries an API key.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The engine took longer than `llm.timeout_secs`.
    #[error(
        "the language model did not answer in time: raise llm.timeout_secs, pick a faster model, \
         or check that the server at llm base_url is up"
    )]
    Timeout,
    #[error(
        "the language model API answered HTTP {status}: {body}. Check the key (401/403), the \
         model name and base_url (404), and the quota (429)"
    )]
    /// The API refused the request; `body` is the start of its answer, with the key masked.
    Status { status: u16, body: String },
    /// The request did not get through (DNS, refused connection, TLS).
    #[error("cannot reach the language model API ({0}): check llm base_url and the network")]
    Network(String),
    /// The API answered, but not with usable text (blocked, empty, not JSON).
    #[error("the language model sent an answer chatkeeper cannot use: {0}")]
    BadResponse(String),
    /// The offline engine has not enough of the chat's text to imitate: stay silent.
    #[error(
        "the offline engine has too little text of this chat to talk yet (it needs about {} \
         messages from people)",
        MIN_MESSAGES
    )]
    NothingToSay,
    /// The offline engine could not read the chat's history from the store.
    #[error("cannot read the chat's history for the offline engine: {0}")]
    Store(String),
}
