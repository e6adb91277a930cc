//! Fake language-model APIs on loopback: Gemini `generateContent` and OpenAI `chat/completions`,
//! answering a canned text, with switches for delays and failures, and a record of every request
//! so that tests can check what was sent (and that no key leaked into a URL or body).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// One request as the fake saw it.
#[derive(Clone, Debug)]
pub struct Recorded {
    /// The request target, to check that no key went into the URL.
    pub path_and_query: String,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    /// The JSON body (`Value::Null` if it was not JSON).
    pub body: Value,
}

impl Recorded {
    /// The value of header `name` (lower case), if sent.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Which API the fake speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flavour {
    /// `POST /v1beta/models/{model}:generateContent`.
    Gemini,
    /// `POST /v1/chat/completions`.
    OpenAi,
}

/// A running fake API. Clones share the server and its state; the server stops with the test's
/// runtime.
#[derive(Clone)]
pub struct FakeLlm {
    state: Arc<Shared>,
    addr: std::net::SocketAddr,
}

/// What the server task and the test's handle share.
struct Shared {
    flavour: Flavour,
    control: Mutex<Control>,
}

/// What tests switch and read; locked only briefly, never across an await.
struct Control {
    answer: String,
    delay: Duration,
    /// `(status, how many more requests fail)`.
    failures: Option<(u16, usize)>,
    requests: Vec<Recorded>,
}

impl FakeLlm {
    /// A fake Gemini API: `POST /v1beta/models/{model}:generateContent`.
    pub async fn gemini() -> FakeLlm {
        Self::start(Flavour::Gemini).await
    }

    /// A fake OpenAI-compatible API: `POST /v1/chat/completions`.
    pub async fn openai() -> FakeLlm {
        Self::start(Flavour::OpenAi).await
    }

    async fn start(flavour: Flavour) -> FakeLlm {
        let state = Arc::new(Shared {
            flavour,
            control: Mutex::new(Control {
                answer: "Fake answer".into(),
                delay: Duration::ZERO,
                failures: None,
                requests: Vec::new(),
            }),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake LLM on loopback");
        let addr = listener.local_addr().expect("fake LLM address");
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(state.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeLlm { state, addr }
    }

    /// The value for `base_url`: the host root for Gemini, `…/v1` for OpenAI.
    pub fn base_url(&self) -> String {
        match self.state.flavour {
            Flavour::Gemini => format!("http://{}", self.addr),
            Flavour::OpenAi => format!("http://{}/v1", self.addr),
        }
    }

    /// The text the next answers carry.
    pub fn set_answer(&self, text: &str) {
        self.control().answer = text.to_owned();
    }

    /// How long the fake waits before answering (to trigger timeouts).
    pub fn set_delay(&self, delay: Duration) {
        self.control().delay = delay;
    }

    /// The next `times` requests fail with HTTP `status`. The error body quotes the key the
    /// request carried, as a careless proxy might, so tests can check that it is masked.
    pub fn fail_next(&self, status: u16, times: usize) {
        self.control().failures = Some((status, times));
    }

    /// Every request so far, oldest first.
    pub fn requests(&self) -> Vec<Recorded> {
        self.control().requests.clone()
    }

    fn control(&self) -> MutexGuard<'_, Control> {
        self.state.control.lock().expect("fake LLM state")
    }
}

/// Records the request, waits the configured delay, then answers: 404 off the API's route, the
/// queued failure if any, else the canned answer in the API's shape.
async fn handle(
    State(state): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let recorded = Recorded {
        path_and_query: uri
            .path_and_query()
            .map_or_else(|| uri.path().to_owned(), |p| p.as_str().to_owned()),
        headers: headers
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    };
    let (answer, delay, failure) = {
        let mut control = state.control.lock().expect("fake LLM state");
        control.requests.push(recorded);
        let failure = match &mut control.failures {
            Some((status, left)) if *left > 0 => {
                *left -= 1;
                Some(*status)
            }
            _ => None,
        };
        (control.answer.clone(), control.delay, failure)
    };
    tokio::time::sleep(delay).await;

    let path = uri.path();
    let known = method == Method::POST
        && match state.flavour {
            Flavour::Gemini => {
                path.starts_with("/v1beta/models/") && path.ends_with(":generateContent")
            }
            Flavour::OpenAi => path == "/v1/chat/completions",
        };
    if !known {
        return error(404, &format!("no route for {method} {path}"));
    }
    if let Some(status) = failure {
        let key = headers
            .get("x-goog-api-key")
            .or_else(|| headers.get("authorization"))
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .unwrap_or_default();
        return error(status, &format!("fake failure; request carried {key}"));
    }
    let body = match state.flavour {
        Flavour::Gemini => json!({
            "candidates": [{
                "content": { "role": "model", "parts": [{ "text": answer }] },
                "finishReason": "STOP",
                "index": 0
            }],
            "usageMetadata": { "promptTokenCount": 10, "candidatesTokenCount": 5 }
        }),
        Flavour::OpenAi => json!({
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "choices": [{
                "index": 0,
                "message": { "role": "assistant", "content": answer },
                "finish_reason": "stop"
            }]
        }),
    };
    Json(body).into_response()
}

/// An error in the shape both APIs use: `{"error": {"code", "message"}}`.
fn error(status: u16, message: &str) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        code,
        Json(json!({ "error": { "code": status, "message": message } })),
    )
        .into_response()
}
