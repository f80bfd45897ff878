//! The `/chat` span tree made with the OpenTelemetry API directly, the
//! comparison for `tracing` + `tracing-opentelemetry`.

use std::time::Duration;

use actix_web::http::header::HeaderMap;
use opentelemetry::trace::{SpanKind, TraceContextExt, Tracer as _, TracerProvider as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::Sampler;
use shared::propagation::inject_context;

use super::{Clock, Discard, cpu, provider};

/// The same tree with the OpenTelemetry API directly: a `SpanBuilder` per
/// span, the parent passed as a `Context`.
pub(super) fn direct(sampler: Sampler, requests: u64) -> Duration {
    let provider = provider(sampler, Discard::processor());
    let tracer = provider.tracer("bench");
    let mut headers = HeaderMap::new();
    let mut one = || {
        let start =
            |name: &'static str, kind: SpanKind, attributes: Vec<KeyValue>, parent: &Context| {
                let span = tracer
                    .span_builder(name)
                    .with_kind(kind)
                    .with_attributes(attributes)
                    .start_with_context(&tracer, parent);
                parent.with_span(span)
            };
        let server = |route: &'static str, parent: &Context| {
            start(
                route,
                SpanKind::Server,
                vec![
                    KeyValue::new("http.request.method", "POST"),
                    KeyValue::new("http.route", route),
                    KeyValue::new("url.path", route),
                    KeyValue::new("url.scheme", "http"),
                    KeyValue::new("server.address", "127.0.0.1:8000"),
                    KeyValue::new("network.protocol.version", "1.1"),
                    KeyValue::new("user_agent.original", "bench"),
                    KeyValue::new("client.address", "127.0.0.1"),
                ],
                parent,
            )
        };
        let client = |name: &'static str, parent: &Context, headers: &mut HeaderMap| {
            let cx = start(
                name,
                SpanKind::Client,
                vec![
                    KeyValue::new("http.request.method", "POST"),
                    KeyValue::new("url.full", "http://127.0.0.1:8001/process"),
                    KeyValue::new("server.address", "127.0.0.1"),
                    KeyValue::new("server.port", 8001),
                    KeyValue::new("ragtrace.peer.service", "next"),
                ],
                parent,
            );
            inject_context(&cx, headers);
            cx.span()
                .set_attribute(KeyValue::new("http.response.status_code", 200));
            cx
        };
        let internal = |name: &'static str, operation: &'static str, parent: &Context| {
            let cx = start(
                name,
                SpanKind::Internal,
                vec![
                    KeyValue::new("gen_ai.operation.name", operation),
                    KeyValue::new("gen_ai.request.model", "offline"),
                ],
                parent,
            );
            cx.span()
                .set_attribute(KeyValue::new("gen_ai.usage.input_tokens", 42));
            cx.span()
                .set_attribute(KeyValue::new("gen_ai.usage.output_tokens", 7));
            cx
        };
        let end = |cx: Context| {
            cx.span().end();
        };
        let evaluation = |name: &'static str, parent: &Context| {
            let cx = start(
                name,
                SpanKind::Internal,
                vec![KeyValue::new("gen_ai.evaluation.name", name)],
                parent,
            );
            {
                let span = cx.span();
                span.set_attribute(KeyValue::new("gen_ai.evaluation.score.value", 1.0));
                span.set_attribute(KeyValue::new("gen_ai.evaluation.score.label", "pass"));
                span.set_attribute(KeyValue::new(
                    "gen_ai.evaluation.explanation",
                    "4 of 4 sentences supported",
                ));
            }
            cx
        };
        let end_server = |cx: Context| {
            cx.span()
                .set_attribute(KeyValue::new("http.response.status_code", 200));
            cx.span().end();
        };
        let root = Context::new();
        let chat = server("POST /chat", &root);
        let agent = internal("invoke_agent ragtrace", "invoke_agent", &chat);
        let process_call = client("POST /process", &agent, &mut headers);
        let process = server("POST /process", &process_call);
        let tool = internal("execute_tool process_query", "execute_tool", &process);
        let retrieve_call = client("POST /retrieve", &tool, &mut headers);
        let retrieve = server("POST /retrieve", &retrieve_call);
        let retrieval = internal("retrieve", "retrieval", &retrieve);
        end(internal("embeddings", "embeddings", &retrieval));
        end(internal("query", "search", &retrieval));
        end(retrieval);
        end_server(retrieve);
        end(retrieve_call);
        let generate_call = client("POST /generate", &tool, &mut headers);
        let generate = server("POST /generate", &generate_call);
        end(internal("chat offline", "chat", &generate));
        end_server(generate);
        end(generate_call);
        for name in ["relevance", "groundedness", "citations"] {
            end(evaluation(name, &tool));
        }
        end(tool);
        end_server(process);
        end(process_call);
        end(agent);
        end_server(chat);
    };
    for _ in 0..requests / 10 {
        one();
    }
    let start = cpu(Clock::Thread);
    for _ in 0..requests {
        one();
    }
    let cpu = cpu(Clock::Thread) - start;
    let _ = provider.shutdown();
    cpu
}
