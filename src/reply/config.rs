//! The `[llm]` table of the configuration file: which engine writes replies and how to reach it.
//!
//! Every field has a default, so an empty (or missing) table gives the offline engine, which needs
//! no key and no network.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Environment variable read for the Gemini key when `llm.gemini.api_key` is empty, so that the key
/// can stay out of the configuration file.
pub const GEMINI_KEY_ENV: &str = "CHATKEEPER_GEMINI_API_KEY";
/// Environment variable read for the OpenAI-compatible key when `llm.openai.api_key` is empty.
pub const OPENAI_KEY_ENV: &str = "CHATKEEPER_OPENAI_API_KEY";

/// How the bot writes its replies (the `[llm]` table).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LlmConfig {
    /// Which engine answers first: `"offline"` (default: a Markov chain trained on the chat's own
    /// history, no key, no network), `"gemini"` (Google Gemini API) or `"openai"` (OpenAI or any
    /// compatible server: llama.cpp, Ollama, vLLM, OpenRouter). Whatever is chosen, the offline
    /// engine answers when the primary one fails or is too slow.
    pub engine: EngineKind,
    /// Seconds to wait for the primary engine before answering with the offline one (at least 1).
    pub timeout_secs: u64,
    /// Settings used when `engine = "gemini"`.
    pub gemini: GeminiConfig,
    /// Settings used when `engine = "openai"`.
    pub openai: OpenAiConfig,
    /// Settings of the offline engine (always on, as the fallback).
    pub offline: OfflineConfig,
}

impl Default for LlmConfig {
    fn default() -> Self {
        LlmConfig {
            engine: EngineKind::default(),
            timeout_secs: 20,
            gemini: GeminiConfig::default(),
            openai: OpenAiConfig::default(),
            offline: OfflineConfig::default(),
        }
    }
}

/// The engine that answers first.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    /// The Markov chain of the chat's own history: works without a key or network.
    #[default]
    Offline,
    /// Google Gemini (`generateContent`).
    Gemini,
    /// OpenAI `chat/completions`, or a compatible local server.
    #[serde(rename = "openai")]
    OpenAi,
}

/// How to reach Google Gemini (`[llm.gemini]`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GeminiConfig {
    /// API root, without the `/v1beta` part. Change only for a proxy or a test server.
    pub base_url: String,
    /// Model name as in the API, e.g. `gemini-2.0-flash` or `gemini-2.5-flash`.
    pub model: String,
    /// API key from Google AI Studio. Leave empty here and set the environment variable
    /// `CHATKEEPER_GEMINI_API_KEY` to keep it out of the file. Sent only in the
    /// `x-goog-api-key` header, never logged.
    pub api_key: Secret,
}

impl Default for GeminiConfig {
    fn default() -> Self {
        GeminiConfig {
            base_url: "https://generativelanguage.googleapis.com".into(),
            model: "gemini-2.0-flash".into(),
            api_key: Secret::default(),
        }
    }
}

/// How to reach an OpenAI-compatible server (`[llm.openai]`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OpenAiConfig {
    /// API root including the version, e.g. `https://api.openai.com/v1`, or
    /// `http://127.0.0.1:8080/v1` for llama.cpp and `http://127.0.0.1:11434/v1` for Ollama.
    pub base_url: String,
    /// Model name as the server knows it.
    pub model: String,
    /// Bearer token; may stay empty for local servers that need none. Can come from the
    /// environment variable `CHATKEEPER_OPENAI_API_KEY` instead. Never logged.
    pub api_key: Secret,
}

impl Default for OpenAiConfig {
    fn default() -> Self {
        OpenAiConfig {
            base_url: "https://api.openai.com/v1".into(),
            model: "gpt-4o-mini".into(),
            api_key: Secret::default(),
        }
    }
}

/// The offline Markov engine (`[llm.offline]`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OfflineConfig {
    /// Chats whose trained model stays in memory; the least recently used beyond this are dropped
    /// and retrained on demand.
    pub max_chats: usize,
    /// Memory the models in memory may take together, in MiB (a model of 1,000 long messages
    /// takes about 1 MiB, of 1,000 short ones half that); least recently used ones beyond it are
    /// dropped, the newest is always kept (0 keeps only that one). In chats of long messages
    /// this, not `max_chats`, is the limit that binds.
    pub max_memory_mb: u64,
    /// How many of a chat's latest messages a model learns from.
    pub history: usize,
    /// New messages in a chat after which its model is retrained.
    pub rebuild_after: u64,
}

impl Default for OfflineConfig {
    fn default() -> Self {
        OfflineConfig {
            max_chats: 16,
            max_memory_mb: 8,
            history: 1000,
            rebuild_after: 200,
        }
    }
}

/// A credential: readable only through [`Secret::expose`], so that printing a configuration
/// (`{:?}`, logs, error reports) never shows it.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a credential.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The credential itself, for the one place that sends it (a request header). Surrounding
    /// whitespace (a pasted newline) is dropped: it would make the header invalid.
    pub fn expose(&self) -> &str {
        self.0.trim()
    }

    /// Whether no credential is set (engines that need one refuse to start).
    pub fn is_empty(&self) -> bool {
        self.expose().is_empty()
    }

    /// This secret, or the value of the environment variable `var` when this one is empty.
    pub(crate) fn or_env(&self, var: &str) -> Secret {
        if !self.is_empty() {
            return self.clone();
        }
        std::env::var(var).map(Secret).unwrap_or_default()
    }

    /// `text` with every occurrence of the secret masked, for text that a server may have echoed.
    pub(crate) fn redact(&self, text: &str) -> String {
        if self.is_empty() {
            text.to_owned()
        } else {
            text.replace(self.expose(), "***")
        }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            f.write_str("Secret(<empty>)")
        } else {
            f.write_str("Secret(***)")
        }
    }
}
