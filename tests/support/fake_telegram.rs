//! A fake Telegram Bot API server on 127.0.0.1, so end-to-end tests can run the real bot
//! (teloxide pointed at it with `TELOXIDE_API_URL`) without internet access.
//!
//! It answers the methods chatkeeper uses with the shapes teloxide-core 0.13 deserializes, queues
//! updates for `getUpdates` long polling, records every call so tests can assert on what the bot
//! did, and can inject faults (flood control, 5xx, slow or malformed answers) per method.
//!
//! What it deliberately does like the real Bot API (so bugs show up in tests, not in production):
//! `sendMessage` refuses empty texts and texts longer than 4096 UTF-16 code units,
//! `editMessageText` refuses unknown messages, other users' messages and edits that change
//! nothing, `getFile` refuses unknown file ids, `sendPhoto` refuses what is not a PNG (the only
//! image format it reads). What it does not do: parse `parse_mode` markup,
//! check rights, or enforce rate limits (inject [`Fault::RetryAfter`] for that).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::{json, Map, Value};
use tokio::sync::Notify;
use tokio::time::Instant;

/// The only bot token the fake accepts; requests with any other token get 401 Unauthorized, the
/// way Telegram answers a revoked or mistyped token.
pub const TOKEN: &str = "123456:TEST-TOKEN";
/// The bot's own user id, as `getMe` reports it and as the `from` of every message it sends.
pub const BOT_ID: i64 = 777000;
/// The bot's username (without `@`), so tests can address it in commands and mentions.
pub const BOT_USERNAME: &str = "keeper_test_bot";

const BOT_FIRST_NAME: &str = "Keeper";
const DEFAULT_LONG_POLL_CAP: Duration = Duration::from_secs(1);
/// Telegram's limit for message texts, counted in UTF-16 code units.
const MAX_TEXT_LEN: usize = 4096;

/// Handle to a running fake server. Cheap to clone (an `Arc` inside), so a test can keep one
/// and hand others to spawned tasks.
#[derive(Clone)]
pub struct FakeTelegram {
    inner: Arc<Inner>,
}

/// A misbehaviour to answer one call with, queued per method by [`FakeTelegram::inject`], to test
/// how the bot copes with Telegram's failure modes.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Flood control: HTTP 429 with `parameters.retry_after` = this many seconds.
    RetryAfter(u32),
    /// HTTP 500 with the JSON body `{"ok":false,"error_code":500,"description":"Internal Server
    /// Error"}`.
    ServerError,
    /// HTTP 502 with an HTML body (what a proxy in front of Telegram answers).
    BadGateway,
    /// Wait this long, then answer normally (the call is recorded before the wait).
    Slow(Duration),
    /// HTTP 200 with the truncated body `{"ok": tru`.
    Malformed,
    /// HTTP 400 with this description, e.g. `Bad Request: TOPIC_CLOSED`.
    BadRequest(&'static str),
}

/// A chat for pushed updates; describes only what tests need to vary.
#[derive(Debug, Clone)]
pub struct Chat {
    /// Chat id: positive for private chats (the user's id), negative for groups.
    pub id: i64,
    /// `"private"`, `"group"` or `"supergroup"`, the Bot API's `Chat.type`.
    pub kind: &'static str,
    /// Group title; `None` for private chats.
    pub title: Option<String>,
}

impl Chat {
    /// A private chat with the user whose id is `id`.
    pub fn private(id: i64) -> Chat {
        Chat {
            id,
            kind: "private",
            title: None,
        }
    }

    /// A basic group.
    pub fn group(id: i64, title: &str) -> Chat {
        Chat {
            id,
            kind: "group",
            title: Some(title.to_owned()),
        }
    }

    /// A supergroup (what most real groups are).
    pub fn supergroup(id: i64, title: &str) -> Chat {
        Chat {
            id,
            kind: "supergroup",
            title: Some(title.to_owned()),
        }
    }
}

/// A (human) user who sends pushed messages.
#[derive(Debug, Clone)]
pub struct User {
    /// User id.
    pub id: i64,
    /// First name, always present in the Bot API.
    pub first_name: String,
    /// Username without `@`, if the user has one.
    pub username: Option<String>,
    /// IETF language tag of the user's client, e.g. `"en"`.
    pub language_code: Option<String>,
}

impl User {
    /// A user with just an id and a first name.
    pub fn new(id: i64, first_name: &str) -> User {
        User {
            id,
            first_name: first_name.to_owned(),
            username: None,
            language_code: None,
        }
    }
}

struct Inner {
    addr: SocketAddr,
    state: Mutex<FakeState>,
    /// Woken whenever an update is queued, so pending long polls answer at once.
    updates_pushed: Notify,
    /// Woken whenever a call is recorded, for [`FakeTelegram::wait_for`].
    call_seen: Notify,
}

struct StoredFile {
    file_id: String,
    path: String,
    bytes: Vec<u8>,
}

struct FakeState {
    next_update_id: i64,
    /// Updates not yet confirmed, in id order.
    updates: VecDeque<(i64, Value)>,
    confirmed_offset: i64,
    calls: Vec<(String, Value)>,
    faults: HashMap<String, VecDeque<Fault>>,
    chats: HashMap<i64, Value>,
    users: HashMap<i64, Value>,
    messages: HashMap<i64, BTreeMap<i32, Value>>,
    last_message_id: HashMap<i64, i32>,
    sent: Vec<(i64, Value)>,
    member_status: HashMap<(i64, i64), String>,
    files: HashMap<String, StoredFile>,
    downloads: Vec<String>,
    next_serial: u64,
    long_poll_cap: Duration,
}

/// An error answer: HTTP status / `error_code` and `description`.
type ApiErr = (u16, String);

fn bad_request(description: &str) -> ApiErr {
    (400, format!("Bad Request: {description}"))
}

enum Outcome {
    Done(Result<Value, ApiErr>),
    /// `getUpdates` found nothing: wait for updates until the deadline.
    Poll {
        limit: usize,
        deadline: Instant,
    },
}

struct Upload {
    file_name: String,
    bytes: Vec<u8>,
}

impl FakeTelegram {
    /// Binds 127.0.0.1 on a free port and serves in a tokio task of the current runtime (so the
    /// server lives as long as the test's runtime).
    pub async fn start() -> FakeTelegram {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("fake telegram: bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("fake telegram: local_addr");
        let inner = Arc::new(Inner {
            addr,
            state: Mutex::new(FakeState {
                next_update_id: 1,
                updates: VecDeque::new(),
                confirmed_offset: 0,
                calls: Vec::new(),
                faults: HashMap::new(),
                chats: HashMap::new(),
                users: HashMap::new(),
                messages: HashMap::new(),
                last_message_id: HashMap::new(),
                sent: Vec::new(),
                member_status: HashMap::new(),
                files: HashMap::new(),
                downloads: Vec::new(),
                next_serial: 1,
                long_poll_cap: DEFAULT_LONG_POLL_CAP,
            }),
            updates_pushed: Notify::new(),
            call_seen: Notify::new(),
        });
        let app = Router::new()
            .fallback(handle)
            .layer(DefaultBodyLimit::disable())
            .with_state(inner.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeTelegram { inner }
    }

    /// The base URL to put in `TELOXIDE_API_URL` (or `Bot::set_api_url`): `http://127.0.0.1:PORT/`.
    pub fn url(&self) -> String {
        format!("http://{}/", self.inner.addr)
    }

    fn state(&self) -> MutexGuard<'_, FakeState> {
        self.inner.lock()
    }

    // --- updates ---

    /// Queues an arbitrary update (for kinds the helpers below do not build). Assigns and returns
    /// its `update_id` (1, 2, 3, ...; any `update_id` in the value is replaced). Chats, users and
    /// messages inside are remembered, so later replies/edits/callbacks can refer to them.
    pub fn push_update(&self, update_without_id: Value) -> i64 {
        let id = self.state().enqueue(update_without_id);
        self.inner.updates_pushed.notify_waiters();
        id
    }

    /// Queues a text message from `from` in `chat`; returns `(update_id, message_id)`. Message ids
    /// count from 1 per chat; entities are filled in like Telegram does (a leading `/command` as
    /// `bot_command`, `@names` as `mention`).
    pub fn push_message(&self, chat: &Chat, from: &User, text: &str) -> (i64, i32) {
        self.push_message_with(chat, from, json!({ "text": text }))
    }

    /// Like [`push_message`](Self::push_message) but merges `fields` into the Message object, for
    /// replies, media, captions, fixed dates and so on. A `null` field removes that key (e.g.
    /// `{"from": null}`). `reply_to_message` may be just `{"message_id": N}`: it is completed
    /// from the remembered message N of that chat. `entities`/`caption_entities` are computed
    /// from `text`/`caption` unless given.
    pub fn push_message_with(&self, chat: &Chat, from: &User, fields: Value) -> (i64, i32) {
        let (update_id, message_id) = {
            let mut st = self.state();
            let explicit_id = fields.get("message_id").and_then(Value::as_i64);
            let message_id = match explicit_id {
                Some(id) => id as i32,
                None => st.next_message_id(chat.id),
            };
            let mut msg = json!({
                "message_id": message_id,
                "from": user_json(from),
                "chat": chat_json(chat, Some(from)),
                "date": now(),
            });
            merge(&mut msg, fields);
            add_entities(&mut msg);
            st.complete_reply(chat.id, &mut msg);
            let update_id = st.enqueue(json!({ "message": msg }));
            (update_id, message_id)
        };
        self.inner.updates_pushed.notify_waiters();
        (update_id, message_id)
    }

    /// Queues an `edited_message` update: message `message_id` of `chat` now reads `text`, with
    /// `edit_date` = now (the original date is kept when the message is known).
    pub fn push_edited_message(
        &self,
        chat: &Chat,
        from: &User,
        message_id: i32,
        text: &str,
    ) -> i64 {
        let update_id = {
            let mut st = self.state();
            let mut msg = st
                .message(chat.id, message_id)
                .unwrap_or_else(|| json!({ "message_id": message_id, "date": now() }));
            msg["from"] = user_json(from);
            msg["chat"] = chat_json(chat, Some(from));
            msg["text"] = json!(text);
            if let Some(m) = msg.as_object_mut() {
                m.remove("entities");
            }
            msg["edit_date"] = json!(now());
            add_entities(&mut msg);
            st.enqueue(json!({ "edited_message": msg }))
        };
        self.inner.updates_pushed.notify_waiters();
        update_id
    }

    /// Queues a `callback_query` update: `from` pressed a button carrying `data` under message
    /// `message_id` of `chat` (the remembered message, normally one the bot sent; a placeholder
    /// bot message if unknown).
    pub fn push_callback_query(
        &self,
        chat: &Chat,
        from: &User,
        message_id: i32,
        data: &str,
    ) -> i64 {
        let update_id = {
            let mut st = self.state();
            let message = st.message(chat.id, message_id).unwrap_or_else(|| {
                json!({
                    "message_id": message_id,
                    "from": bot_user_json(),
                    "chat": chat_json(chat, None),
                    "date": now(),
                    "text": "(message)",
                })
            });
            let serial = st.serial();
            st.enqueue(json!({
                "callback_query": {
                    "id": format!("{}", 4_000_000_000u64 + serial),
                    "from": user_json(from),
                    "message": message,
                    "chat_instance": format!("ci{}", chat.id),
                    "data": data,
                }
            }))
        };
        self.inner.updates_pushed.notify_waiters();
        update_id
    }

    /// Telegram's confirmation boundary: every update with id below it is confirmed and will not
    /// be delivered again. That is the highest positive `offset` any `getUpdates` call sent (a
    /// negative offset or `deleteWebhook` with `drop_pending_updates` also moves it); 0 before.
    pub fn confirmed_offset(&self) -> i64 {
        self.state().confirmed_offset
    }

    /// How many queued updates are not yet confirmed (delivered-but-unconfirmed ones count).
    pub fn pending_updates(&self) -> usize {
        self.state().updates.len()
    }

    // --- what the bot did ---

    /// Parsed bodies of every call to `method` (spelled as Telegram does, e.g. `"sendMessage"`),
    /// in arrival order, including calls answered with a fault or an error. JSON bodies are kept
    /// as sent. Multipart/form bodies become an object of their text fields, where values that
    /// are JSON objects/arrays and integer `*_id`/`offset`/`limit`/`timeout` fields are parsed
    /// (so `chat_id` is a number either way); an uploaded file becomes
    /// `{"file_name": .., "len": bytes}` under the field that refers to it (`"document"`, not the
    /// random `attach://` part name).
    pub fn requests(&self, method: &str) -> Vec<Value> {
        self.state().requests(method)
    }

    /// Waits until at least `count` calls of `method` were seen and returns all of them; on
    /// timeout panics with a message listing the calls of `method` and a summary of all calls.
    pub async fn wait_for(&self, method: &str, count: usize, timeout: Duration) -> Vec<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let notified = self.inner.call_seen.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let (seen, summary) = {
                let st = self.state();
                (st.requests(method), st.call_summary())
            };
            if seen.len() >= count {
                return seen;
            }
            if Instant::now() >= deadline {
                let bodies: Vec<String> = seen.iter().map(Value::to_string).collect();
                panic!(
                    "FakeTelegram::wait_for: expected at least {count} call(s) of {method} within \
                     {timeout:?}, saw {}:\n  {}\nall calls so far: {summary}",
                    seen.len(),
                    if bodies.is_empty() {
                        "(none)".to_owned()
                    } else {
                        bodies.join("\n  ")
                    },
                );
            }
            tokio::select! {
                _ = &mut notified => {}
                _ = tokio::time::sleep_until(deadline) => {}
            }
        }
    }

    /// The Message objects the fake returned for successful `sendMessage`, `sendDocument`,
    /// `sendPhoto` and `editMessageText` calls to chat `chat_id`, in order (an edit appears as the
    /// new version).
    pub fn sent_messages(&self, chat_id: i64) -> Vec<Value> {
        self.state()
            .sent
            .iter()
            .filter(|(c, _)| *c == chat_id)
            .map(|(_, m)| m.clone())
            .collect()
    }

    /// The current state of message `message_id` in `chat_id` as the fake remembers it (pushed,
    /// sent or edited), e.g. to build a `reply_to_message`.
    pub fn message(&self, chat_id: i64, message_id: i32) -> Option<Value> {
        self.state().message(chat_id, message_id)
    }

    /// The bytes of every photo sent to `chat_id` (uploaded or resent by file id), in order, so
    /// a test can decode the picture the bot drew.
    pub fn sent_photos(&self, chat_id: i64) -> Vec<Vec<u8>> {
        let st = self.state();
        st.sent
            .iter()
            .filter(|(c, _)| *c == chat_id)
            .filter_map(|(_, m)| m.get("photo")?.as_array()?.last()?.get("file_id")?.as_str())
            .filter_map(|file_id| st.files.get(file_id).map(|f| f.bytes.clone()))
            .collect()
    }

    /// `file_path`s the bot downloaded from `/file/bot{TOKEN}/...`, in order.
    pub fn downloads(&self) -> Vec<String> {
        self.state().downloads.clone()
    }

    // --- behaviour ---

    /// Queues `fault` for the next call of `method`; several faults are used once each, in the
    /// order injected.
    pub fn inject(&self, method: &str, fault: Fault) {
        self.state()
            .faults
            .entry(canonical_method(method))
            .or_default()
            .push_back(fault);
    }

    /// Sets what `getChatMember` reports for `user_id` in `chat_id`: `"creator"`,
    /// `"administrator"`, `"member"` (the default), `"restricted"`, `"left"` or `"kicked"`.
    pub fn set_chat_member_status(&self, chat_id: i64, user_id: i64, status: &str) {
        self.state()
            .member_status
            .insert((chat_id, user_id), status.to_owned());
    }

    /// Makes `file_id` known to `getFile` (which answers `{file_id, file_unique_id, file_size,
    /// file_path}`) and serves `bytes` at `/file/bot{TOKEN}/{file_path}`.
    pub fn add_file(&self, file_id: &str, bytes: Vec<u8>) {
        self.state().add_file(file_id, None, bytes);
    }

    /// Caps how long an empty `getUpdates` waits: min(its `timeout`, cap) (default 1 s), so
    /// tests and bot shutdown stay fast. A pushed update wakes waiting polls at once.
    pub fn set_long_poll_cap(&self, d: Duration) {
        self.state().long_poll_cap = d;
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, FakeState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

// ---------------------------------------------------------------------------------------------
// State

impl FakeState {
    fn serial(&mut self) -> u64 {
        let s = self.next_serial;
        self.next_serial += 1;
        s
    }

    fn next_message_id(&mut self, chat_id: i64) -> i32 {
        let last = self.last_message_id.entry(chat_id).or_insert(0);
        *last += 1;
        *last
    }

    fn message(&self, chat_id: i64, message_id: i32) -> Option<Value> {
        self.messages.get(&chat_id)?.get(&message_id).cloned()
    }

    fn requests(&self, method: &str) -> Vec<Value> {
        let method = canonical_method(method);
        self.calls
            .iter()
            .filter(|(m, _)| *m == method)
            .map(|(_, b)| b.clone())
            .collect()
    }

    fn call_summary(&self) -> String {
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for (m, _) in &self.calls {
            *counts.entry(m.as_str()).or_default() += 1;
        }
        if counts.is_empty() {
            return "(none)".to_owned();
        }
        counts
            .iter()
            .map(|(m, n)| format!("{m}×{n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Remembers a message (its chat, sender and content) and keeps the per-chat id counter
    /// ahead of it.
    fn remember_message(&mut self, msg: &Value) {
        let Some(chat) = msg.get("chat") else { return };
        let Some(chat_id) = chat.get("id").and_then(Value::as_i64) else {
            return;
        };
        self.chats.insert(chat_id, chat.clone());
        if let Some(from) = msg.get("from").filter(|f| f.is_object()) {
            if let Some(uid) = from.get("id").and_then(Value::as_i64) {
                self.users.insert(uid, from.clone());
            }
        }
        if let Some(mid) = msg.get("message_id").and_then(Value::as_i64) {
            let mid = mid as i32;
            let last = self.last_message_id.entry(chat_id).or_insert(0);
            *last = (*last).max(mid);
            self.messages
                .entry(chat_id)
                .or_default()
                .insert(mid, msg.clone());
        }
    }

    fn enqueue(&mut self, mut update: Value) -> i64 {
        let id = self.next_update_id;
        self.next_update_id += 1;
        if !update.is_object() {
            update = json!({ "payload": update });
        }
        update["update_id"] = json!(id);
        for key in [
            "message",
            "edited_message",
            "channel_post",
            "edited_channel_post",
        ] {
            if let Some(msg) = update.get(key).cloned() {
                self.remember_message(&msg);
            }
        }
        if let Some(cb) = update.get("callback_query").cloned() {
            if let Some(from) = cb.get("from").filter(|f| f.is_object()) {
                if let Some(uid) = from.get("id").and_then(Value::as_i64) {
                    self.users.insert(uid, from.clone());
                }
            }
            if let Some(chat) = cb.pointer("/message/chat") {
                if let Some(cid) = chat.get("id").and_then(Value::as_i64) {
                    self.chats.entry(cid).or_insert_with(|| chat.clone());
                }
            }
        }
        self.updates.push_back((id, update));
        id
    }

    /// Completes a `reply_to_message` stub (`{"message_id": N}`) from the remembered message.
    fn complete_reply(&self, chat_id: i64, msg: &mut Value) {
        let Some(reply) = msg.get("reply_to_message") else {
            return;
        };
        if reply.get("date").is_some() && reply.get("chat").is_some() {
            return;
        }
        let Some(mid) = reply.get("message_id").and_then(Value::as_i64) else {
            return;
        };
        let mut full = self.message(chat_id, mid as i32).unwrap_or_else(|| {
            json!({
                "message_id": mid,
                "chat": msg["chat"].clone(),
                "date": now(),
                "text": "",
            })
        });
        if let Some(m) = full.as_object_mut() {
            m.remove("reply_to_message");
        }
        msg["reply_to_message"] = full;
    }

    fn confirm(&mut self, offset: i64) {
        if offset > self.confirmed_offset {
            self.confirmed_offset = offset;
        }
        while self
            .updates
            .front()
            .is_some_and(|(id, _)| *id < self.confirmed_offset)
        {
            self.updates.pop_front();
        }
    }

    fn take_updates(&self, limit: usize) -> Vec<Value> {
        self.updates
            .iter()
            .take(limit)
            .map(|(_, u)| u.clone())
            .collect()
    }

    fn chat_for(&self, chat_id: i64) -> Value {
        if let Some(chat) = self.chats.get(&chat_id) {
            return chat.clone();
        }
        let mut chat = json!({ "id": chat_id, "type": "private" });
        if let Some(user) = self.users.get(&chat_id) {
            for key in ["first_name", "last_name", "username"] {
                if let Some(v) = user.get(key) {
                    chat[key] = v.clone();
                }
            }
        }
        chat
    }

    fn add_file(&mut self, file_id: &str, file_name: Option<&str>, bytes: Vec<u8>) -> String {
        let serial = self.serial();
        let ext = file_name
            .and_then(|n| n.rsplit_once('.'))
            .map(|(_, e)| e.to_owned())
            .filter(|e| !e.is_empty() && e.chars().all(|c| c.is_ascii_alphanumeric()))
            .unwrap_or_else(|| "bin".to_owned());
        let path = format!("documents/file_{serial}.{ext}");
        self.files.insert(
            file_id.to_owned(),
            StoredFile {
                file_id: file_id.to_owned(),
                path: path.clone(),
                bytes,
            },
        );
        path
    }

    fn file_meta(&self, file_id: &str) -> Option<Value> {
        let f = self.files.get(file_id)?;
        Some(json!({
            "file_id": f.file_id,
            "file_unique_id": unique_id(&f.file_id),
            "file_size": f.bytes.len(),
            "file_path": f.path,
        }))
    }

    fn faulted(&mut self, method: &str) -> Option<Fault> {
        self.faults.get_mut(method)?.pop_front()
    }

    /// Answers a call, with the lock held (so once a call is visible in `requests`, its effects
    /// are visible too).
    fn process(
        &mut self,
        method: &str,
        params: &Value,
        uploads: &HashMap<String, Upload>,
    ) -> Outcome {
        let result = match method {
            "getMe" => Ok(me_json()),
            "getUpdates" => return self.get_updates(params),
            "getWebhookInfo" => Ok(json!({
                "url": "",
                "has_custom_certificate": false,
                "pending_update_count": self.updates.len(),
            })),
            "deleteWebhook" => {
                if params.get("drop_pending_updates").and_then(loose_bool) == Some(true) {
                    let next = self.next_update_id;
                    self.confirm(next);
                }
                Ok(json!(true))
            }
            "sendMessage" => self.send_message(params),
            "editMessageText" => self.edit_message_text(params),
            "sendDocument" => self.send_document(params, uploads),
            "sendPhoto" => self.send_photo(params, uploads),
            "getChatMember" => self.get_chat_member(params),
            "getFile" => {
                let file_id = params
                    .get("file_id")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                self.file_meta(file_id)
                    .ok_or_else(|| bad_request("invalid file id"))
            }
            "getMyCommands" => Ok(json!([])),
            "setMessageReaction"
            | "setMyCommands"
            | "deleteMyCommands"
            | "answerCallbackQuery"
            | "deleteMessage"
            | "sendChatAction" => Ok(json!(true)),
            _ => Err((404, "Not Found: method not found".to_owned())),
        };
        Outcome::Done(result)
    }

    fn get_updates(&mut self, params: &Value) -> Outcome {
        let offset = params.get("offset").and_then(loose_i64).unwrap_or(0);
        let limit = params
            .get("limit")
            .and_then(loose_i64)
            .unwrap_or(100)
            .clamp(1, 100) as usize;
        let timeout = params
            .get("timeout")
            .and_then(loose_i64)
            .unwrap_or(0)
            .max(0) as u64;
        if offset > 0 {
            self.confirm(offset);
        } else if offset < 0 {
            // Keep only the last -offset updates, forget the rest.
            let keep = offset.unsigned_abs() as usize;
            if self.updates.len() > keep {
                let boundary = self.updates[self.updates.len() - keep].0;
                self.confirm(boundary);
            }
        }
        let updates = self.take_updates(limit);
        if !updates.is_empty() || timeout == 0 {
            return Outcome::Done(Ok(Value::Array(updates)));
        }
        let wait = Duration::from_secs(timeout).min(self.long_poll_cap);
        Outcome::Poll {
            limit,
            deadline: Instant::now() + wait,
        }
    }

    fn reply_target(&self, chat_id: i64, params: &Value) -> Option<Value> {
        let mid = params
            .pointer("/reply_parameters/message_id")
            .or_else(|| params.get("reply_to_message_id"))
            .and_then(loose_i64)?;
        let mut target = self.message(chat_id, mid as i32)?;
        if let Some(m) = target.as_object_mut() {
            m.remove("reply_to_message");
        }
        Some(target)
    }

    fn new_bot_message(&mut self, chat_id: i64, params: &Value) -> Value {
        let message_id = self.next_message_id(chat_id);
        let mut msg = json!({
            "message_id": message_id,
            "from": bot_user_json(),
            "chat": self.chat_for(chat_id),
            "date": now(),
        });
        if let Some(reply) = self.reply_target(chat_id, params) {
            msg["reply_to_message"] = reply;
        }
        // A message sent into a forum topic comes back as a topic message, as Telegram has it.
        if let Some(topic) = params.get("message_thread_id").and_then(loose_i64) {
            msg["message_thread_id"] = json!(topic);
            msg["is_topic_message"] = json!(true);
        }
        if let Some(markup) = params
            .get("reply_markup")
            .filter(|m| m.get("inline_keyboard").is_some())
        {
            msg["reply_markup"] = markup.clone();
        }
        msg
    }

    fn store_sent(&mut self, chat_id: i64, msg: &Value) {
        self.messages
            .entry(chat_id)
            .or_default()
            .insert(msg["message_id"].as_i64().unwrap_or(0) as i32, msg.clone());
        self.sent.push((chat_id, msg.clone()));
    }

    fn send_message(&mut self, params: &Value) -> Result<Value, ApiErr> {
        let chat_id = chat_id_param(params)?;
        let text = params
            .get("text")
            .and_then(Value::as_str)
            .unwrap_or_default();
        check_text(text, "message is too long")?;
        let mut msg = self.new_bot_message(chat_id, params);
        msg["text"] = json!(text);
        match params.get("entities") {
            Some(e) if e.is_array() => msg["entities"] = e.clone(),
            _ => add_entities(&mut msg),
        }
        self.store_sent(chat_id, &msg);
        Ok(msg)
    }

    fn edit_message_text(&mut self, params: &Value) -> Result<Value, ApiErr> {
        if params.get("inline_message_id").is_some() {
            return Ok(json!(true));
        }
        let chat_id = chat_id_param(params)?;
        let mid = params
            .get("message_id")
            .and_then(loose_i64)
            .ok_or_else(|| bad_request("message identifier is not specified"))?;
        let mut msg = self
            .message(chat_id, mid as i32)
            .ok_or_else(|| bad_request("message to edit not found"))?;
        if msg.pointer("/from/id").and_then(Value::as_i64) != Some(BOT_ID) {
            return Err(bad_request("message can't be edited"));
        }
        let Some(old_text) = msg.get("text").and_then(Value::as_str).map(str::to_owned) else {
            return Err(bad_request("there is no text in the message to edit"));
        };
        let text = params
            .get("text")
            .and_then(Value::as_str)
            .unwrap_or_default();
        check_text(text, "MESSAGE_TOO_LONG")?;
        let new_markup = params
            .get("reply_markup")
            .filter(|m| m.get("inline_keyboard").is_some());
        if old_text == text && msg.get("reply_markup") == new_markup {
            return Err(bad_request(
                "message is not modified: specified new message content and reply markup are \
                 exactly the same as a current content and reply markup of the message",
            ));
        }
        let obj = msg.as_object_mut().expect("stored messages are objects");
        obj.remove("entities");
        obj.remove("reply_markup");
        obj.insert("text".into(), json!(text));
        obj.insert("edit_date".into(), json!(now()));
        if let Some(markup) = new_markup {
            obj.insert("reply_markup".into(), markup.clone());
        }
        match params.get("entities") {
            Some(e) if e.is_array() => msg["entities"] = e.clone(),
            _ => add_entities(&mut msg),
        }
        self.store_sent(chat_id, &msg);
        Ok(msg)
    }

    fn send_document(
        &mut self,
        params: &Value,
        uploads: &HashMap<String, Upload>,
    ) -> Result<Value, ApiErr> {
        let chat_id = chat_id_param(params)?;
        let (_, mut document) =
            self.attached_file("document", "BQACAgIAAxkDAAI", params, uploads)?;
        if let Some(up) = uploads
            .get("document")
            .filter(|up| !up.file_name.is_empty())
        {
            document["file_name"] = json!(up.file_name);
        }
        let mut msg = self.new_bot_message(chat_id, params);
        msg["document"] = document;
        add_caption(&mut msg, params)?;
        self.store_sent(chat_id, &msg);
        Ok(msg)
    }

    /// One size of the photo (Telegram adds smaller ones it makes itself), measured from the PNG.
    fn send_photo(
        &mut self,
        params: &Value,
        uploads: &HashMap<String, Upload>,
    ) -> Result<Value, ApiErr> {
        let chat_id = chat_id_param(params)?;
        let (file_id, mut photo) =
            self.attached_file("photo", "AgACAgIAAxkDAAI", params, uploads)?;
        let (width, height) = self
            .files
            .get(&file_id)
            .and_then(|f| png_size(&f.bytes))
            .ok_or_else(|| bad_request("IMAGE_PROCESS_FAILED"))?;
        photo["width"] = json!(width);
        photo["height"] = json!(height);
        let mut msg = self.new_bot_message(chat_id, params);
        msg["photo"] = json!([photo]);
        add_caption(&mut msg, params)?;
        self.store_sent(chat_id, &msg);
        Ok(msg)
    }

    /// The file a send method's `field` refers to: a new upload (kept under a new id starting
    /// with `id_prefix`, so `getFile` finds it) or the id of a known file. Returns its id and its
    /// Bot API object (without `file_path`, as send methods answer).
    fn attached_file(
        &mut self,
        field: &str,
        id_prefix: &str,
        params: &Value,
        uploads: &HashMap<String, Upload>,
    ) -> Result<(String, Value), ApiErr> {
        let file_id = match uploads.get(field) {
            Some(up) => {
                let file_id = format!("{id_prefix}{}", self.next_serial);
                self.add_file(&file_id, Some(&up.file_name), up.bytes.clone());
                file_id
            }
            None => params
                .get(field)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
        };
        let mut file = self
            .file_meta(&file_id)
            .ok_or_else(|| bad_request("wrong file identifier/HTTP URL specified"))?;
        file.as_object_mut().expect("object").remove("file_path");
        Ok((file_id, file))
    }

    fn get_chat_member(&self, params: &Value) -> Result<Value, ApiErr> {
        let chat_id = chat_id_param(params)?;
        let user_id = params
            .get("user_id")
            .and_then(loose_i64)
            .ok_or_else(|| bad_request("invalid user_id specified"))?;
        let user = if user_id == BOT_ID {
            bot_user_json()
        } else {
            self.users.get(&user_id).cloned().unwrap_or_else(|| {
                json!({ "id": user_id, "is_bot": false, "first_name": format!("User{user_id}") })
            })
        };
        let status = self
            .member_status
            .get(&(chat_id, user_id))
            .map(String::as_str)
            .unwrap_or("member");
        Ok(chat_member_json(status, user))
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP

async fn handle(
    State(inner): State<Arc<Inner>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let segments: Vec<String> = uri
        .path()
        .trim_start_matches('/')
        .split('/')
        .map(|s| percent_decode(s, false))
        .collect();
    let token_segment = format!("bot{TOKEN}");
    match segments.as_slice() {
        [bot, api_method] if bot.starts_with("bot") => {
            if *bot != token_segment {
                return error_response(401, "Unauthorized");
            }
            api_call(&inner, &canonical_method(api_method), &uri, &headers, &body).await
        }
        [file, bot, rest @ ..] if file == "file" && bot.starts_with("bot") && !rest.is_empty() => {
            if *bot != token_segment {
                return error_response(401, "Unauthorized");
            }
            if method != Method::GET && method != Method::HEAD {
                return error_response(405, "Method Not Allowed");
            }
            let path = rest.join("/");
            let mut st = inner.lock();
            st.downloads.push(path.clone());
            match st.files.values().find(|f| f.path == path) {
                Some(f) => (
                    StatusCode::OK,
                    [(header::CONTENT_TYPE, "application/octet-stream")],
                    f.bytes.clone(),
                )
                    .into_response(),
                None => error_response(404, "Not Found"),
            }
        }
        _ => error_response(404, "Not Found"),
    }
}

async fn api_call(
    inner: &Inner,
    method: &str,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let parsed = parse_params(uri, headers, body);
    let (params, uploads) = match &parsed {
        Ok((params, uploads)) => (params.clone(), Some(uploads)),
        Err(raw) => (json!({ "_unparsed_body": raw }), None),
    };
    let no_uploads = HashMap::new();
    let uploads = uploads.unwrap_or(&no_uploads);

    // Record and (unless faulted) answer under one lock, so once a call is visible in
    // `requests`, its effects are visible too.
    let (fault, outcome) = {
        let mut st = inner.lock();
        st.calls.push((method.to_owned(), params.clone()));
        match st.faulted(method) {
            None if parsed.is_ok() => (None, Some(st.process(method, &params, uploads))),
            fault => (fault, None),
        }
    };
    inner.call_seen.notify_waiters();
    let outcome = match (fault, outcome) {
        (_, Some(outcome)) => outcome,
        (Some(Fault::Slow(delay)), None) => {
            tokio::time::sleep(delay).await;
            if parsed.is_err() {
                return error_response(400, "Bad Request: can't parse request body");
            }
            inner.lock().process(method, &params, uploads)
        }
        (Some(fault), None) => return fault_response(&fault),
        (None, None) => return error_response(400, "Bad Request: can't parse request body"),
    };
    match outcome {
        Outcome::Done(Ok(result)) => ok_response(result),
        Outcome::Done(Err((code, description))) => error_response(code, &description),
        Outcome::Poll { limit, deadline } => loop {
            let notified = inner.updates_pushed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let updates = inner.lock().take_updates(limit);
            if !updates.is_empty() || Instant::now() >= deadline {
                return ok_response(Value::Array(updates));
            }
            tokio::select! {
                _ = &mut notified => {}
                _ = tokio::time::sleep_until(deadline) => {}
            }
        },
    }
}

/// Telegram method names are case-insensitive and teloxide sends them capitalised
/// (`SendMessage`); record and match them as the Bot API documents them (`sendMessage`).
fn canonical_method(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        Some(first) => first.to_ascii_lowercase().to_string() + chars.as_str(),
        None => String::new(),
    }
}

fn json_response(status: u16, body: String) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn ok_response(result: Value) -> Response {
    json_response(200, json!({ "ok": true, "result": result }).to_string())
}

fn error_response(code: u16, description: &str) -> Response {
    json_response(
        code,
        json!({ "ok": false, "error_code": code, "description": description }).to_string(),
    )
}

fn fault_response(fault: &Fault) -> Response {
    match fault {
        Fault::RetryAfter(secs) => json_response(
            429,
            json!({
                "ok": false,
                "error_code": 429,
                "description": format!("Too Many Requests: retry after {secs}"),
                "parameters": { "retry_after": secs },
            })
            .to_string(),
        ),
        Fault::ServerError => error_response(500, "Internal Server Error"),
        Fault::BadGateway => (
            StatusCode::BAD_GATEWAY,
            [(header::CONTENT_TYPE, "text/html")],
            "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 \
             Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n",
        )
            .into_response(),
        Fault::Malformed => json_response(200, r#"{"ok": tru"#.to_owned()),
        Fault::BadRequest(description) => error_response(400, description),
        Fault::Slow(_) => unreachable!("slow faults answer normally"),
    }
}

// ---------------------------------------------------------------------------------------------
// Request parsing

/// Parses the query string and the body (JSON, multipart or urlencoded) into one object, plus
/// uploaded files keyed by the field that refers to them. `Err` carries the raw body.
fn parse_params(
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(Value, HashMap<String, Upload>), String> {
    let mut map = Map::new();
    let mut uploads = HashMap::new();
    if let Some(query) = uri.query() {
        for (k, v) in parse_urlencoded(query) {
            let v = loose_value(&k, v);
            map.insert(k, v);
        }
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let lower = content_type.to_ascii_lowercase();
    let raw = || String::from_utf8_lossy(body).into_owned();
    if lower.starts_with("multipart/form-data") {
        let boundary = content_type
            .split(';')
            .filter_map(|p| p.trim().strip_prefix("boundary="))
            .next()
            .map(|b| b.trim_matches('"').to_owned())
            .ok_or_else(raw)?;
        let (fields, files) = parse_multipart(body, &boundary).ok_or_else(raw)?;
        let mut files: HashMap<String, Upload> = files.into_iter().collect();
        for (k, v) in fields {
            if let Some(part) = v.strip_prefix("attach://") {
                if let Some(up) = files.remove(part) {
                    map.insert(
                        k.clone(),
                        json!({ "file_name": up.file_name, "len": up.bytes.len() }),
                    );
                    uploads.insert(k, up);
                    continue;
                }
            }
            let v = loose_value(&k, v);
            map.insert(k, v);
        }
        for (k, up) in files {
            map.insert(
                k.clone(),
                json!({ "file_name": up.file_name, "len": up.bytes.len() }),
            );
            uploads.insert(k, up);
        }
    } else if lower.starts_with("application/x-www-form-urlencoded") {
        for (k, v) in parse_urlencoded(&String::from_utf8_lossy(body)) {
            let v = loose_value(&k, v);
            map.insert(k, v);
        }
    } else if !body.iter().all(u8::is_ascii_whitespace) {
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(obj)) => map.extend(obj),
            _ => return Err(raw()),
        }
    }
    Ok((Value::Object(map), uploads))
}

/// Splits a `multipart/form-data` body into text fields and file parts (those with a
/// `filename`).
#[allow(clippy::type_complexity)]
fn parse_multipart(
    body: &[u8],
    boundary: &str,
) -> Option<(Vec<(String, String)>, Vec<(String, Upload)>)> {
    let mut data = b"\r\n".to_vec();
    data.extend_from_slice(body);
    let delimiter = format!("\r\n--{boundary}").into_bytes();
    let mut fields = Vec::new();
    let mut files = Vec::new();
    let mut pos = find(&data, &delimiter, 0)? + delimiter.len();
    loop {
        if data[pos..].starts_with(b"--") {
            break;
        }
        let headers_start = pos + 2; // skip CRLF after the delimiter
        let headers_end = find(&data, b"\r\n\r\n", headers_start)?;
        let content_start = headers_end + 4;
        let next = find(&data, &delimiter, content_start)?;
        let headers = String::from_utf8_lossy(&data[headers_start..headers_end]).into_owned();
        let content = &data[content_start..next];
        let mut name = None;
        let mut file_name = None;
        for line in headers.split("\r\n") {
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            if !key.trim().eq_ignore_ascii_case("content-disposition") {
                continue;
            }
            name = disposition_param(value, "name");
            file_name = disposition_param(value, "filename");
        }
        let name = name?;
        match file_name {
            Some(file_name) => files.push((
                name,
                Upload {
                    file_name,
                    bytes: content.to_vec(),
                },
            )),
            None => fields.push((name, String::from_utf8_lossy(content).into_owned())),
        }
        pos = next + delimiter.len();
    }
    Some((fields, files))
}

fn disposition_param(value: &str, key: &str) -> Option<String> {
    value.split(';').map(str::trim).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        (k.trim() == key).then(|| percent_decode(v.trim().trim_matches('"'), false))
    })
}

fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if from > haystack.len() {
        return None;
    }
    haystack[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

fn parse_urlencoded(s: &str) -> Vec<(String, String)> {
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k, true), percent_decode(v, true))
        })
        .collect()
}

fn percent_decode(s: &str, plus_is_space: bool) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b'+' if plus_is_space => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Form fields arrive as strings; turn the ones that are structurally JSON or numeric ids into
/// JSON values so recorded multipart bodies look like JSON ones.
fn loose_value(key: &str, s: String) -> Value {
    const TEXT_FIELDS: &[&str] = &["text", "caption", "data", "query", "title", "description"];
    if TEXT_FIELDS.contains(&key) {
        return Value::String(s);
    }
    let trimmed = s.trim_start();
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        if let Ok(v) = serde_json::from_str(&s) {
            return v;
        }
    }
    let numeric = key.ends_with("_id") || matches!(key, "offset" | "limit" | "timeout");
    if numeric {
        if let Ok(n) = s.parse::<i64>() {
            return json!(n);
        }
    }
    Value::String(s)
}

fn loose_i64(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn loose_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn chat_id_param(params: &Value) -> Result<i64, ApiErr> {
    params
        .get("chat_id")
        .and_then(loose_i64)
        .ok_or_else(|| bad_request("chat not found"))
}

fn check_text(text: &str, too_long: &str) -> Result<(), ApiErr> {
    if text.trim().is_empty() {
        return Err(bad_request("message text is empty"));
    }
    if text.encode_utf16().count() > MAX_TEXT_LEN {
        return Err(bad_request(too_long));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// JSON shapes

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(1)
}

/// (width, height) from a PNG's header; `None` when the bytes are no PNG.
fn png_size(bytes: &[u8]) -> Option<(u32, u32)> {
    let header = bytes.get(..24)?;
    if &header[..8] != b"\x89PNG\r\n\x1a\n" || &header[12..16] != b"IHDR" {
        return None;
    }
    let number = |at: usize| u32::from_be_bytes(header[at..at + 4].try_into().expect("4 bytes"));
    Some((number(16), number(20)))
}

/// Sets a media message's `caption` from the call, refusing what Telegram refuses (more than
/// 1024 UTF-16 code units).
fn add_caption(msg: &mut Value, params: &Value) -> Result<(), ApiErr> {
    if let Some(caption) = params.get("caption").and_then(Value::as_str) {
        if caption.encode_utf16().count() > 1024 {
            return Err(bad_request("message caption is too long"));
        }
        msg["caption"] = json!(caption);
        add_entities(msg);
    }
    Ok(())
}

fn unique_id(file_id: &str) -> String {
    format!(
        "AgAD{}",
        file_id.len() as u64 * 7919 + file_id.bytes().map(u64::from).sum::<u64>()
    )
}

fn bot_user_json() -> Value {
    json!({
        "id": BOT_ID,
        "is_bot": true,
        "first_name": BOT_FIRST_NAME,
        "username": BOT_USERNAME,
    })
}

fn me_json() -> Value {
    let mut me = bot_user_json();
    let extra = json!({
        "can_join_groups": true,
        "can_read_all_group_messages": true,
        "supports_inline_queries": false,
        "can_connect_to_business": false,
        "has_main_web_app": false,
    });
    merge(&mut me, extra);
    me
}

fn user_json(user: &User) -> Value {
    let mut v = json!({ "id": user.id, "is_bot": false, "first_name": user.first_name });
    if let Some(u) = &user.username {
        v["username"] = json!(u);
    }
    if let Some(l) = &user.language_code {
        v["language_code"] = json!(l);
    }
    v
}

fn chat_json(chat: &Chat, from: Option<&User>) -> Value {
    let mut v = json!({ "id": chat.id, "type": chat.kind });
    if chat.kind == "private" {
        if let Some(user) = from.filter(|u| u.id == chat.id) {
            v["first_name"] = json!(user.first_name);
            if let Some(u) = &user.username {
                v["username"] = json!(u);
            }
        }
    } else if let Some(title) = &chat.title {
        v["title"] = json!(title);
    }
    v
}

fn chat_member_json(status: &str, user: Value) -> Value {
    let mut v = json!({ "status": status, "user": user });
    let extra = match status {
        "creator" => json!({ "is_anonymous": false }),
        "administrator" => json!({
            "is_anonymous": false,
            "can_be_edited": false,
            "can_manage_chat": true,
            "can_change_info": true,
            "can_delete_messages": true,
            "can_manage_video_chats": true,
            "can_invite_users": true,
            "can_restrict_members": true,
            "can_promote_members": false,
            "can_pin_messages": true,
            "can_post_stories": false,
            "can_edit_stories": false,
            "can_delete_stories": false,
            "can_manage_topics": false,
        }),
        "restricted" => json!({
            "until_date": 0,
            "is_member": true,
            "can_send_messages": false,
            "can_send_audios": false,
            "can_send_documents": false,
            "can_send_photos": false,
            "can_send_videos": false,
            "can_send_video_notes": false,
            "can_send_voice_notes": false,
            "can_send_polls": false,
            "can_send_other_messages": false,
            "can_add_web_page_previews": false,
            "can_change_info": false,
            "can_invite_users": false,
            "can_pin_messages": false,
            "can_manage_topics": false,
        }),
        "kicked" => json!({ "until_date": 0 }),
        _ => json!({}),
    };
    merge(&mut v, extra);
    v
}

/// Shallow merge; `null` values remove keys.
fn merge(target: &mut Value, fields: Value) {
    let (Some(target), Value::Object(fields)) = (target.as_object_mut(), fields) else {
        return;
    };
    for (k, v) in fields {
        if v.is_null() {
            target.remove(&k);
        } else {
            target.insert(k, v);
        }
    }
}

/// Adds `entities` for `text` and `caption_entities` for `caption` when absent and non-empty.
fn add_entities(msg: &mut Value) {
    for (field, entities_field) in [("text", "entities"), ("caption", "caption_entities")] {
        if msg.get(entities_field).is_some() {
            continue;
        }
        let Some(text) = msg.get(field).and_then(Value::as_str) else {
            continue;
        };
        let entities = entities_for(text);
        if !entities.is_empty() {
            msg[entities_field] = Value::Array(entities);
        }
    }
}

fn utf16_len(s: &str) -> usize {
    s.encode_utf16().count()
}

/// What Telegram itself marks up in plain text that a bot cares about: a leading `/command`
/// (including `@botname`) and `@username` mentions. Offsets and lengths are in UTF-16 units.
fn entities_for(text: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut command_end = 0;
    if text.starts_with('/') {
        let end = text.find(char::is_whitespace).unwrap_or(text.len());
        if end > 1 {
            out.push(
                json!({ "type": "bot_command", "offset": 0, "length": utf16_len(&text[..end]) }),
            );
            command_end = end;
        }
    }
    let is_word = |c: char| c.is_alphanumeric() || c == '_';
    let mut prev: Option<char> = None;
    for (i, c) in text.char_indices() {
        if c == '@' && i >= command_end && !prev.is_some_and(is_word) {
            let name_len: usize = text[i + 1..]
                .chars()
                .take_while(|ch| ch.is_ascii_alphanumeric() || *ch == '_')
                .map(char::len_utf8)
                .sum();
            if name_len > 0 {
                out.push(json!({
                    "type": "mention",
                    "offset": utf16_len(&text[..i]),
                    "length": utf16_len(&text[i..i + 1 + name_len]),
                }));
            }
        }
        prev = Some(c);
    }
    out
}
