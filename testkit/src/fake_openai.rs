//! A fake OpenAI-compatible HTTP API, for tests.
//!
//! # Why it exists
//!
//! The services talk to a hosted LLM API through the real `async-openai`
//! client, and hosted LLM APIs cannot be reached from the test machines. So
//! instead of mocking the client (which would leave request building, JSON and
//! SSE parsing, and error mapping untested), tests point the real client at
//! this server: it speaks the same wire protocol as `api.openai.com`, answers
//! deterministically, records every request, and can be scripted to fail.
//!
//! # What it mimics
//!
//! Configure the client with [`FakeOpenAi::base_url`]
//! (`http://127.0.0.1:PORT/v1`). Served:
//!
//! - `POST /v1/chat/completions`, non-streaming: a `chat.completion` object
//!   with the same fields OpenAI sends (`id` `chatcmpl-<n>`, `object`,
//!   `created`, `model`, `choices[0].message{role,content,refusal}`,
//!   `logprobs`, `finish_reason`, `usage`, `system_fingerprint`).
//! - `POST /v1/chat/completions` with `"stream": true`: `text/event-stream`
//!   of `data: {chat.completion.chunk}` events — a role chunk (`content: ""`),
//!   one chunk per word, a chunk carrying `finish_reason`, then (only with
//!   `stream_options.include_usage`) a `"choices": []` chunk with `usage`
//!   (every earlier chunk then carries `"usage": null`, as OpenAI does), then
//!   `data: [DONE]`.
//! - `POST /v1/embeddings`: an `object: "list"` of `embedding` objects, as
//!   float arrays or, with `encoding_format: "base64"`, as base64 of
//!   little-endian `f32`s (what `Embeddings::create_base64` decodes).
//! - Errors in OpenAI's shape, `{"error":{"message","type","param","code"}}`:
//!   401 for a missing/wrong API key (when one is configured), 400 for a body
//!   that is not JSON or lacks `model`/`messages`/`input`, 404
//!   `Invalid URL (METHOD /path)` for anything else.
//!
//! # Deterministic answers (the rules tests can rely on)
//!
//! - Reply text: [`FakeOpenAiConfig::reply`] if set, otherwise
//!   `"Per [1], "` followed by the first 12 whitespace-separated words of the
//!   last `user` message (so the answer always cites source `[1]`).
//! - "Tokens" are whitespace-separated words. `prompt_tokens` is the number of
//!   words across the text of all messages (string contents, plus the `text`
//!   of `{"type":"text"}` parts of array contents; other parts count 0).
//!   `completion_tokens` is the number of words in the reply.
//! - If `max_completion_tokens` (or else `max_tokens`) is smaller than the
//!   reply's word count, the reply is cut to that many words (joined by single
//!   spaces) and `finish_reason` is `"length"`; otherwise it is `"stop"`.
//! - `model` in responses is [`FakeOpenAiConfig::response_model`] if set,
//!   otherwise the request's `model`. `n` is ignored: one choice, index 0.
//! - Embeddings: each input is lower-cased and split on whitespace, words are
//!   trimmed of non-alphanumeric edges, and every word adds a pseudo-random
//!   vector seeded by the FNV-1a hash of the word; the sum is L2-normalised.
//!   Identical inputs give identical vectors (texts sharing words also end up
//!   closer, a bonus, not a promise). Dimension: the request's `dimensions`,
//!   else [`FakeOpenAiConfig::embedding_dimension`] (default 384).
//!   `prompt_tokens` is the number of whitespace-separated words (or tokens,
//!   for token-array inputs) over all inputs.
//!
//! # Failures
//!
//! [`FakeOpenAi::push_fault`] queues a [`Fault`]; each request (to any path)
//! consumes the next queued fault before anything else happens, including the
//! API key check. Every request is recorded (see [`FakeOpenAi::requests`]),
//! faulted or not.
//!
//! Mind the client's own retries: `async-openai` 0.43's default client
//! (`Client::with_config`) retries 429 (unless the error `type` is
//! `insufficient_quota`) and every 5xx up to 3 times, backing off
//! 100/200/400 ms. One queued [`Fault::rate_limited`] or
//! [`Fault::server_error`] is therefore absorbed: queue 4 to make the caller
//! see the error (and expect 4 recorded requests). 401, [`Fault::Malformed`]
//! (a `JSONDeserialize` error) and [`Fault::Disconnect`] (hyper's
//! `IncompleteMessage`) are not retried. [`Fault::Hang`] is only ever ended by
//! the caller's own timeout: the client sets none.
//!
//! The server runs on its own thread with its own actix `System`, so it can be
//! used from `#[actix_web::test]`, `#[tokio::test]` or a plain `#[test]`.
//! It stops on [`FakeOpenAi::stop`] or on drop.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix_web::dev::ServerHandle;
use actix_web::http::StatusCode;
use actix_web::web::{self, Bytes};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer};
use serde_json::{Value, json};

/// Largest request body accepted (bigger bodies get actix's 413).
const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;

/// How many words of the question the default reply echoes.
const REPLY_ECHO_WORDS: usize = 12;

const SYSTEM_FINGERPRINT: &str = "fp_fake";

/// A scripted failure, consumed by the next request (whatever its path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this HTTP status and an OpenAI error body
    /// `{"error":{"message","type","param":null,"code"}}`.
    Status {
        status: u16,
        error_type: String,
        code: Option<String>,
        message: String,
    },
    /// Wait this long, then answer normally.
    Delay(Duration),
    /// Never answer (the connection stays open until the server stops).
    Hang,
    /// `200 OK`, `content-type: application/json`, body `{not json`.
    Malformed,
    /// Close the connection without sending any response bytes.
    Disconnect,
}

impl Fault {
    /// 429 as OpenAI sends it when a requests-per-minute limit is hit.
    pub fn rate_limited() -> Fault {
        Fault::Status {
            status: 429,
            error_type: "requests".to_owned(),
            code: Some("rate_limit_exceeded".to_owned()),
            message: "Rate limit reached for gpt-4o-mini in organization org-fake on requests \
                      per min (RPM): Limit 3, Used 3, Requested 1. Please try again in 20s. \
                      Visit https://platform.openai.com/account/rate-limits to learn more."
                .to_owned(),
        }
    }

    /// 500 as OpenAI sends it for an internal failure.
    pub fn server_error() -> Fault {
        Fault::Status {
            status: 500,
            error_type: "server_error".to_owned(),
            code: None,
            message: "The server had an error while processing your request. Sorry about that!"
                .to_owned(),
        }
    }

    /// 401 `invalid_api_key`, whatever key was sent.
    pub fn unauthorized() -> Fault {
        Fault::Status {
            status: 401,
            error_type: "invalid_request_error".to_owned(),
            code: Some("invalid_api_key".to_owned()),
            message: incorrect_key_message("sk-fake-revoked-key"),
        }
    }
}

/// How a [`FakeOpenAi`] behaves. `Default`: no key check, echo the request
/// model, 384-dimensional embeddings, the `"Per [1], ..."` reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeOpenAiConfig {
    /// If set, every request must carry `Authorization: Bearer <api_key>`.
    pub api_key: Option<String>,
    /// If set, the `model` reported in responses (else the request's).
    pub response_model: Option<String>,
    /// Embedding dimension when the request has no `dimensions`.
    pub embedding_dimension: usize,
    /// If set, the chat reply text (else `"Per [1], "` + the question).
    pub reply: Option<String>,
}

impl Default for FakeOpenAiConfig {
    fn default() -> Self {
        FakeOpenAiConfig {
            api_key: None,
            response_model: None,
            embedding_dimension: 384,
            reply: None,
        }
    }
}

/// One request as the server received it.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedRequest {
    pub method: String,
    /// The path, without the query string (e.g. `/v1/chat/completions`).
    pub path: String,
    /// Header names are lower-case; values are lossily decoded as UTF-8.
    pub headers: Vec<(String, String)>,
    /// The body parsed as JSON; `Null` if empty, a JSON string of the raw
    /// text if it was not JSON.
    pub body: Value,
}

impl RecordedRequest {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A running fake OpenAI API. Stops on [`FakeOpenAi::stop`] or drop.
pub struct FakeOpenAi {
    addr: SocketAddr,
    shared: Arc<Shared>,
    handle: ServerHandle,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for FakeOpenAi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeOpenAi")
            .field("addr", &self.addr)
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

impl FakeOpenAi {
    /// Starts a server with [`FakeOpenAiConfig::default`].
    pub fn start() -> FakeOpenAi {
        FakeOpenAi::start_with(FakeOpenAiConfig::default())
    }

    /// Starts a server on `127.0.0.1` with an OS-assigned port.
    ///
    /// # Panics
    /// If the thread cannot be spawned or the port cannot be bound.
    pub fn start_with(config: FakeOpenAiConfig) -> FakeOpenAi {
        let shared = Arc::new(Shared {
            config,
            faults: Mutex::new(VecDeque::new()),
            requests: Mutex::new(Vec::new()),
            next_id: AtomicU64::new(1),
        });
        let (tx, rx) = std::sync::mpsc::channel();
        let data = web::Data::from(Arc::clone(&shared));
        let thread = std::thread::Builder::new()
            .name("fake-openai".to_owned())
            .spawn(move || {
                actix_web::rt::System::new().block_on(async move {
                    let server = HttpServer::new(move || {
                        App::new()
                            .app_data(data.clone())
                            .app_data(web::PayloadConfig::new(MAX_BODY_BYTES))
                            .default_service(web::to(handle))
                    })
                    .workers(1)
                    .disable_signals()
                    .shutdown_timeout(1)
                    .bind(("127.0.0.1", 0));
                    let server = match server {
                        Ok(server) => server,
                        Err(err) => {
                            let _ = tx.send(Err(err));
                            return;
                        }
                    };
                    let addr = server.addrs()[0];
                    let server = server.run();
                    let _ = tx.send(Ok((addr, server.handle())));
                    if let Err(err) = server.await {
                        eprintln!("fake_openai: server error: {err}");
                    }
                });
            })
            .expect("fake_openai: cannot spawn the server thread");
        let (addr, handle) = rx
            .recv()
            .expect("fake_openai: server thread died before binding")
            .expect("fake_openai: cannot bind 127.0.0.1:0");
        FakeOpenAi {
            addr,
            shared,
            handle,
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT/v1`, what `OpenAIConfig::with_api_base` takes.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Queues a fault for the next request not already served a fault.
    pub fn push_fault(&self, fault: Fault) {
        lock(&self.shared.faults).push_back(fault);
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.requests).clone()
    }

    /// Stops the server (dropping in-flight and hanging requests) and waits
    /// for its thread to end.
    pub fn stop(self) {
        drop(self);
    }
}

impl Drop for FakeOpenAi {
    fn drop(&mut self) {
        // The stop command is sent when `stop` is called; the returned future
        // only waits for completion, which joining the thread covers.
        drop(self.handle.stop(false));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

struct Shared {
    config: FakeOpenAiConfig,
    faults: Mutex<VecDeque<Fault>>,
    requests: Mutex<Vec<RecordedRequest>>,
    next_id: AtomicU64,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The single actix handler: records, applies a fault, checks the key, routes.
async fn handle(req: HttpRequest, body: Bytes, state: web::Data<Shared>) -> HttpResponse {
    let parsed: Result<Value, ()> = if body.is_empty() {
        Ok(Value::Null)
    } else {
        serde_json::from_slice(&body).map_err(|_| ())
    };
    lock(&state.requests).push(RecordedRequest {
        method: req.method().as_str().to_owned(),
        path: req.path().to_owned(),
        headers: req
            .headers()
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_ascii_lowercase(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: parsed
            .clone()
            .unwrap_or_else(|()| Value::String(String::from_utf8_lossy(&body).into_owned())),
    });

    let fault = lock(&state.faults).pop_front();
    match fault {
        None => {}
        Some(Fault::Status {
            status,
            error_type,
            code,
            message,
        }) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return error_response(status, &message, &error_type, None, code.as_deref());
        }
        Some(Fault::Delay(delay)) => actix_web::rt::time::sleep(delay).await,
        Some(Fault::Hang) => return std::future::pending().await,
        Some(Fault::Malformed) => {
            return HttpResponse::Ok()
                .content_type("application/json")
                .body("{not json");
        }
        Some(Fault::Disconnect) => {
            // actix-http writes the status line and headers into its buffer
            // but, when the body's first poll fails, drops the connection
            // before flushing: the client sees the socket close, no bytes.
            return HttpResponse::Ok().streaming(futures_util::stream::once(async {
                Err::<Bytes, _>(std::io::Error::other("fake_openai: scripted disconnect"))
            }));
        }
    }

    if let Some(expected) = &state.config.api_key
        && let Some(rejection) = check_api_key(&req, expected)
    {
        return rejection;
    }

    let method = req.method().as_str();
    let path = req.path();
    let route = match (method, path) {
        ("POST", "/v1/chat/completions") => Route::Chat,
        ("POST", "/v1/embeddings") => Route::Embeddings,
        _ => {
            return error_response(
                StatusCode::NOT_FOUND,
                &format!("Invalid URL ({method} {path})"),
                "invalid_request_error",
                None,
                None,
            );
        }
    };
    let Ok(body) = parsed else {
        return error_response(
            StatusCode::BAD_REQUEST,
            "We could not parse the JSON body of your request. (HINT: This likely means you \
             aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, \
             but what was sent was not valid JSON. If you have trouble figuring out how to fix \
             this, please contact us through our help center at help.openai.com.)",
            "invalid_request_error",
            None,
            None,
        );
    };
    match route {
        Route::Chat => chat_completions(&state, &body),
        Route::Embeddings => embeddings(&state, &body),
    }
}

enum Route {
    Chat,
    Embeddings,
}

fn check_api_key(req: &HttpRequest, expected: &str) -> Option<HttpResponse> {
    let provided = req
        .headers()
        .get("authorization")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .and_then(|v| {
            let (scheme, key) = v.trim().split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then(|| key.trim().to_owned())
        })
        .filter(|key| !key.is_empty());
    match provided {
        Some(key) if key == expected => None,
        Some(key) => Some(error_response(
            StatusCode::UNAUTHORIZED,
            &incorrect_key_message(&key),
            "invalid_request_error",
            None,
            Some("invalid_api_key"),
        )),
        None => Some(error_response(
            StatusCode::UNAUTHORIZED,
            "You didn't provide an API key. You need to provide your API key in an \
             Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or \
             as the password field (with blank username) if you're accessing the API from your \
             browser and are prompted for a username and password. You can obtain an API key \
             from https://platform.openai.com/account/api-keys.",
            "invalid_request_error",
            None,
            None,
        )),
    }
}

fn incorrect_key_message(key: &str) -> String {
    format!(
        "Incorrect API key provided: {}. You can find your API key at \
         https://platform.openai.com/account/api-keys.",
        mask_key(key)
    )
}

/// Masks a key like OpenAI does: the first 3 and last 4 characters are kept,
/// the rest become `*`. Keys of 8 characters or fewer are shown as sent.
fn mask_key(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    if chars.len() <= 8 {
        return key.to_owned();
    }
    let mut masked: String = chars[..3].iter().collect();
    masked.extend(std::iter::repeat_n('*', chars.len() - 7));
    masked.extend(&chars[chars.len() - 4..]);
    masked
}

fn error_response(
    status: StatusCode,
    message: &str,
    error_type: &str,
    param: Option<&str>,
    code: Option<&str>,
) -> HttpResponse {
    HttpResponse::build(status).json(json!({
        "error": {
            "message": message,
            "type": error_type,
            "param": param,
            "code": code,
        }
    }))
}

fn bad_request(message: &str, param: Option<&str>, code: Option<&str>) -> HttpResponse {
    error_response(
        StatusCode::BAD_REQUEST,
        message,
        "invalid_request_error",
        param,
        code,
    )
}

fn missing_parameter(name: &str) -> HttpResponse {
    bad_request(
        &format!("Missing required parameter: '{name}'."),
        Some(name),
        Some("missing_required_parameter"),
    )
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The text of a message `content`: a string, or the `text` of its parts.
fn content_text(content: &Value) -> String {
    match content {
        Value::String(text) => text.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|part| part.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    }
}

fn word_count(text: &str) -> u64 {
    text.split_whitespace().count() as u64
}

fn chat_completions(state: &Shared, body: &Value) -> HttpResponse {
    let Some(request_model) = body.get("model").and_then(Value::as_str) else {
        return bad_request("you must provide a model parameter", None, None);
    };
    let Some(messages) = body.get("messages") else {
        return missing_parameter("messages");
    };
    let Some(messages) = messages.as_array() else {
        return bad_request(
            "Invalid type for 'messages': expected an array, but got another type instead.",
            Some("messages"),
            Some("invalid_type"),
        );
    };
    if messages.is_empty() {
        return bad_request(
            "Invalid 'messages': empty array. Expected an array with minimum length 1, but got \
             an empty array instead.",
            Some("messages"),
            Some("empty_array"),
        );
    }

    let prompt_tokens: u64 = messages
        .iter()
        .map(|m| word_count(&content_text(&m["content"])))
        .sum();
    let full_reply = match &state.config.reply {
        Some(reply) => reply.clone(),
        None => {
            let question = messages
                .iter()
                .rev()
                .find(|m| m["role"] == "user")
                .map(|m| content_text(&m["content"]))
                .unwrap_or_default();
            let echoed: Vec<&str> = question.split_whitespace().take(REPLY_ECHO_WORDS).collect();
            format!("Per [1], {}", echoed.join(" "))
                .trim_end()
                .to_owned()
        }
    };
    let limit = body
        .get("max_completion_tokens")
        .and_then(Value::as_u64)
        .or_else(|| body.get("max_tokens").and_then(Value::as_u64));
    let (reply, finish_reason) = match limit {
        Some(limit) if word_count(&full_reply) > limit => {
            let kept: Vec<&str> = full_reply
                .split_whitespace()
                .take(usize::try_from(limit).unwrap_or(usize::MAX))
                .collect();
            (kept.join(" "), "length")
        }
        _ => (full_reply, "stop"),
    };
    let completion_tokens = word_count(&reply);
    let usage = json!({
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    });
    let model = state
        .config
        .response_model
        .clone()
        .unwrap_or_else(|| request_model.to_owned());
    let id = format!("chatcmpl-{}", state.next_id.fetch_add(1, Ordering::Relaxed));
    let created = unix_now();

    if body.get("stream").and_then(Value::as_bool) == Some(true) {
        let include_usage = body["stream_options"]["include_usage"].as_bool() == Some(true);
        let events = stream_events(&StreamMeta {
            id: &id,
            created,
            model: &model,
            include_usage,
            reply: &reply,
            finish_reason,
            usage,
        });
        return HttpResponse::Ok()
            .content_type("text/event-stream; charset=utf-8")
            .insert_header(("cache-control", "no-cache"))
            .streaming(futures_util::stream::iter(
                events.into_iter().map(Ok::<Bytes, Infallible>),
            ));
    }

    HttpResponse::Ok().json(json!({
        "id": id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{
            "index": 0,
            "message": { "role": "assistant", "content": reply, "refusal": null },
            "logprobs": null,
            "finish_reason": finish_reason,
        }],
        "usage": usage,
        "system_fingerprint": SYSTEM_FINGERPRINT,
    }))
}

struct StreamMeta<'a> {
    id: &'a str,
    created: u64,
    model: &'a str,
    include_usage: bool,
    reply: &'a str,
    finish_reason: &'a str,
    usage: Value,
}

/// The SSE events of a streamed completion, `data: ...\n\n` each.
fn stream_events(meta: &StreamMeta<'_>) -> Vec<Bytes> {
    let chunk = |choices: Value, usage: Option<&Value>| {
        let mut chunk = json!({
            "id": meta.id,
            "object": "chat.completion.chunk",
            "created": meta.created,
            "model": meta.model,
            "system_fingerprint": SYSTEM_FINGERPRINT,
            "choices": choices,
        });
        if meta.include_usage {
            chunk["usage"] = usage.cloned().unwrap_or(Value::Null);
        }
        Bytes::from(format!("data: {chunk}\n\n"))
    };
    let delta_chunk = |delta: Value| {
        chunk(
            json!([{ "index": 0, "delta": delta, "logprobs": null, "finish_reason": null }]),
            None,
        )
    };

    let mut events = vec![delta_chunk(
        json!({ "role": "assistant", "content": "", "refusal": null }),
    )];
    events.extend(
        word_pieces(meta.reply)
            .into_iter()
            .map(|piece| delta_chunk(json!({ "content": piece }))),
    );
    events.push(chunk(
        json!([{ "index": 0, "delta": {}, "logprobs": null, "finish_reason": meta.finish_reason }]),
        None,
    ));
    if meta.include_usage {
        events.push(chunk(json!([]), Some(&meta.usage)));
    }
    events.push(Bytes::from_static(b"data: [DONE]\n\n"));
    events
}

/// Splits `text` into one piece per word, each carrying the whitespace before
/// it (`"Per"`, `" [1],"`, ...); concatenated, the pieces are `text` again.
fn word_pieces(text: &str) -> Vec<&str> {
    let mut ends = Vec::new();
    let mut in_word = false;
    for (i, c) in text.char_indices() {
        if c.is_whitespace() {
            if in_word {
                ends.push(i);
            }
            in_word = false;
        } else {
            in_word = true;
        }
    }
    if in_word {
        ends.push(text.len());
    }
    let Some(last) = ends.last_mut() else {
        return Vec::new();
    };
    // Trailing whitespace goes with the last word.
    *last = text.len();
    let mut start = 0;
    ends.into_iter()
        .map(|end| {
            let piece = &text[start..end];
            start = end;
            piece
        })
        .collect()
}

fn embeddings(state: &Shared, body: &Value) -> HttpResponse {
    let Some(request_model) = body.get("model").and_then(Value::as_str) else {
        return bad_request("you must provide a model parameter", None, None);
    };
    let Some(input) = body.get("input") else {
        return missing_parameter("input");
    };
    let invalid_input = || {
        bad_request(
            "'$.input' is invalid. Please check the API reference: \
             https://platform.openai.com/docs/api-reference.",
            None,
            None,
        )
    };
    // Each input as its list of "words" (token ids count as words).
    let inputs: Vec<Vec<String>> = match input {
        Value::String(text) if !text.is_empty() => vec![text_words(text)],
        Value::Array(items) if !items.is_empty() => {
            if let Some(texts) = items.iter().map(Value::as_str).collect::<Option<Vec<_>>>() {
                if texts.iter().any(|t| t.is_empty()) {
                    return invalid_input();
                }
                texts.into_iter().map(text_words).collect()
            } else if let Some(tokens) = items.iter().map(Value::as_u64).collect::<Option<Vec<_>>>()
            {
                vec![tokens.iter().map(u64::to_string).collect()]
            } else if let Some(lists) = items
                .iter()
                .map(|item| {
                    let tokens = item.as_array()?;
                    let tokens = tokens
                        .iter()
                        .map(|t| t.as_u64().map(|t| t.to_string()))
                        .collect::<Option<Vec<_>>>()?;
                    (!tokens.is_empty()).then_some(tokens)
                })
                .collect::<Option<Vec<_>>>()
            {
                lists
            } else {
                return invalid_input();
            }
        }
        _ => return invalid_input(),
    };
    let dimension = match body.get("dimensions") {
        None | Some(Value::Null) => state.config.embedding_dimension,
        Some(d) => match d.as_u64().and_then(|d| usize::try_from(d).ok()) {
            Some(d) if d > 0 => d,
            _ => {
                return bad_request(
                    "Invalid 'dimensions': integer below minimum value. Expected a value >= 1.",
                    Some("dimensions"),
                    Some("integer_below_min_value"),
                );
            }
        },
    };
    let base64 = match body.get("encoding_format").and_then(Value::as_str) {
        None | Some("float") => false,
        Some("base64") => true,
        Some(other) => {
            return bad_request(
                &format!(
                    "Invalid value for 'encoding_format': '{other}'. Supported values are: \
                     'float' and 'base64'."
                ),
                Some("encoding_format"),
                Some("invalid_value"),
            );
        }
    };

    let prompt_tokens: u64 = inputs.iter().map(|words| words.len() as u64).sum();
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(index, words)| {
            let vector = embed(words, dimension);
            let embedding = if base64 {
                let bytes: Vec<u8> = vector.iter().flat_map(|x| x.to_le_bytes()).collect();
                Value::String(base64_encode(&bytes))
            } else {
                json!(vector)
            };
            json!({ "object": "embedding", "index": index, "embedding": embedding })
        })
        .collect();
    let model = state
        .config
        .response_model
        .clone()
        .unwrap_or_else(|| request_model.to_owned());
    HttpResponse::Ok().json(json!({
        "object": "list",
        "data": data,
        "model": model,
        "usage": { "prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens },
    }))
}

/// The whitespace-separated words of `text`, as raw strings (for counting).
fn text_words(text: &str) -> Vec<String> {
    text.split_whitespace().map(str::to_owned).collect()
}

/// A deterministic L2-normalised vector: the sum of one pseudo-random vector
/// per lower-cased, edge-trimmed word (the empty word if there are none).
fn embed(words: &[String], dimension: usize) -> Vec<f32> {
    let mut sum = vec![0.0f64; dimension];
    let mut add = |word: &str| {
        let mut state = fnv1a(word.as_bytes());
        for x in &mut sum {
            // Uniform in [-1, 1) from the top 53 bits.
            *x += (splitmix64(&mut state) >> 11) as f64 / (1u64 << 52) as f64 - 1.0;
        }
    };
    let mut any = false;
    for word in words {
        let word = word.to_lowercase();
        let word = word.trim_matches(|c: char| !c.is_alphanumeric());
        if !word.is_empty() {
            add(word);
            any = true;
        }
    }
    if !any {
        add("");
    }
    let norm = sum.iter().map(|x| x * x).sum::<f64>().sqrt();
    if norm == 0.0 || !norm.is_finite() {
        let mut unit = vec![0.0; dimension];
        unit[0] = 1.0;
        return unit;
    }
    sum.iter().map(|x| (x / norm) as f32).collect()
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Standard base64 (RFC 4648 alphabet, `=` padding).
fn base64_encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b1 = chunk.get(1).copied().unwrap_or(0);
        let b2 = chunk.get(2).copied().unwrap_or(0);
        let n = (u32::from(chunk[0]) << 16) | (u32::from(b1) << 8) | u32::from(b2);
        let sextet = |shift: u32| char::from(ALPHABET[((n >> shift) & 63) as usize]);
        out.push(sextet(18));
        out.push(sextet(12));
        out.push(if chunk.len() > 1 { sextet(6) } else { '=' });
        out.push(if chunk.len() > 2 { sextet(0) } else { '=' });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::time::Instant;

    struct Raw {
        status: u16,
        headers: Vec<(String, String)>,
        body: String,
    }

    impl Raw {
        fn json(&self) -> Value {
            serde_json::from_str(&self.body)
                .unwrap_or_else(|e| panic!("body is not JSON ({e}): {:?}", self.body))
        }

        fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        }
    }

    /// Sends one HTTP/1.1 request with `Connection: close`; returns all the
    /// bytes the server sent before closing.
    fn send_raw(
        addr: SocketAddr,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
        timeout: Duration,
    ) -> std::io::Result<Vec<u8>> {
        let mut stream = TcpStream::connect(addr)?;
        stream.set_read_timeout(Some(timeout))?;
        let mut request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
             Content-Length: {}\r\n",
            body.len()
        );
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        request.push_str(body);
        stream.write_all(request.as_bytes())?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response)?;
        Ok(response)
    }

    fn parse(raw: &[u8]) -> Raw {
        let text = String::from_utf8(raw.to_vec()).expect("response is UTF-8");
        let (head, body) = text.split_once("\r\n\r\n").expect("response has a head");
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap();
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
        let headers: Vec<(String, String)> = lines
            .map(|l| {
                let (n, v) = l.split_once(':').expect("header line");
                (n.trim().to_ascii_lowercase(), v.trim().to_owned())
            })
            .collect();
        let chunked = headers
            .iter()
            .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"));
        let body = if chunked {
            dechunk(body)
        } else {
            body.to_owned()
        };
        Raw {
            status,
            headers,
            body,
        }
    }

    fn dechunk(mut rest: &str) -> String {
        let mut out = String::new();
        loop {
            let (size, after) = rest.split_once("\r\n").expect("chunk size line");
            let size = usize::from_str_radix(size.trim(), 16).expect("hex chunk size");
            if size == 0 {
                return out;
            }
            out.push_str(&after[..size]);
            rest = after[size..].strip_prefix("\r\n").expect("chunk CRLF");
        }
    }

    fn request(
        server: &FakeOpenAi,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Raw {
        let raw = send_raw(
            server.addr(),
            method,
            path,
            headers,
            body,
            Duration::from_secs(10),
        )
        .expect("request failed");
        parse(&raw)
    }

    fn post(server: &FakeOpenAi, path: &str, body: &Value) -> Raw {
        request(
            server,
            "POST",
            path,
            &[("Content-Type", "application/json")],
            &body.to_string(),
        )
    }

    fn chat_body() -> Value {
        json!({
            "model": "gpt-4o-mini",
            "messages": [
                { "role": "system", "content": "Answer from the sources only." },
                { "role": "user", "content": "What is the capital of France?" }
            ],
            "temperature": 0.0
        })
    }

    fn base64_decode(text: &str) -> Vec<u8> {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        assert_eq!(text.len() % 4, 0, "base64 length must be a multiple of 4");
        let mut bits = 0u32;
        let mut nbits = 0;
        let mut out = Vec::new();
        for c in text.bytes().filter(|&c| c != b'=') {
            let v = ALPHABET.iter().position(|&a| a == c).expect("base64 char") as u32;
            bits = (bits << 6) | v;
            nbits += 6;
            if nbits >= 8 {
                nbits -= 8;
                out.push((bits >> nbits) as u8);
                bits &= (1 << nbits) - 1;
            }
        }
        out
    }

    fn sse_data(body: &str) -> Vec<String> {
        assert!(
            body.ends_with("\n\n"),
            "SSE body must end with a blank line"
        );
        body.split("\n\n")
            .filter(|e| !e.is_empty())
            .map(|e| {
                e.strip_prefix("data: ")
                    .unwrap_or_else(|| panic!("event without data: {e:?}"))
                    .to_owned()
            })
            .collect()
    }

    #[test]
    fn chat_completion_has_openai_shape_and_usage() {
        let server = FakeOpenAi::start();
        let res = post(&server, "/v1/chat/completions", &chat_body());
        assert_eq!(res.status, 200);
        assert!(
            res.header("content-type")
                .unwrap()
                .starts_with("application/json")
        );
        let v = res.json();
        let id = v["id"].as_str().unwrap();
        assert!(id.starts_with("chatcmpl-"), "{id}");
        assert_eq!(v["object"], "chat.completion");
        assert!(v["created"].as_u64().unwrap() > 1_700_000_000);
        assert_eq!(v["model"], "gpt-4o-mini");
        assert_eq!(v["system_fingerprint"], "fp_fake");
        let choices = v["choices"].as_array().unwrap();
        assert_eq!(choices.len(), 1);
        assert_eq!(
            choices[0],
            json!({
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "Per [1], What is the capital of France?",
                    "refusal": null
                },
                "logprobs": null,
                "finish_reason": "stop"
            })
        );
        // 5 system words + 6 user words; 8 reply words.
        assert_eq!(
            v["usage"],
            json!({ "prompt_tokens": 11, "completion_tokens": 8, "total_tokens": 19 })
        );

        // Ids are distinct per completion.
        let again = post(&server, "/v1/chat/completions", &chat_body()).json();
        assert_ne!(again["id"], v["id"]);
        server.stop();
    }

    #[test]
    fn chat_content_parts_response_model_and_echo_limit() {
        let server = FakeOpenAi::start_with(FakeOpenAiConfig {
            response_model: Some("gpt-4o-mini-2024-07-18".to_owned()),
            ..FakeOpenAiConfig::default()
        });
        let question = "one two three four five six seven eight nine ten eleven twelve thirteen";
        let body = json!({
            "model": "gpt-4o-mini",
            "messages": [
                { "role": "user", "content": "earlier question" },
                { "role": "assistant", "content": null },
                { "role": "user", "content": [
                    { "type": "text", "text": question },
                    { "type": "image_url", "image_url": { "url": "http://x/y.png" } }
                ] }
            ]
        });
        let v = post(&server, "/v1/chat/completions", &body).json();
        assert_eq!(v["model"], "gpt-4o-mini-2024-07-18");
        assert_eq!(
            v["choices"][0]["message"]["content"],
            "Per [1], one two three four five six seven eight nine ten eleven twelve"
        );
        assert_eq!(
            v["usage"],
            json!({ "prompt_tokens": 15, "completion_tokens": 14, "total_tokens": 29 })
        );
    }

    #[test]
    fn chat_truncates_to_max_tokens() {
        let server = FakeOpenAi::start_with(FakeOpenAiConfig {
            reply: Some("alpha beta\ngamma delta epsilon".to_owned()),
            ..FakeOpenAiConfig::default()
        });
        let mut body = chat_body();
        body["max_tokens"] = json!(3);
        let v = post(&server, "/v1/chat/completions", &body).json();
        assert_eq!(v["choices"][0]["message"]["content"], "alpha beta gamma");
        assert_eq!(v["choices"][0]["finish_reason"], "length");
        assert_eq!(v["usage"]["completion_tokens"], 3);
        assert_eq!(v["usage"]["total_tokens"], 14);

        // max_completion_tokens takes precedence; a large limit does not cut.
        body["max_completion_tokens"] = json!(100);
        let v = post(&server, "/v1/chat/completions", &body).json();
        assert_eq!(
            v["choices"][0]["message"]["content"],
            "alpha beta\ngamma delta epsilon"
        );
        assert_eq!(v["choices"][0]["finish_reason"], "stop");
        assert_eq!(v["usage"]["completion_tokens"], 5);
    }

    #[test]
    fn chat_stream_sends_chunks_usage_and_done() {
        let server = FakeOpenAi::start();
        let mut body = chat_body();
        body["stream"] = json!(true);
        body["stream_options"] = json!({ "include_usage": true });
        let res = post(&server, "/v1/chat/completions", &body);
        assert_eq!(res.status, 200);
        assert!(
            res.header("content-type")
                .unwrap()
                .starts_with("text/event-stream")
        );
        let events = sse_data(&res.body);
        assert_eq!(events.last().unwrap(), "[DONE]");
        let chunks: Vec<Value> = events[..events.len() - 1]
            .iter()
            .map(|e| serde_json::from_str(e).unwrap())
            .collect();
        // role + 8 words + finish + usage
        assert_eq!(chunks.len(), 11, "{chunks:#?}");
        let id = chunks[0]["id"].clone();
        for c in &chunks {
            assert_eq!(c["id"], id);
            assert_eq!(c["object"], "chat.completion.chunk");
            assert_eq!(c["model"], "gpt-4o-mini");
            assert!(c["created"].as_u64().is_some());
        }
        assert_eq!(
            chunks[0]["choices"],
            json!([{ "index": 0, "delta": { "role": "assistant", "content": "", "refusal": null },
                     "logprobs": null, "finish_reason": null }])
        );
        let words: Vec<&str> = chunks[1..9]
            .iter()
            .map(|c| {
                assert_eq!(c["choices"][0]["finish_reason"], Value::Null);
                assert_eq!(c["choices"][0]["index"], 0);
                assert_eq!(c["usage"], Value::Null);
                c["choices"][0]["delta"]["content"].as_str().unwrap()
            })
            .collect();
        assert_eq!(words[0], "Per");
        assert_eq!(words[1], " [1],");
        assert_eq!(words.concat(), "Per [1], What is the capital of France?");
        assert_eq!(
            chunks[9]["choices"],
            json!([{ "index": 0, "delta": {}, "logprobs": null, "finish_reason": "stop" }])
        );
        assert_eq!(chunks[10]["choices"], json!([]));
        assert_eq!(
            chunks[10]["usage"],
            json!({ "prompt_tokens": 11, "completion_tokens": 8, "total_tokens": 19 })
        );
    }

    #[test]
    fn chat_stream_without_usage_and_with_length_limit() {
        let server = FakeOpenAi::start();
        let mut body = chat_body();
        body["stream"] = json!(true);
        body["max_tokens"] = json!(2);
        let events = sse_data(&post(&server, "/v1/chat/completions", &body).body);
        assert_eq!(events.len(), 5, "{events:#?}"); // role, 2 words, finish, DONE
        let chunks: Vec<Value> = events[..4]
            .iter()
            .map(|e| serde_json::from_str(e).unwrap())
            .collect();
        assert!(chunks.iter().all(|c| c.get("usage").is_none()));
        assert_eq!(chunks[3]["choices"][0]["finish_reason"], "length");
        assert_eq!(events[4], "[DONE]");
    }

    #[test]
    fn word_pieces_reassemble() {
        assert_eq!(word_pieces("a b  c"), vec!["a", " b", "  c"]);
        assert_eq!(word_pieces(" a\nb "), vec![" a", "\nb "]);
        assert!(word_pieces("   ").is_empty());
        assert!(word_pieces("").is_empty());
    }

    #[test]
    fn embeddings_are_normalised_deterministic_and_sized() {
        let server = FakeOpenAi::start();
        let body = json!({
            "model": "text-embedding-3-small",
            "input": ["The Eiffel Tower is in Paris", "Rust is a language", "the eiffel tower IS in paris!"]
        });
        let res = post(&server, "/v1/embeddings", &body);
        assert_eq!(res.status, 200);
        let v = res.json();
        assert_eq!(v["object"], "list");
        assert_eq!(v["model"], "text-embedding-3-small");
        assert_eq!(
            v["usage"],
            json!({ "prompt_tokens": 16, "total_tokens": 16 })
        );
        let data = v["data"].as_array().unwrap();
        assert_eq!(data.len(), 3);
        let vectors: Vec<Vec<f64>> = data
            .iter()
            .enumerate()
            .map(|(i, d)| {
                assert_eq!(d["object"], "embedding");
                assert_eq!(d["index"], i);
                d["embedding"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_f64().unwrap())
                    .collect()
            })
            .collect();
        for vector in &vectors {
            assert_eq!(vector.len(), 384);
            let norm = vector.iter().map(|x| x * x).sum::<f64>().sqrt();
            assert!((norm - 1.0).abs() < 1e-4, "norm {norm}");
        }
        assert_ne!(vectors[0], vectors[1]);
        // Case and edge punctuation do not matter.
        assert_eq!(vectors[0], vectors[2]);

        // Deterministic across requests and servers; `dimensions` honoured.
        let other = FakeOpenAi::start_with(FakeOpenAiConfig {
            embedding_dimension: 8,
            ..FakeOpenAiConfig::default()
        });
        let single = json!({ "model": "m", "input": "The Eiffel Tower is in Paris" });
        let again = post(&server, "/v1/embeddings", &single).json();
        assert_eq!(again["data"][0]["embedding"], data[0]["embedding"]);
        let small = post(&other, "/v1/embeddings", &single).json();
        assert_eq!(small["data"][0]["embedding"].as_array().unwrap().len(), 8);
        let mut sized = single.clone();
        sized["dimensions"] = json!(16);
        let sized = post(&other, "/v1/embeddings", &sized).json();
        assert_eq!(sized["data"][0]["embedding"].as_array().unwrap().len(), 16);

        // Token-array input is accepted.
        let tokens = json!({ "model": "m", "input": [[1, 2, 3], [4]] });
        let tokens = post(&server, "/v1/embeddings", &tokens).json();
        assert_eq!(tokens["data"].as_array().unwrap().len(), 2);
        assert_eq!(tokens["usage"]["prompt_tokens"], 4);
    }

    #[test]
    fn embeddings_base64_decodes_to_the_float_vector() {
        let server = FakeOpenAi::start();
        let floats = post(
            &server,
            "/v1/embeddings",
            &json!({ "model": "m", "input": "hello world", "dimensions": 5 }),
        )
        .json();
        let b64 = post(
            &server,
            "/v1/embeddings",
            &json!({ "model": "m", "input": "hello world", "dimensions": 5,
                     "encoding_format": "base64" }),
        )
        .json();
        let text = b64["data"][0]["embedding"].as_str().expect("base64 string");
        let bytes = base64_decode(text);
        assert_eq!(bytes.len(), 20);
        let decoded: Vec<f32> = bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let expected: Vec<f32> = floats["data"][0]["embedding"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap() as f32)
            .collect();
        assert_eq!(decoded, expected);
    }

    #[test]
    fn base64_encode_matches_rfc4648_vectors() {
        for (input, output) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64_encode(input.as_bytes()), output);
        }
        assert_eq!(base64_encode(&[0xfb, 0xff, 0xbf]), "+/+/");
    }

    #[test]
    fn wrong_or_missing_api_key_gets_401() {
        let key = "sk-test-0123456789abcdefxyz1";
        let server = FakeOpenAi::start_with(FakeOpenAiConfig {
            api_key: Some(key.to_owned()),
            ..FakeOpenAiConfig::default()
        });
        let body = chat_body().to_string();

        let wrong = request(
            &server,
            "POST",
            "/v1/chat/completions",
            &[("Authorization", "Bearer sk-wrong-key-abcdefghijklwxyz")],
            &body,
        );
        assert_eq!(wrong.status, 401);
        assert_eq!(
            wrong.json(),
            json!({ "error": {
                "message": "Incorrect API key provided: sk-**********************wxyz. You can \
                            find your API key at https://platform.openai.com/account/api-keys.",
                "type": "invalid_request_error",
                "param": null,
                "code": "invalid_api_key"
            } })
        );

        let missing = request(&server, "POST", "/v1/embeddings", &[], "{}");
        assert_eq!(missing.status, 401);
        let m = missing.json();
        assert!(
            m["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("You didn't provide an API key.")
        );
        assert_eq!(m["error"]["type"], "invalid_request_error");
        assert_eq!(m["error"]["param"], Value::Null);
        assert_eq!(m["error"]["code"], Value::Null);

        let right = request(
            &server,
            "POST",
            "/v1/chat/completions",
            &[("Authorization", &format!("Bearer {key}"))],
            &body,
        );
        assert_eq!(right.status, 200);
    }

    #[test]
    fn mask_key_keeps_three_and_four() {
        assert_eq!(mask_key("sk-abcdefghxyz1"), "sk-********xyz1");
        assert_eq!(mask_key("short"), "short");
    }

    #[test]
    fn unknown_route_and_bad_bodies_get_openai_errors() {
        let server = FakeOpenAi::start();
        let res = request(&server, "GET", "/v1/models/nope", &[], "");
        assert_eq!(res.status, 404);
        assert_eq!(
            res.json(),
            json!({ "error": { "message": "Invalid URL (GET /v1/models/nope)",
                               "type": "invalid_request_error", "param": null, "code": null } })
        );
        let res = request(&server, "GET", "/v1/chat/completions", &[], "");
        assert_eq!(res.status, 404);

        let res = request(&server, "POST", "/v1/chat/completions", &[], "{oops");
        assert_eq!(res.status, 400);
        assert_eq!(res.json()["error"]["type"], "invalid_request_error");

        let res = post(&server, "/v1/chat/completions", &json!({ "model": "m" }));
        assert_eq!(res.status, 400);
        assert_eq!(res.json()["error"]["param"], "messages");
        assert_eq!(res.json()["error"]["code"], "missing_required_parameter");

        let res = post(
            &server,
            "/v1/embeddings",
            &json!({ "model": "m", "input": "" }),
        );
        assert_eq!(res.status, 400);
    }

    #[test]
    fn status_faults_are_consumed_in_order() {
        let server = FakeOpenAi::start();
        server.push_fault(Fault::rate_limited());
        server.push_fault(Fault::server_error());
        server.push_fault(Fault::unauthorized());
        server.push_fault(Fault::Status {
            status: 503,
            error_type: "overloaded".to_owned(),
            code: Some("busy".to_owned()),
            message: "try later".to_owned(),
        });

        let r = post(&server, "/v1/chat/completions", &chat_body());
        assert_eq!(r.status, 429);
        let e = r.json();
        assert_eq!(e["error"]["type"], "requests");
        assert_eq!(e["error"]["code"], "rate_limit_exceeded");
        assert_eq!(e["error"]["param"], Value::Null);
        assert!(
            e["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("Rate limit reached for ")
        );

        // The next fault applies to whichever endpoint is hit.
        let r = post(
            &server,
            "/v1/embeddings",
            &json!({ "model": "m", "input": "x" }),
        );
        assert_eq!(r.status, 500);
        assert_eq!(r.json()["error"]["type"], "server_error");
        assert_eq!(r.json()["error"]["code"], Value::Null);

        let r = post(&server, "/v1/chat/completions", &chat_body());
        assert_eq!(r.status, 401);
        assert_eq!(r.json()["error"]["code"], "invalid_api_key");

        let r = post(&server, "/v1/chat/completions", &chat_body());
        assert_eq!(r.status, 503);
        assert_eq!(
            r.json(),
            json!({ "error": { "message": "try later", "type": "overloaded",
                               "param": null, "code": "busy" } })
        );

        let r = post(&server, "/v1/chat/completions", &chat_body());
        assert_eq!(r.status, 200, "queue exhausted: normal answer");
    }

    #[test]
    fn delay_fault_answers_late() {
        let server = FakeOpenAi::start();
        server.push_fault(Fault::Delay(Duration::from_millis(400)));
        let started = Instant::now();
        let r = post(&server, "/v1/chat/completions", &chat_body());
        assert!(started.elapsed() >= Duration::from_millis(400));
        assert_eq!(r.status, 200);
        assert_eq!(r.json()["object"], "chat.completion");
    }

    #[test]
    fn malformed_fault_sends_broken_json() {
        let server = FakeOpenAi::start();
        server.push_fault(Fault::Malformed);
        let r = post(&server, "/v1/chat/completions", &chat_body());
        assert_eq!(r.status, 200);
        assert!(
            r.header("content-type")
                .unwrap()
                .starts_with("application/json")
        );
        assert_eq!(r.body, "{not json");
    }

    #[test]
    fn disconnect_fault_closes_without_response() {
        let server = FakeOpenAi::start();
        server.push_fault(Fault::Disconnect);
        let body = chat_body().to_string();
        let raw = send_raw(
            server.addr(),
            "POST",
            "/v1/chat/completions",
            &[],
            &body,
            Duration::from_secs(10),
        );
        match raw {
            Ok(bytes) => assert!(
                bytes.is_empty(),
                "got {:?}",
                String::from_utf8_lossy(&bytes)
            ),
            Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}"),
        }
        // The server still works afterwards.
        assert_eq!(
            post(&server, "/v1/chat/completions", &chat_body()).status,
            200
        );
        assert_eq!(server.requests().len(), 2);
    }

    #[test]
    fn hang_fault_never_answers_until_stop() {
        let server = FakeOpenAi::start();
        server.push_fault(Fault::Hang);
        let addr = server.addr();
        let body = chat_body().to_string();
        let hung = std::thread::spawn(move || {
            send_raw(
                addr,
                "POST",
                "/v1/chat/completions",
                &[],
                &body,
                Duration::from_secs(20),
            )
        });
        // Meanwhile, other requests are served.
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(
            post(&server, "/v1/chat/completions", &chat_body()).status,
            200
        );
        assert!(
            !hung.is_finished(),
            "the hung request must still be waiting"
        );

        let stopping = Instant::now();
        server.stop();
        assert!(
            stopping.elapsed() < Duration::from_secs(5),
            "stop must not wait for the hang"
        );
        let outcome = hung.join().unwrap();
        match outcome {
            Ok(bytes) => assert!(
                bytes.is_empty(),
                "got {:?}",
                String::from_utf8_lossy(&bytes)
            ),
            Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}"),
        }
    }

    #[test]
    fn requests_are_recorded_with_headers_and_bodies() {
        let server = FakeOpenAi::start_with(FakeOpenAiConfig {
            api_key: Some("sk-right".to_owned()),
            ..FakeOpenAiConfig::default()
        });
        server.push_fault(Fault::server_error());
        let chat = chat_body();
        request(
            &server,
            "POST",
            "/v1/chat/completions?x=1",
            &[
                ("Authorization", "Bearer sk-right"),
                ("X-Trace-Id", "abc"),
                (
                    "traceparent",
                    "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
                ),
            ],
            &chat.to_string(),
        );
        request(&server, "POST", "/v1/embeddings", &[], "not json");
        request(&server, "GET", "/v1/unknown", &[], "");

        let recorded = server.requests();
        assert_eq!(recorded.len(), 3);
        assert_eq!(recorded[0].method, "POST");
        assert_eq!(recorded[0].path, "/v1/chat/completions");
        assert_eq!(recorded[0].body, chat);
        assert_eq!(recorded[0].header("authorization"), Some("Bearer sk-right"));
        assert_eq!(recorded[0].header("X-TRACE-ID"), Some("abc"));
        assert!(
            recorded[0]
                .headers
                .iter()
                .any(|(n, v)| n == "traceparent" && v.starts_with("00-0af7"))
        );
        assert!(
            recorded[0]
                .headers
                .iter()
                .all(|(n, _)| *n == n.to_ascii_lowercase())
        );
        assert_eq!(recorded[1].path, "/v1/embeddings");
        assert_eq!(recorded[1].body, json!("not json"));
        assert_eq!(recorded[2].method, "GET");
        assert_eq!(recorded[2].body, Value::Null);
    }

    #[tokio::test]
    async fn works_inside_a_tokio_runtime() {
        let server = FakeOpenAi::start();
        let addr = server.addr();
        assert_eq!(server.base_url(), format!("http://{addr}/v1"));
        let status = tokio::task::spawn_blocking(move || {
            let raw = send_raw(
                addr,
                "POST",
                "/v1/embeddings",
                &[],
                r#"{"model":"m","input":"hi"}"#,
                Duration::from_secs(10),
            )
            .unwrap();
            parse(&raw).status
        })
        .await
        .unwrap();
        assert_eq!(status, 200);
        server.stop();
    }
}
