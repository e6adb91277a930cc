//! [`Responder`]: the configured engine first, the offline engine when it fails.

use super::completion::Completion;
use super::config::{EngineKind, LlmConfig, GEMINI_KEY_ENV, OPENAI_KEY_ENV};
use super::engine::{EngineError, LanguageModel, ReplyEngine};
use super::gemini::GeminiEngine;
use super::http;
use super::markov::MarkovEngine;
use super::openai::OpenAiEngine;
use super::prompt::Prompt;
use crate::store::Store;
use std::sync::Arc;
use std::time::Duration;

/// Telegram's limit on a message's length, in characters: a longer answer could not be sent.
const TELEGRAM_MESSAGE_CHARS: usize = 4096;

/// A message to post, and who wrote it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// What to post, ready to send as it is.
    pub text: String,
    /// The engine that wrote it ([`ReplyEngine::name`]), for logs and metrics.
    pub engine: &'static str,
    /// Whether the configured language model failed and the offline engine answered instead.
    pub fell_back: bool,
}

/// The bot's writer: the configured engine first, the offline engine when it fails. Cheap to
/// clone (shared inside), so every update handler can hold one.
#[derive(Clone)]
pub struct Responder {
    inner: Arc<Inner>,
}

struct Inner {
    /// `None` when the offline engine is the configured one.
    primary: Option<Box<dyn LanguageModel>>,
    offline: MarkovEngine,
    timeout: Duration,
}

impl Responder {
    /// The engines `config` asks for, over the chat histories in `store`. Fails with what to set
    /// when the configuration cannot work (Gemini without a key, a zero timeout). Keys left empty
    /// in the file are taken from [`GEMINI_KEY_ENV`] / [`OPENAI_KEY_ENV`].
    pub fn new(config: &LlmConfig, store: Store) -> anyhow::Result<Responder> {
        if config.timeout_secs == 0 {
            anyhow::bail!(
                "llm.timeout_secs is 0: set it to how many seconds to wait for the language \
                 model (default 20)"
            );
        }
        let timeout = Duration::from_secs(config.timeout_secs);
        let primary: Option<Box<dyn LanguageModel>> = match config.engine {
            EngineKind::Offline => None,
            EngineKind::Gemini => {
                let mut gemini = config.gemini.clone();
                gemini.api_key = gemini.api_key.or_env(GEMINI_KEY_ENV);
                Some(Box::new(GeminiEngine::new(
                    &gemini,
                    http::client(timeout)?,
                )?))
            }
            EngineKind::OpenAi => {
                let mut openai = config.openai.clone();
                openai.api_key = openai.api_key.or_env(OPENAI_KEY_ENV);
                Some(Box::new(OpenAiEngine::new(
                    &openai,
                    http::client(timeout)?,
                )?))
            }
        };
        Ok(Responder {
            inner: Arc::new(Inner {
                primary,
                offline: MarkovEngine::new(store, &config.offline),
                timeout,
            }),
        })
    }

    /// A message for `prompt`: from the configured engine within the timeout, else (with a
    /// warning in the log) from the offline engine. [`EngineError::NothingToSay`] means the
    /// chat is too new for the offline engine: stay silent.
    pub async fn reply(&self, prompt: &Prompt) -> Result<Reply, EngineError> {
        let mut fell_back = false;
        if let Some(primary) = &self.inner.primary {
            let answer = match tokio::time::timeout(self.inner.timeout, primary.reply(prompt)).await
            {
                Ok(answer) => answer.and_then(|text| tidy(&text, &prompt.bot_name)),
                Err(_) => Err(EngineError::Timeout),
            };
            match answer {
                Ok(text) => {
                    return Ok(Reply {
                        text,
                        engine: primary.name(),
                        fell_back: false,
                    })
                }
                Err(error) => {
                    tracing::warn!(
                        engine = primary.name(),
                        chat = prompt.chat_id,
                        %error,
                        "the language model failed; answering with the offline engine"
                    );
                    fell_back = true;
                }
            }
        }
        let text = self.inner.offline.reply(prompt).await?;
        Ok(Reply {
            text,
            engine: self.inner.offline.name(),
            fell_back,
        })
    }

    /// The language model's answer to `request` within the timeout, tidied like a reply;
    /// `None` when no language model is configured (the caller has an offline way). Failures
    /// are logged here and returned, so that the caller falls back to its offline way.
    pub async fn complete(&self, request: &Completion) -> Option<Result<String, EngineError>> {
        let primary = self.inner.primary.as_ref()?;
        let answer = match tokio::time::timeout(self.inner.timeout, primary.complete(request)).await
        {
            Ok(answer) => answer.and_then(|text| tidy(&text, "")),
            Err(_) => Err(EngineError::Timeout),
        };
        if let Err(error) = &answer {
            tracing::warn!(engine = primary.name(), %error, "the language model failed");
        }
        Some(answer)
    }

    /// The offline engine, for maintenance (trimming models, forgetting a chat) and metrics.
    pub fn offline(&self) -> &MarkovEngine {
        &self.inner.offline
    }

    /// Whether a language model answers first (otherwise only the offline engine does).
    pub fn has_language_model(&self) -> bool {
        self.inner.primary.is_some()
    }

    /// The name of the engine that answers first, for the startup log and `/health`.
    pub fn primary_name(&self) -> &'static str {
        self.inner
            .primary
            .as_ref()
            .map_or(self.inner.offline.name(), |p| p.name())
    }
}

/// A model's answer made postable: without a reasoning block (`<think>…</think>` of local
/// reasoning models), without the bot's own name in front (models imitate the transcript's
/// `Name: text`), within Telegram's length limit. Empty after that is a bad response.
fn tidy(text: &str, bot_name: &str) -> Result<String, EngineError> {
    let mut text = text.trim();
    if let Some(rest) = text.strip_prefix("<think>") {
        text = rest
            .split_once("</think>")
            .map_or("", |(_, after)| after)
            .trim();
    }
    let name = bot_name.trim();
    if !name.is_empty() {
        if let Some(rest) = text.strip_prefix(name).and_then(|r| r.strip_prefix(':')) {
            text = rest.trim_start();
        }
    }
    if text.is_empty() {
        return Err(EngineError::BadResponse("the answer is empty".into()));
    }
    Ok(text.chars().take(TELEGRAM_MESSAGE_CHARS).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tidy_drops_reasoning_and_own_name_and_rejects_empty_answers() {
        assert_eq!(
            tidy("<think>hmm</think>\n Привіт!", "Бот").unwrap(),
            "Привіт!"
        );
        assert_eq!(tidy("Бот: так, звісно", "Бот").unwrap(), "так, звісно");
        assert_eq!(tidy("Ботаніка цікава", "Бот").unwrap(), "Ботаніка цікава");
        assert!(tidy("  ", "Бот").is_err());
        assert!(tidy("<think>never closed", "Бот").is_err());
        assert_eq!(
            tidy(&"а".repeat(5000), "Бот").unwrap().chars().count(),
            4096
        );
    }
}
