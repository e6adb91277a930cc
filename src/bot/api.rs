//! Calling the Bot API: retries with backoff, failures counted by kind, and the admins told when
//! errors pile up.

use super::ctx::Ctx;
use crate::texts;
use std::time::{Duration, Instant};
use teloxide::prelude::*;
use teloxide::requests::{Output, Request};
use teloxide::{ApiError, RequestError};

impl Ctx {
    /// Sends a request, retrying network errors, malformed answers and server errors with
    /// backoff and honouring `RetryAfter`; counts every failure in the metrics.
    pub async fn call<R>(&self, request: R) -> Result<Output<R>, RequestError>
    where
        R: Request<Err = RequestError>,
    {
        let mut backoff = Duration::from_millis(250);
        let mut attempt = 0;
        loop {
            attempt += 1;
            match request.send_ref().await {
                Ok(output) => return Ok(output),
                Err(e) => {
                    let kind = error_kind(&e);
                    self.metrics.api_error(kind);
                    let wait = match &e {
                        RequestError::RetryAfter(after) => after.duration(),
                        _ if retryable(&e) => backoff,
                        _ => return Err(e),
                    };
                    if attempt >= 5 || *self.shutdown.borrow() {
                        self.note_error(format!("{kind}: {e}"));
                        return Err(e);
                    }
                    tracing::warn!(error = %e, attempt, "Bot API call failed; retrying");
                    tokio::time::sleep(wait).await;
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
            }
        }
    }

    /// Remembers an error; when errors pile up, tells the admins (at most once per half hour).
    pub fn note_error(&self, what: String) {
        tracing::error!(error = %what, "bot error");
        if let Some((errors, minutes, last)) = self.alerts.record(what, Instant::now()) {
            let ctx = self.clone();
            let text = texts::alert(errors, minutes, &last);
            tokio::spawn(async move {
                for &admin in &ctx.config.admins {
                    let text = text.clone();
                    // Not `call`: an alert about failing calls must not retry into more alerts.
                    let _ = ctx.bot.send_message(ChatId(admin), text).await;
                }
            });
        }
    }
}

/// The metrics label of a failed call.
pub fn error_kind(e: &RequestError) -> &'static str {
    match e {
        RequestError::RetryAfter(_) => "retry_after",
        RequestError::Network(_) => "network",
        RequestError::InvalidJson { .. } => "invalid_json",
        RequestError::Io(_) => "io",
        RequestError::MigrateToChatId(_) => "migrated",
        RequestError::Api(ApiError::Unknown(_)) => "server",
        RequestError::Api(_) => "api",
    }
}

/// Errors worth retrying: the request may well succeed a moment later.
fn retryable(e: &RequestError) -> bool {
    match e {
        RequestError::Network(_) | RequestError::InvalidJson { .. } | RequestError::Io(_) => true,
        RequestError::Api(ApiError::Unknown(text)) => {
            let text = text.to_ascii_lowercase();
            [
                "internal server error",
                "bad gateway",
                "gateway",
                "unavailable",
                "timeout",
            ]
            .iter()
            .any(|s| text.contains(s))
        }
        _ => false,
    }
}
