//! Property tests: no request body, however malformed, can panic the parser
//! every endpoint uses, and every rejection is classified. (Proptest keeps
//! any failing input it finds in `proptest-regressions/`, committed, so a
//! found bug stays a test.)

use proptest::prelude::*;
use shared::error::ApiError;
use shared::http::json_body::{BodyError, parse_json};
use shared::wire::{ChatRequest, GenerateRequest, ProcessRequest, RetrieveRequest};

fn check<T: serde::de::DeserializeOwned>(bytes: &[u8]) {
    if let Err(err) = parse_json::<T>(bytes) {
        // Every failure is a client error with a stable code and a message.
        assert!(err.status().is_client_error(), "{err}");
        assert!(
            matches!(err, BodyError::Malformed(_) | BodyError::Invalid(_)),
            "{err:?}"
        );
        assert!(!err.to_string().is_empty());
    }
}

fn all_bodies(bytes: &[u8]) {
    check::<ChatRequest>(bytes);
    check::<ProcessRequest>(bytes);
    check::<RetrieveRequest>(bytes);
    check::<GenerateRequest>(bytes);
}

/// Arbitrary JSON documents, nested a few levels.
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(serde_json::Value::from),
        ".{0,40}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(serde_json::Value::from),
            prop::collection::btree_map(
                prop_oneof![
                    Just("query".to_owned()),
                    Just("top_k".to_owned()),
                    Just("contexts".to_owned()),
                    Just("tags".to_owned()),
                    Just("user_id".to_owned()),
                    "[a-z_]{1,8}"
                ],
                inner,
                0..6
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        all_bodies(&bytes);
    }

    #[test]
    fn arbitrary_json_never_panics(value in json_value()) {
        all_bodies(value.to_string().as_bytes());
    }

    #[test]
    fn valid_chat_requests_round_trip(query in ".{1,200}", top_k in proptest::option::of(0u32..50)) {
        let body = serde_json::json!({"query": query, "top_k": top_k});
        let parsed: ChatRequest = parse_json(body.to_string().as_bytes()).unwrap();
        prop_assert_eq!(parsed.query, query);
        prop_assert_eq!(parsed.top_k, top_k);
    }
}

#[test]
fn only_a_json_object_is_a_request() {
    for body in [r#"["What is a span?"]"#, r#""query""#, "42", "null", "true"] {
        let err = parse_json::<ChatRequest>(body.as_bytes()).unwrap_err();
        assert!(matches!(err, BodyError::Invalid(_)), "{body}: {err:?}");
    }
    assert!(matches!(
        parse_json::<ChatRequest>(b"  "),
        Err(BodyError::Malformed(_))
    ));
}

#[test]
fn deeply_nested_json_is_rejected_not_a_stack_overflow() {
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(parse_json::<ChatRequest>(deep.as_bytes()).is_err());
    // serde_json's recursion limit (128) turns deep nesting into an error.
    let deep_value = format!("{}{}", "{\"a\":".repeat(10_000), "}".repeat(10_000));
    let err = parse_json::<serde_json::Value>(deep_value.as_bytes()).unwrap_err();
    assert!(matches!(err, BodyError::Malformed(_)), "{err:?}");
    let deep_object = format!(
        r#"{{"query": "x", "tags": {}{}}}"#,
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    assert!(parse_json::<ChatRequest>(deep_object.as_bytes()).is_err());
}

#[test]
fn invalid_utf8_is_malformed() {
    let err = parse_json::<ChatRequest>(b"{\"query\": \"\xff\xfe\"}").unwrap_err();
    assert!(matches!(err, BodyError::Malformed(_)), "{err:?}");
}

proptest! {
    /// Any sequence of stream events, encoded and then cut into arbitrary
    /// reads, decodes back to the same events: the SSE decoder does not
    /// depend on how the network happens to split the bytes.
    #[test]
    fn stream_events_survive_any_split(
        deltas in proptest::collection::vec(any::<String>(), 0..8),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..6),
    ) {
        use shared::wire::{StreamDone, StreamEvent, Usage};
        let mut events: Vec<StreamEvent> = deltas.into_iter().map(StreamEvent::Delta).collect();
        events.push(StreamEvent::Done(StreamDone {
            model: "m".into(),
            usage: Usage { input_tokens: 1, output_tokens: 2 },
            finish_reason: "stop".into(),
            trace_id: None,
trace_url: None,
evaluations: Vec::new(),
        }));
        let bytes: Vec<u8> = events
            .iter()
            .flat_map(|e| shared::sse::encode(e.name(), &e.data()).to_vec())
            .collect();
        let mut points: Vec<usize> = cuts.iter().map(|i| i.index(bytes.len() + 1)).collect();
        points.push(0);
        points.push(bytes.len());
        points.sort_unstable();
        let mut decoder = shared::sse::Decoder::new();
        let mut decoded = Vec::new();
        for pair in points.windows(2) {
            decoder.push(&bytes[pair[0]..pair[1]]);
            while let Some(raw) = decoder.next_event().unwrap() {
                decoded.push(StreamEvent::parse(&raw.event, &raw.data).unwrap());
            }
        }
        prop_assert_eq!(decoded, events);
    }

    /// Arbitrary bytes never panic the SSE decoder.
    #[test]
    fn sse_decoder_never_panics(chunks in proptest::collection::vec(any::<Vec<u8>>(), 0..8)) {
        let mut decoder = shared::sse::Decoder::new();
        for chunk in chunks {
            decoder.push(&chunk);
            while let Ok(Some(_)) = decoder.next_event() {}
        }
    }
}
