//! The real `w3c-test-service` binary, driven the way the W3C suite drives
//! it: `POST /test` with inbound `traceparent`/`tracestate`/`baggage` and a
//! list of callback URLs. The callbacks land on a raw-TCP HTTP recorder in
//! this test, which keeps each request's headers exactly as they crossed the
//! wire. (Spans are exported to a second recorder, so nothing times out.)

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_ID: &str = "00f067aa0ba902b7";
const WAIT: Duration = Duration::from_secs(10);

/// One request the recorder received.
#[derive(Debug)]
struct Recorded {
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Recorded {
    /// Every value of header `name` (names are compared case-insensitively).
    fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The value of header `name`, which must occur at most once.
    fn one(&self, name: &str) -> Option<&str> {
        let values = self.all(name);
        assert!(
            values.len() <= 1,
            "{name} sent {} times: {values:?}",
            values.len()
        );
        values.first().copied()
    }

    /// `traceparent` split into (version, trace-id, parent-id, flags).
    fn traceparent(&self) -> (String, String, String, String) {
        let value = self.one("traceparent").expect("a traceparent");
        let parts: Vec<&str> = value.split('-').collect();
        assert_eq!(parts.len(), 4, "{value}");
        let lower_hex = |s: &str, len: usize| {
            s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        };
        assert!(
            parts[0] == "00"
                && lower_hex(parts[1], 32)
                && lower_hex(parts[2], 16)
                && lower_hex(parts[3], 2),
            "malformed traceparent {value}"
        );
        (
            parts[0].to_owned(),
            parts[1].to_owned(),
            parts[2].to_owned(),
            parts[3].to_owned(),
        )
    }
}

/// A tiny HTTP/1.1 server on std::net: records each request, answers
/// `200 OK` with an empty body, and keeps connections alive (awc reuses them).
struct Recorder {
    addr: SocketAddr,
    requests: mpsc::Receiver<Recorded>,
}

impl Recorder {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind recorder");
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                let tx = tx.clone();
                thread::spawn(move || serve(stream, &tx));
            }
        });
        Self { addr, requests: rx }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The next `n` requests, in arrival order.
    fn take(&self, n: usize) -> Vec<Recorded> {
        (0..n)
            .map(|i| {
                self.requests
                    .recv_timeout(WAIT)
                    .unwrap_or_else(|_| panic!("request {i} of {n} never arrived"))
            })
            .collect()
    }

    /// No further request arrives within a short wait.
    fn assert_no_more(&self) {
        if let Ok(extra) = self.requests.recv_timeout(Duration::from_millis(200)) {
            panic!("unexpected extra request: {extra:?}");
        }
    }
}

fn serve(stream: TcpStream, tx: &mpsc::Sender<Recorded>) {
    let mut writer = stream.try_clone().expect("clone stream");
    let mut reader = BufReader::new(stream);
    loop {
        let mut request_line = String::new();
        match reader.read_line(&mut request_line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let path = request_line
            .split_whitespace()
            .nth(1)
            .unwrap_or("")
            .to_owned();
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let line = line.trim_end_matches(['\r', '\n']);
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                headers.push((name.to_ascii_lowercase(), value.trim().to_owned()));
            }
        }
        let length = headers
            .iter()
            .find(|(name, _)| name == "content-length")
            .and_then(|(_, value)| value.parse::<usize>().ok())
            .unwrap_or(0);
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        // The sink for exported spans drops its receiver; that is fine.
        let _ = tx.send(Recorded {
            path,
            headers,
            body,
        });
        if writer
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
            .is_err()
        {
            return;
        }
    }
}

/// The service binary, killed on drop.
struct Service {
    child: Child,
    port: u16,
    _otlp_sink: Recorder,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Service {
    /// Start on a free port (`LISTEN_ADDR=127.0.0.1:0`; the port is read
    /// from the service's JSON startup log, so there is no port race).
    fn start() -> Self {
        let otlp_sink = Recorder::start();
        let mut command = Command::new(env!("CARGO_BIN_EXE_w3c-test-service"));
        for (name, _) in std::env::vars() {
            if name.starts_with("OTEL_") || name == "RUST_LOG" || name == "LOG_FORMAT" {
                command.env_remove(name);
            }
        }
        let mut child = command
            .env("LISTEN_ADDR", "127.0.0.1:0")
            .env("LOG_FORMAT", "json")
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", otlp_sink.url(""))
            .env("OTEL_BSP_SCHEDULE_DELAY", "50")
            .env("CALLBACK_TIMEOUT_MS", "2000")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start w3c-test-service");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + WAIT;
        let mut seen = Vec::new();
        let port = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = rx
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("service did not start:\n{}", seen.join("\n")));
            let port = serde_json::from_str::<Value>(&line)
                .ok()
                .and_then(|log| log["fields"]["port"].as_u64());
            seen.push(line);
            if let Some(port) = port {
                break u16::try_from(port).unwrap();
            }
        };
        // Keep draining stderr so the service never blocks on a full pipe.
        thread::spawn(move || while rx.recv().is_ok() {});
        Self {
            child,
            port,
            _otlp_sink: otlp_sink,
        }
    }

    /// `POST /test` over a raw socket, so headers go out exactly as given
    /// (repeated names included). Returns the status and the JSON body.
    fn post_test(&self, headers: &[(&str, &str)], body: &Value) -> (u16, Value) {
        let body = body.to_string();
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        stream.set_read_timeout(Some(WAIT)).unwrap();
        let mut request = format!(
            "POST /test HTTP/1.1\r\nhost: 127.0.0.1:{}\r\ncontent-type: application/json\r\n\
             content-length: {}\r\nconnection: close\r\n",
            self.port,
            body.len()
        );
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        request.push_str(&body);
        stream.write_all(request.as_bytes()).expect("send");
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("read response");
        let status = response
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad response: {response}"));
        let (_, body) = response.split_once("\r\n\r\n").expect("a body");
        (status, serde_json::from_str(body).unwrap_or(Value::Null))
    }
}

/// Ask for one callback per `arguments` element, to `/callback/{i}`.
fn calls(recorder: &Recorder, arguments: &[Value]) -> Value {
    Value::Array(
        arguments
            .iter()
            .enumerate()
            .map(|(i, args)| json!({"url": recorder.url(&format!("/callback/{i}")), "arguments": args}))
            .collect(),
    )
}

fn baggage_members(recorded: &Recorded) -> BTreeSet<String> {
    recorded
        .one("baggage")
        .map(|b| b.split(',').map(str::to_owned).collect())
        .unwrap_or_default()
}

#[test]
fn each_call_joins_the_trace_with_its_own_span_id_and_forwards_state_and_baggage() {
    let service = Service::start();
    let recorder = Recorder::start();
    // Sampled, not sampled, and the same with the random flag (Level 2),
    // which must stay set on every call of the trace, sampled or not.
    for flags in ["01", "00", "03", "02"] {
        let traceparent = format!("00-{TRACE_ID}-{PARENT_ID}-{flags}");
        let arguments = [json!([]), json!({"nested": [1, 2]})];
        let (status, body) = service.post_test(
            &[
                ("traceparent", &traceparent),
                // Two fields, OWS and an empty member: combined and cleaned.
                ("tracestate", "congo=t61rcWkgMzE , ,rojo=00f067aa0ba902b7"),
                ("tracestate", "foo=1"),
                ("baggage", "user_id=alice,tenant=acme"),
            ],
            &calls(&recorder, &arguments),
        );
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["calls"][0]["status"], 200, "{body}");
        assert_eq!(body["calls"][1]["status"], 200, "{body}");

        let got = recorder.take(2);
        recorder.assert_no_more();
        let mut parent_ids = BTreeSet::new();
        for (i, (request, args)) in got.iter().zip(&arguments).enumerate() {
            assert_eq!(request.path, format!("/callback/{i}"), "calls in order");
            assert_eq!(
                serde_json::from_slice::<Value>(&request.body).unwrap(),
                *args,
                "arguments are the body"
            );
            let (_, trace_id, parent_id, got_flags) = request.traceparent();
            assert_eq!(trace_id, TRACE_ID, "joined the caller's trace");
            assert_ne!(parent_id, PARENT_ID, "parent-id is our CLIENT span's");
            assert_eq!(got_flags, flags, "sampled and random flags preserved");
            parent_ids.insert(parent_id);
            assert_eq!(
                request.one("tracestate"),
                Some("congo=t61rcWkgMzE,rojo=00f067aa0ba902b7,foo=1")
            );
            assert_eq!(
                baggage_members(request),
                BTreeSet::from(["tenant=acme".to_owned(), "user_id=alice".to_owned()])
            );
        }
        assert_eq!(parent_ids.len(), 2, "each call is its own span");
    }
}

/// The shared outbound helper sends only what the next hop needs: nothing
/// a caller sent (credentials, cookies, forwarding or custom headers) leaks
/// to an internal service; only the three propagation headers cross.
#[test]
fn outbound_calls_carry_only_the_headers_the_next_hop_needs() {
    let service = Service::start();
    let recorder = Recorder::start();
    let (status, body) = service.post_test(
        &[
            ("traceparent", &format!("00-{TRACE_ID}-{PARENT_ID}-01")),
            ("baggage", "user_id=alice"),
            ("authorization", "Bearer caller-secret-token"),
            ("cookie", "session=abc123"),
            ("x-forwarded-for", "203.0.113.9"),
            ("x-custom", "anything"),
        ],
        &calls(&recorder, &[json!({"a": 1})]),
    );
    assert_eq!(status, 200, "{body}");
    let got = recorder.take(1);
    let names: BTreeSet<&str> = got[0]
        .headers
        .iter()
        .map(|(name, _)| name.as_str())
        .collect();
    let allowed = BTreeSet::from([
        "host",
        "content-type",
        "content-length",
        "traceparent",
        "tracestate",
        "baggage",
        "date",
        "user-agent",
        "accept-encoding",
    ]);
    assert!(
        names.is_subset(&allowed),
        "unexpected headers: {:?}",
        names.difference(&allowed)
    );
    for header in &got[0].headers {
        assert!(
            !header.1.contains("caller-secret-token") && !header.1.contains("abc123"),
            "{header:?}"
        );
    }
}

/// Trace Context Level 2 keys (`@` anywhere but first, up to 256 characters)
/// travel on, the ones the SDK's `TraceState` cannot hold included, and a
/// duplicate key is kept once, with its first value.
#[test]
fn level_2_tracestate_keys_travel_on_and_duplicates_are_kept_once() {
    let service = Service::start();
    let recorder = Recorder::start();
    let traceparent = format!("00-{TRACE_ID}-{PARENT_ID}-02");
    let long_key = format!("{}@{}", "t".repeat(241), "v".repeat(14));
    let (status, body) = service.post_test(
        &[
            ("traceparent", &traceparent),
            ("tracestate", "foo@=1,foo@@bar=2,1foo=3"),
            (
                "tracestate",
                &format!("foo@bar@baz=4,{long_key}=5, 1foo=dup"),
            ),
        ],
        &calls(&recorder, &[json!([]), json!([])]),
    );
    assert_eq!(status, 200, "{body}");
    for request in recorder.take(2) {
        let (_, trace_id, _, flags) = request.traceparent();
        assert_eq!(trace_id, TRACE_ID);
        assert_eq!(flags, "02", "the random flag travels on");
        assert_eq!(
            request.one("tracestate"),
            Some(format!("foo@=1,foo@@bar=2,1foo=3,foo@bar@baz=4,{long_key}=5").as_str())
        );
    }
}

#[test]
fn an_invalid_tracestate_is_discarded_whole() {
    let service = Service::start();
    let recorder = Recorder::start();
    let traceparent = format!("00-{TRACE_ID}-{PARENT_ID}-01");
    // An invalid key: the header cannot be parsed, so (as the W3C suite
    // expects) nothing of it travels on, the valid members included.
    let (status, body) = service.post_test(
        &[
            ("traceparent", &traceparent),
            ("tracestate", "foo=1,bar=2, invalid key=3,foo=dup"),
        ],
        &calls(&recorder, &[json!([]), json!([])]),
    );
    assert_eq!(status, 200, "{body}");
    for request in recorder.take(2) {
        let (_, trace_id, _, _) = request.traceparent();
        assert_eq!(trace_id, TRACE_ID, "the traceparent is unaffected");
        assert_eq!(request.one("tracestate"), None);
    }
}

#[test]
fn an_invalid_traceparent_starts_a_new_trace_and_drops_tracestate() {
    let service = Service::start();
    let recorder = Recorder::start();
    // Flags of one digit: the SDK alone would accept this one.
    for traceparent in [
        format!("00-{TRACE_ID}-{PARENT_ID}-1"),
        format!("00-{}-{PARENT_ID}-01", "0".repeat(32)),
    ] {
        let (status, body) = service.post_test(
            &[
                ("traceparent", &traceparent),
                ("tracestate", "foo=1"),
                ("baggage", "user_id=alice"),
            ],
            &calls(&recorder, &[json!([]), json!([])]),
        );
        assert_eq!(status, 200, "{body}");
        let got = recorder.take(2);
        let (_, first_trace, first_parent, flags) = got[0].traceparent();
        let (_, second_trace, second_parent, _) = got[1].traceparent();
        assert_ne!(first_trace, TRACE_ID, "{traceparent}");
        assert_ne!(first_trace, "0".repeat(32));
        assert_eq!(first_trace, second_trace, "both calls in the one new trace");
        assert_ne!(first_parent, second_parent);
        assert_eq!(
            flags, "03",
            "a new trace is sampled (parent-based always-on) and random (its id is)"
        );
        for request in &got {
            assert_eq!(request.one("tracestate"), None, "{traceparent}");
            // Baggage does not depend on traceparent.
            assert_eq!(request.one("baggage"), Some("user_id=alice"));
        }
    }
}

#[test]
fn oversized_baggage_arrives_bounded() {
    let service = Service::start();
    let recorder = Recorder::start();
    let traceparent = format!("00-{TRACE_ID}-{PARENT_ID}-01");

    // 200 members: the SDK reads the first 64 (W3C Baggage's minimum).
    let many: Vec<String> = (0..200).map(|i| format!("k{i:03}=v{i}")).collect();
    let (status, _) = service.post_test(
        &[("traceparent", &traceparent), ("baggage", &many.join(","))],
        &calls(&recorder, &[json!([])]),
    );
    assert_eq!(status, 200);
    let request = &recorder.take(1)[0];
    let header = request.one("baggage").expect("baggage forwarded");
    let members = baggage_members(request);
    assert!(members.len() <= 180 && header.len() <= 8192);
    assert_eq!(
        members,
        many[..64].iter().cloned().collect::<BTreeSet<_>>(),
        "exactly the first 64 members"
    );

    // One 10 KB value: the header is over 8192 bytes, and the SDK drops all
    // of it (the W3C Baggage limit), user_id included.
    let big = format!("user_id=alice,big={}", "x".repeat(10 * 1024));
    let (status, _) = service.post_test(
        &[("traceparent", &traceparent), ("baggage", &big)],
        &calls(&recorder, &[json!([])]),
    );
    assert_eq!(status, 200);
    let request = &recorder.take(1)[0];
    assert_eq!(request.one("baggage"), None);
    assert_eq!(request.traceparent().1, TRACE_ID, "tracing is unaffected");

    // Under the limit coming in, over it once re-encoded (each space becomes
    // `%20`): the largest entry is left out, whole, so the rest fits.
    let growing = format!("user_id=alice,big={}", "a b".repeat(2_700));
    let (status, _) = service.post_test(
        &[("traceparent", &traceparent), ("baggage", &growing)],
        &calls(&recorder, &[json!([])]),
    );
    assert_eq!(status, 200);
    let request = &recorder.take(1)[0];
    assert_eq!(request.one("baggage"), Some("user_id=alice"));
}

#[test]
fn a_failed_call_is_reported_and_does_not_stop_the_others() {
    let service = Service::start();
    let recorder = Recorder::start();
    // A port with nothing listening.
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let steps = json!([
        {"url": format!("http://{closed}/gone"), "arguments": []},
        {"url": recorder.url("/callback/1"), "arguments": []},
    ]);
    let traceparent = format!("00-{TRACE_ID}-{PARENT_ID}-01");
    let (status, body) = service.post_test(&[("traceparent", &traceparent)], &steps);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["calls"][0]["error"], "service_unavailable", "{body}");
    assert_eq!(body["calls"][1]["status"], 200, "{body}");
    let request = &recorder.take(1)[0];
    assert_eq!(request.path, "/callback/1");
    assert_eq!(request.traceparent().1, TRACE_ID);
}

#[test]
fn a_body_that_is_not_a_list_of_calls_gets_the_shared_error_body() {
    let service = Service::start();
    let (status, body) = service.post_test(&[], &json!({"url": "http://example.invalid"}));
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"], "invalid_request", "{body}");

    let too_many: Vec<Value> = (0..65)
        .map(|_| json!({"url": "http://127.0.0.1:9/", "arguments": []}))
        .collect();
    let (status, body) = service.post_test(&[], &Value::Array(too_many));
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"], "too_many_calls", "{body}");
}
