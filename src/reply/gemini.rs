//! Google Gemini through its REST API (`models/{model}:generateContent`).

use super::completion::Completion;
use super::config::{GeminiConfig, Secret};
use super::engine::{EngineError, LanguageModel, ReplyEngine};
use super::http;
use super::prompt::Prompt;
use futures::future::BoxFuture;
use reqwest::header::HeaderValue;
use serde_json::{json, Value};

/// Writes replies with a Gemini model. The key travels only in the `x-goog-api-key` header (not
/// in the URL, where proxies and error messages would show it).
pub struct GeminiEngine {
    client: reqwest::Client,
    url: String,
    /// The key as a sensitive header value, and as text to mask in error bodies.
    key_header: HeaderValue,
    key: Secret,
}

impl GeminiEngine {
    /// An engine for `config`, sending through the shared `client`. Fails when no key is set.
    pub fn new(config: &GeminiConfig, client: reqwest::Client) -> anyhow::Result<Self> {
        if config.api_key.is_empty() {
            anyhow::bail!(
                "llm.engine is \"gemini\" but no API key is set: put it in llm.gemini.api_key in \
                 the configuration file or in the {} environment variable (get one at \
                 https://aistudio.google.com/apikey), or set llm.engine = \"offline\"",
                super::config::GEMINI_KEY_ENV
            );
        }
        let model = config.model.trim().trim_start_matches("models/");
        if model.is_empty() {
            anyhow::bail!("llm.gemini.model is empty: set it to a model such as gemini-2.0-flash");
        }
        Ok(GeminiEngine {
            client,
            url: format!(
                "{}/v1beta/models/{model}:generateContent",
                config.base_url.trim().trim_end_matches('/')
            ),
            key_header: http::secret_header(config.api_key.expose(), "llm.gemini.api_key")?,
            key: config.api_key.clone(),
        })
    }

    async fn generate(&self, request: &Completion) -> Result<String, EngineError> {
        let body = json!({
            "systemInstruction": { "parts": [{ "text": request.system }] },
            "contents": [{ "role": "user", "parts": [{ "text": request.content }] }],
            "generationConfig": {
                "maxOutputTokens": request.max_tokens,
                "temperature": request.temperature,
            },
        });
        let request = self
            .client
            .post(&self.url)
            .header("x-goog-api-key", self.key_header.clone())
            .json(&body);
        answer_text(&http::post_json(request, &self.key).await?)
    }
}

impl ReplyEngine for GeminiEngine {
    fn name(&self) -> &'static str {
        "gemini"
    }

    fn reply<'a>(&'a self, prompt: &'a Prompt) -> BoxFuture<'a, Result<String, EngineError>> {
        Box::pin(async move { self.generate(&prompt.completion()).await })
    }
}

impl LanguageModel for GeminiEngine {
    fn complete<'a>(
        &'a self,
        request: &'a Completion,
    ) -> BoxFuture<'a, Result<String, EngineError>> {
        Box::pin(self.generate(request))
    }
}

/// The text of the first candidate. A blocked prompt has no candidates and says why in
/// `promptFeedback`; a candidate stopped by safety filters has no text and says why in
/// `finishReason`. Parts marked `thought` are a thinking model's reasoning, not the answer.
fn answer_text(answer: &Value) -> Result<String, EngineError> {
    let Some(candidate) = answer.pointer("/candidates/0") else {
        let reason = answer
            .pointer("/promptFeedback/blockReason")
            .and_then(Value::as_str)
            .unwrap_or("no reason given");
        return Err(EngineError::BadResponse(format!(
            "Gemini gave no answer (blocked: {reason})"
        )));
    };
    let text: String = candidate
        .pointer("/content/parts")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|part| part.get("thought").and_then(Value::as_bool) != Some(true))
        .filter_map(|part| part.get("text").and_then(Value::as_str))
        .collect();
    if text.trim().is_empty() {
        let reason = candidate
            .get("finishReason")
            .and_then(Value::as_str)
            .unwrap_or("unknown");
        return Err(EngineError::BadResponse(format!(
            "Gemini's answer has no text (finishReason {reason})"
        )));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_text_parts_and_skips_thoughts() {
        let answer = json!({"candidates": [{"content": {"parts": [
            {"text": "hidden reasoning", "thought": true},
            {"text": "Привіт, "},
            {"text": "як справи?"}
        ]}, "finishReason": "STOP"}]});
        assert_eq!(answer_text(&answer).unwrap(), "Привіт, як справи?");
    }

    #[test]
    fn blocked_and_empty_answers_are_bad_responses_with_the_reason() {
        let blocked = json!({"promptFeedback": {"blockReason": "SAFETY"}});
        let err = answer_text(&blocked).unwrap_err().to_string();
        assert!(err.contains("SAFETY"), "{err}");
        let empty = json!({"candidates": [{"finishReason": "RECITATION"}]});
        let err = answer_text(&empty).unwrap_err().to_string();
        assert!(err.contains("RECITATION"), "{err}");
    }
}
