//! OpenAI `chat/completions`, which OpenAI itself and most self-hosted servers (llama.cpp, Ollama,
//! vLLM) and gateways (OpenRouter) speak.

use super::completion::Completion;
use super::config::{OpenAiConfig, Secret};
use super::engine::{EngineError, LanguageModel, ReplyEngine};
use super::http;
use super::prompt::Prompt;
use futures::future::BoxFuture;
use reqwest::header::{HeaderValue, AUTHORIZATION};
use serde_json::{json, Value};

/// Writes replies with an OpenAI-compatible server. The key, when set, travels only in the
/// `Authorization: Bearer` header.
pub struct OpenAiEngine {
    client: reqwest::Client,
    url: String,
    model: String,
    /// `None` for local servers that take no key.
    auth: Option<HeaderValue>,
    key: Secret,
}

impl OpenAiEngine {
    /// An engine for `config`, sending through the shared `client`. An empty key is allowed: local
    /// servers usually need none.
    pub fn new(config: &OpenAiConfig, client: reqwest::Client) -> anyhow::Result<Self> {
        let model = config.model.trim();
        if model.is_empty() {
            anyhow::bail!(
                "llm.openai.model is empty: set it to the model name the server knows (e.g. \
                 gpt-4o-mini, or the name `ollama list` shows)"
            );
        }
        let auth = if config.api_key.is_empty() {
            None
        } else {
            Some(http::secret_header(
                &format!("Bearer {}", config.api_key.expose()),
                "llm.openai.api_key",
            )?)
        };
        Ok(OpenAiEngine {
            client,
            url: format!(
                "{}/chat/completions",
                config.base_url.trim().trim_end_matches('/')
            ),
            model: model.to_owned(),
            auth,
            key: config.api_key.clone(),
        })
    }

    async fn generate(&self, request: &Completion) -> Result<String, EngineError> {
        let body = json!({
            "model": self.model,
            "messages": [
                { "role": "system", "content": request.system },
                { "role": "user", "content": request.content },
            ],
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
        });
        let mut request = self.client.post(&self.url).json(&body);
        if let Some(auth) = &self.auth {
            request = request.header(AUTHORIZATION, auth.clone());
        }
        answer_text(&http::post_json(request, &self.key).await?)
    }
}

impl ReplyEngine for OpenAiEngine {
    fn name(&self) -> &'static str {
        "openai"
    }

    fn reply<'a>(&'a self, prompt: &'a Prompt) -> BoxFuture<'a, Result<String, EngineError>> {
        Box::pin(async move { self.generate(&prompt.completion()).await })
    }
}

impl LanguageModel for OpenAiEngine {
    fn complete<'a>(
        &'a self,
        request: &'a Completion,
    ) -> BoxFuture<'a, Result<String, EngineError>> {
        Box::pin(self.generate(request))
    }
}

/// `choices[0].message.content`; a refusal or an empty choice list is a bad response, with the
/// finish reason when the server gives one.
fn answer_text(answer: &Value) -> Result<String, EngineError> {
    let choice = answer
        .pointer("/choices/0")
        .ok_or_else(|| EngineError::BadResponse("the answer has no choices".into()))?;
    match choice.pointer("/message/content").and_then(Value::as_str) {
        Some(text) if !text.trim().is_empty() => Ok(text.to_owned()),
        _ => {
            let reason = choice
                .get("finish_reason")
                .and_then(Value::as_str)
                .unwrap_or("unknown");
            Err(EngineError::BadResponse(format!(
                "the answer has no text (finish_reason {reason})"
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_first_choice_and_rejects_empty_ones() {
        let answer = json!({"choices": [{"message": {"role": "assistant", "content": "Ага"}}]});
        assert_eq!(answer_text(&answer).unwrap(), "Ага");
        let refused =
            json!({"choices": [{"message": {"content": null}, "finish_reason": "content_filter"}]});
        let err = answer_text(&refused).unwrap_err().to_string();
        assert!(err.contains("content_filter"), "{err}");
        assert!(answer_text(&json!({"choices": []})).is_err());
    }
}
