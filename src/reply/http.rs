//! The HTTP side shared by the language-model engines: one client, one way to post a request and
//! turn every failure into an [`EngineError`] that carries no key.

use super::config::Secret;
use super::engine::EngineError;
use reqwest::header::HeaderValue;
use std::time::Duration;

/// Characters of an error response kept in [`EngineError::Status`]: enough for the API's message,
/// not a whole HTML error page.
const ERROR_BODY_CHARS: usize = 300;

/// The client every engine shares (one connection pool, rustls), with the request timeout.
pub(crate) fn client(timeout: Duration) -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .user_agent(concat!("chatkeeper/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| anyhow::anyhow!("cannot set up the HTTP client for the language model: {e}"))
}

/// A header carrying a credential, marked sensitive so that reqwest and hyper never print it.
/// Checked once at start-up: a key with a pasted quote or line break cannot be sent at all.
pub(crate) fn secret_header(value: &str, setting: &str) -> anyhow::Result<HeaderValue> {
    let mut header = HeaderValue::from_str(value).map_err(|_| {
        anyhow::anyhow!(
            "{setting} contains characters that cannot be sent in an HTTP header: check it for \
             quotes, spaces or line breaks pasted with the key"
        )
    })?;
    header.set_sensitive(true);
    Ok(header)
}

/// Sends `request` and returns its JSON answer. `key` is the credential the request carries: it is
/// masked in anything a server sends back, in case the server echoes it.
pub(crate) async fn post_json(
    request: reqwest::RequestBuilder,
    key: &Secret,
) -> Result<serde_json::Value, EngineError> {
    let response = request.send().await.map_err(transport_error)?;
    let status = response.status();
    let bytes = response.bytes().await.map_err(transport_error)?;
    if !status.is_success() {
        let body = key.redact(&String::from_utf8_lossy(&bytes));
        return Err(EngineError::Status {
            status: status.as_u16(),
            body: super::prompt::one_line(&body, ERROR_BODY_CHARS),
        });
    }
    serde_json::from_slice(&bytes).map_err(|e| {
        EngineError::BadResponse(format!(
            "the answer is not JSON ({e}); is base_url the API root?"
        ))
    })
}

/// A failed send or read, without the URL (it may hold a proxy's credentials) but with the causes,
/// which say what actually went wrong (DNS, refused connection, TLS).
fn transport_error(error: reqwest::Error) -> EngineError {
    if error.is_timeout() {
        return EngineError::Timeout;
    }
    let error = error.without_url();
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    EngineError::Network(text)
}
