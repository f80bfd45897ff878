//! Context propagation through the real pieces, in process: the SERVER span
//! builder extracts an incoming `traceparent`/`tracestate`/`baggage`, and the
//! injector writes them back out for the next hop. If the OpenTelemetry,
//! tracing-opentelemetry and propagator wiring ever disagree, these fail.

mod common;

use common::with_tracing;

use actix_web::http::header::HeaderMap;
use actix_web::test::TestRequest;
use opentelemetry::trace::TraceContextExt;
use shared::propagation::{extract_context, inject_context};
use shared::server::ServerSpan;
use tracing_actix_web::RootSpanBuilder;
use tracing_opentelemetry::OpenTelemetrySpanExt;

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_ID: &str = "00f067aa0ba902b7";

#[test]
fn server_span_joins_the_callers_trace_and_injects_its_own_span_id() {
    with_tracing(|| {
        let request = TestRequest::post()
            .uri("/chat")
            .insert_header(("traceparent", format!("00-{TRACE_ID}-{PARENT_ID}-01")))
            .insert_header(("tracestate", "vendor=abc"))
            .insert_header(("baggage", "user_id=alice,tenant=acme"))
            .to_srv_request();
        let span = ServerSpan::on_request_start(&request);
        let cx = span.context();
        let span_context = cx.span().span_context().clone();
        assert_eq!(span_context.trace_id().to_string(), TRACE_ID);
        assert_ne!(span_context.span_id().to_string(), PARENT_ID);

        let mut headers = HeaderMap::new();
        inject_context(&cx, &mut headers);
        let traceparent = headers.get("traceparent").unwrap().to_str().unwrap();
        assert_eq!(
            traceparent,
            format!("00-{TRACE_ID}-{}-01", span_context.span_id()),
            "the next hop's parent is this span"
        );
        assert_eq!(headers.get("tracestate").unwrap(), "vendor=abc");
        let baggage = headers.get("baggage").unwrap().to_str().unwrap();
        assert!(
            baggage.contains("user_id=alice") && baggage.contains("tenant=acme"),
            "{baggage}"
        );
    });
}

#[test]
fn without_traceparent_a_new_trace_starts() {
    with_tracing(|| {
        let request = TestRequest::post().uri("/chat").to_srv_request();
        let span = ServerSpan::on_request_start(&request);
        let trace_id = span.context().span().span_context().trace_id();
        assert_ne!(trace_id, opentelemetry::trace::TraceId::INVALID);
        assert_ne!(trace_id.to_string(), TRACE_ID);
    });
}

#[test]
fn invalid_traceparent_starts_a_new_trace_and_drops_tracestate() {
    with_tracing(|| {
        for bad in [
            format!("00-{}-{PARENT_ID}-01", "0".repeat(32)),
            format!("00-{}-{PARENT_ID}-01", TRACE_ID.to_uppercase()),
            format!("ff-{TRACE_ID}-{PARENT_ID}-01"),
            format!("00-{TRACE_ID}-0000000000000000-01"),
            "garbage".to_owned(),
        ] {
            let request = TestRequest::post()
                .insert_header(("traceparent", bad.clone()))
                .insert_header(("tracestate", "vendor=abc"))
                .to_srv_request();
            let span = ServerSpan::on_request_start(&request);
            let cx = span.context();
            assert_ne!(
                cx.span().span_context().trace_id().to_string(),
                TRACE_ID,
                "{bad}"
            );
            let mut headers = HeaderMap::new();
            inject_context(&cx, &mut headers);
            assert!(
                headers.get("tracestate").is_none(),
                "tracestate forwarded for {bad}: {headers:?}"
            );
        }
    });
}

#[test]
fn repeated_list_headers_are_combined_and_repeated_traceparent_is_invalid() {
    with_tracing(|| {
        let request = TestRequest::post()
            .insert_header(("traceparent", format!("00-{TRACE_ID}-{PARENT_ID}-01")))
            .append_header(("tracestate", "a=1"))
            .append_header(("tracestate", "b=2"))
            .append_header(("baggage", "user_id=alice"))
            .append_header(("baggage", "session_id=s1"))
            .to_srv_request();
        let cx = extract_context(request.headers());
        let mut headers = HeaderMap::new();
        inject_context(&cx, &mut headers);
        assert_eq!(headers.get("tracestate").unwrap(), "a=1,b=2");
        let baggage = headers.get("baggage").unwrap().to_str().unwrap();
        assert!(
            baggage.contains("user_id=alice") && baggage.contains("session_id=s1"),
            "{baggage}"
        );

        let request = TestRequest::post()
            .append_header(("traceparent", format!("00-{TRACE_ID}-{PARENT_ID}-01")))
            .append_header(("traceparent", format!("00-{TRACE_ID}-{PARENT_ID}-01")))
            .to_srv_request();
        let cx = extract_context(request.headers());
        assert!(!cx.span().span_context().is_valid());
    });
}

/// The outgoing headers of a CLIENT span opened inside the SERVER span of a
/// request that carried `headers`: the path of every outbound call.
fn outgoing_from_child(headers: &[(&str, &str)]) -> (HeaderMap, opentelemetry::trace::SpanContext) {
    let mut request = TestRequest::post().uri("/chat");
    for (name, value) in headers {
        request = request.append_header((*name, *value));
    }
    let server = ServerSpan::on_request_start(&request.to_srv_request());
    let _entered = server.enter();
    let client = tracing::info_span!("POST /next", otel.kind = "client");
    let cx = client.context();
    let mut out = HeaderMap::new();
    inject_context(&cx, &mut out);
    (out, cx.span().span_context().clone())
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).map(|value| value.to_str().unwrap())
}

#[test]
fn the_random_flag_stays_set_on_every_hop_of_the_trace_sampled_or_not() {
    with_tracing(|| {
        for (inbound, outbound) in [("02", "02"), ("03", "03"), ("00", "00"), ("01", "01")] {
            let traceparent = format!("00-{TRACE_ID}-{PARENT_ID}-{inbound}");
            let (out, client) = outgoing_from_child(&[("traceparent", &traceparent)]);
            assert_eq!(client.trace_id().to_string(), TRACE_ID);
            assert_eq!(
                header(&out, "traceparent"),
                Some(format!("00-{TRACE_ID}-{}-{outbound}", client.span_id()).as_str()),
                "inbound flags {inbound}"
            );
        }
    });
}

#[test]
fn a_trace_started_here_has_the_random_flag() {
    with_tracing(|| {
        // From a request without a traceparent, and from a span with no
        // request at all (a new root, as an untrusting edge makes).
        let (out, client) = outgoing_from_child(&[]);
        assert_eq!(
            header(&out, "traceparent"),
            Some(format!("00-{}-{}-03", client.trace_id(), client.span_id()).as_str())
        );
        let root = tracing::info_span!("background job");
        let cx = root.context();
        let own = cx.span().span_context().clone();
        let mut out = HeaderMap::new();
        inject_context(&cx, &mut out);
        assert_eq!(
            header(&out, "traceparent"),
            Some(format!("00-{}-{}-03", own.trace_id(), own.span_id()).as_str())
        );
    });
}

#[test]
fn tracestate_keys_the_sdk_cannot_hold_reach_the_next_hop() {
    with_tracing(|| {
        let traceparent = format!("00-{TRACE_ID}-{PARENT_ID}-01");
        let tracestate = "foo@@bar=1,rojo=2,t@vvvvvvvvvvvvvvv=3";
        let (out, _) =
            outgoing_from_child(&[("traceparent", &traceparent), ("tracestate", tracestate)]);
        assert_eq!(header(&out, "tracestate"), Some(tracestate));

        // The SDK holds what it can: `rojo`, the trace state spans export.
        let request = TestRequest::post()
            .insert_header(("traceparent", traceparent.as_str()))
            .insert_header(("tracestate", tracestate))
            .to_srv_request();
        let cx = extract_context(request.headers());
        assert_eq!(cx.span().span_context().trace_state().header(), "rojo=2");
    });
}

#[test]
fn a_trace_state_changed_by_our_own_code_is_sent_as_the_sdk_holds_it() {
    use opentelemetry::trace::SpanContext;
    with_tracing(|| {
        let request = TestRequest::post()
            .insert_header(("traceparent", format!("00-{TRACE_ID}-{PARENT_ID}-02")))
            .insert_header(("tracestate", "foo@@bar=1,rojo=2"))
            .to_srv_request();
        let cx = extract_context(request.headers());
        let remote = cx.span().span_context().clone();
        let changed = remote.trace_state().insert("ours", "1").unwrap();
        let cx = cx.with_remote_span_context(SpanContext::new(
            remote.trace_id(),
            remote.span_id(),
            remote.trace_flags(),
            true,
            changed,
        ));
        let mut out = HeaderMap::new();
        inject_context(&cx, &mut out);
        assert_eq!(header(&out, "tracestate"), Some("ours=1,rojo=2"));
        assert_eq!(
            header(&out, "traceparent"),
            Some(format!("00-{TRACE_ID}-{PARENT_ID}-02").as_str()),
            "the random flag still belongs to the trace"
        );
    });
}

/// MCP carries the same three values in `params._meta` (SEP-414): what
/// `extract_meta` reads is what `extract_context` reads from headers, and
/// `inject_meta` writes what `inject_context` writes.
#[test]
fn mcp_meta_carries_the_same_context_as_headers() {
    use serde_json::{Map, Value, json};
    use shared::propagation::{extract_meta, inject_meta};
    with_tracing(|| {
        let meta: Map<String, Value> = serde_json::from_value(json!({
            "traceparent": format!("00-{TRACE_ID}-{PARENT_ID}-01"),
            "tracestate": "vendor=abc",
            "baggage": "user_id=alice",
            "progressToken": 7,
        }))
        .unwrap();
        let cx = extract_meta(&meta);
        assert_eq!(cx.span().span_context().trace_id().to_string(), TRACE_ID);
        assert_eq!(cx.span().span_context().span_id().to_string(), PARENT_ID);
        assert!(cx.span().span_context().is_remote());

        let out = inject_meta(&cx);
        let keys: Vec<&str> = out.keys().map(String::as_str).collect();
        assert_eq!(keys, ["baggage", "traceparent", "tracestate"], "{out:?}");
        assert_eq!(out["traceparent"], format!("00-{TRACE_ID}-{PARENT_ID}-01"));
        assert_eq!(out["tracestate"], "vendor=abc");
        assert_eq!(out["baggage"], "user_id=alice");
        let mut headers = HeaderMap::new();
        inject_context(&cx, &mut headers);
        for key in ["traceparent", "tracestate", "baggage"] {
            assert_eq!(out[key], header(&headers, key).unwrap(), "{key}");
        }
    });
}

/// A missing, malformed or non-string `traceparent` in `_meta` is no
/// context: the callee starts a new trace, and nothing fails.
#[test]
fn malformed_mcp_meta_is_an_empty_context() {
    use serde_json::{Map, Value, json};
    use shared::propagation::extract_meta;
    with_tracing(|| {
        for meta in [
            json!({}),
            json!({"traceparent": "00-not-a-trace-01"}),
            json!({"traceparent": 42}),
            json!({"traceparent": format!("00-{TRACE_ID}-{PARENT_ID}-01\n")}),
            json!({"tracestate": "vendor=abc"}),
        ] {
            let meta: Map<String, Value> = serde_json::from_value(meta.clone()).unwrap();
            let cx = extract_meta(&meta);
            assert!(!cx.span().span_context().is_valid(), "{meta:?}");
        }
    });
}
