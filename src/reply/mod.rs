//! Writing the bot's messages: a language model when one is configured (Gemini or any
//! OpenAI-compatible server), and always the offline Markov engine, which answers whenever the
//! model fails or is too slow, so that the bot never depends on a remote service to talk.
//!
//! [`Responder`] is what the bot holds; [`Prompt`] is what it asks with.

mod completion;
mod config;
mod engine;
pub mod gemini;
mod http;
pub mod markov;
pub mod openai;
mod prompt;
mod responder;

pub use completion::Completion;
pub use config::{
    EngineKind, GeminiConfig, LlmConfig, OfflineConfig, OpenAiConfig, Secret, GEMINI_KEY_ENV,
    OPENAI_KEY_ENV,
};
pub use engine::{EngineError, LanguageModel, ReplyEngine};
pub use gemini::GeminiEngine;
pub use markov::MarkovEngine;
pub use openai::OpenAiEngine;
pub(crate) use prompt::{line, one_line};
pub use prompt::{Language, Prompt, Tone, CONTEXT_MESSAGES, MESSAGE_CHARS};
pub use responder::{Reply, Responder};
