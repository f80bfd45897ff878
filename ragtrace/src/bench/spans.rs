//! `ragtrace bench --spans`: what one span costs, part by part, measured in
//! this process with the services' own code.
//!
//! The pipeline bench says what tracing costs a `/chat` in all; this says
//! where. One "request" here is the 16-span tree of a `/chat` (4 SERVER,
//! 3 CLIENT with the context injected into real headers, 9 INTERNAL), with
//! the attributes those spans carry, created on one thread again and again.
//! Each part is timed in CPU time, per span:
//!
//! | part | what runs |
//! |---|---|
//! | `tracing` | `tracing` spans with no OpenTelemetry layer: the floor |
//! | `recording` | the same spans through `tracing-opentelemetry` (the layer as `shared::telemetry` configures it) into the SDK, every span sampled, ended spans dropped |
//! | `recording_unsampled` | the same, every span unsampled (a 10% sampler's other 90%) |
//! | `processor` | the batch span processor: handing each ended span to the export thread, and that thread collecting it (exporter discards) |
//! | `otel_api` / `otel_api_unsampled` | the same tree made with the OpenTelemetry API directly (`SpanBuilder`, `Context`), for comparison |
//! | `translate` | the vendor keys derived at export (`shared::dialects`, the default dialects) |
//! | `encoding` | SpanData to OTLP protobuf (`otlp-fast`, the default exporter) |
//! | `sending` | posting batches of 512 to a collector on loopback (the exporter's side only) |
//!
//! In-process and cache-warm, these are lower bounds: in the pipeline the
//! same work shares two cores with four services (the profile in
//! `docs/bench.md` shows that share).

use std::sync::Mutex;
use std::time::Duration;

use actix_web::http::header::HeaderMap;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{BatchSpanProcessor, Sampler, SdkTracerProvider, SpanProcessor};
use serde::Serialize;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;

use shared::propagation::inject_context;

mod export;
mod otel_api;

use export::{Discard, export_parts};
use otel_api::direct;

/// Spans in one request's tree (the pipeline's `/chat`).
const SPANS: usize = 16;
/// Spans per export batch (the SDK's default `OTEL_BSP_MAX_EXPORT_BATCH_SIZE`).
const BATCH: usize = 512;

/// Nanoseconds of CPU per span, part by part.
#[derive(Debug, Clone, Serialize)]
pub struct SpanCosts {
    pub requests: u64,
    pub tracing: f64,
    pub recording: f64,
    pub recording_unsampled: f64,
    pub processor: f64,
    pub otel_api: f64,
    pub otel_api_unsampled: f64,
    pub translate: f64,
    pub encoding: f64,
    pub sending: f64,
}

impl SpanCosts {
    /// Everything a sampled span costs with the shipped setup.
    pub fn total(&self) -> f64 {
        self.recording + self.processor + self.translate + self.encoding + self.sending
    }

    pub fn print(&self) {
        println!(
            "\nCPU per span, part by part ({} requests of {SPANS} spans each, one thread):",
            self.requests
        );
        let rows = [
            ("tracing alone (no OpenTelemetry)", self.tracing),
            (
                "recording (tracing-opentelemetry + SDK, sampled)",
                self.recording,
            ),
            ("recording, unsampled", self.recording_unsampled),
            ("processor (batch queue + export thread)", self.processor),
            ("translate (vendor keys at export)", self.translate),
            ("encoding (otlp-fast)", self.encoding),
            ("sending (HTTP, batches of 512)", self.sending),
            ("total, sampled (recording..sending)", self.total()),
            ("OpenTelemetry API directly, sampled", self.otel_api),
            (
                "OpenTelemetry API directly, unsampled",
                self.otel_api_unsampled,
            ),
        ];
        for (name, ns) in rows {
            println!(
                "  {name:52} {:7.2} us  ({:5.1} us per /chat)",
                ns / 1e3,
                ns * SPANS as f64 / 1e3
            );
        }
    }
}

/// [`measure`] on a thread of its own, outside any async runtime (the
/// exporter's blocking HTTP client needs that), alone on its core.
pub fn measure_on_own_thread(requests: u64) -> SpanCosts {
    std::thread::spawn(move || measure(requests))
        .join()
        .expect("the span measurements panicked")
}

/// Each part is run in this many slices, and the fastest slice counts: a
/// slice that shared its core with something else is slower, never faster.
const SLICES: u64 = 5;

/// Run every part `requests` times in all (each slice after a tenth as many
/// to warm up).
pub fn measure(requests: u64) -> SpanCosts {
    let slice = (requests / SLICES).max(1);
    let per_span = |part: &dyn Fn(u64) -> Duration| {
        let fastest = (0..SLICES).map(|_| part(slice)).min().unwrap_or_default();
        fastest.as_nanos() as f64 / (slice * SPANS as u64) as f64
    };
    let shipped = |sampler: fn() -> Sampler| {
        move |n| with_layer(sampler(), Discard::processor(), n, Clock::Thread)
    };
    // Process CPU for the processor: the export thread's share counts.
    let batched = per_span(&|n| {
        let batch = BatchSpanProcessor::builder(Discard).build();
        with_layer(Sampler::AlwaysOn, batch, n, Clock::Process)
    });
    let unbatched =
        per_span(&|n| with_layer(Sampler::AlwaysOn, Discard::processor(), n, Clock::Process));
    let (translate, encoding, sending) = export_parts(requests);
    SpanCosts {
        requests,
        tracing: per_span(&|n| run(tracing_subscriber::registry(), n, Clock::Thread, || {})),
        recording: per_span(&shipped(|| Sampler::AlwaysOn)),
        recording_unsampled: per_span(&shipped(|| Sampler::AlwaysOff)),
        processor: (batched - unbatched).max(0.0),
        otel_api: per_span(&|n| direct(Sampler::AlwaysOn, n)),
        otel_api_unsampled: per_span(&|n| direct(Sampler::AlwaysOff, n)),
        translate,
        encoding,
        sending,
    }
}

#[derive(Clone, Copy)]
enum Clock {
    Thread,
    Process,
}

fn cpu(clock: Clock) -> Duration {
    let id = match clock {
        Clock::Thread => libc::CLOCK_THREAD_CPUTIME_ID,
        Clock::Process => libc::CLOCK_PROCESS_CPUTIME_ID,
    };
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    unsafe { libc::clock_gettime(id, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// CPU time of `requests` traced requests under `subscriber`, after a warm-up;
/// `flush` runs before the clock stops (the export thread's work counts).
fn run<S>(subscriber: S, requests: u64, clock: Clock, flush: impl Fn()) -> Duration
where
    S: tracing::Subscriber + Send + Sync + 'static,
{
    tracing::subscriber::with_default(subscriber, || {
        let mut headers = HeaderMap::new();
        for _ in 0..requests / 10 {
            tracing_request(&mut headers);
        }
        flush();
        let start = cpu(clock);
        for _ in 0..requests {
            tracing_request(&mut headers);
        }
        flush();
        cpu(clock) - start
    })
}

fn provider(sampler: Sampler, processor: impl SpanProcessor + 'static) -> SdkTracerProvider {
    SdkTracerProvider::builder()
        .with_sampler(sampler)
        .with_span_processor(processor)
        .build()
}

fn with_layer(
    sampler: Sampler,
    processor: impl SpanProcessor + 'static,
    requests: u64,
    clock: Clock,
) -> Duration {
    let provider = provider(sampler, processor);
    let layer = shared::telemetry::otel_layer(provider.tracer("bench"));
    let cpu = run(
        tracing_subscriber::registry().with(layer),
        requests,
        clock,
        || {
            let _ = provider.force_flush();
        },
    );
    let _ = provider.shutdown();
    cpu
}

/// One `/chat`'s span tree through `tracing`, as the services make it.
fn tracing_request(headers: &mut HeaderMap) {
    let server = |route: &'static str| {
        tracing::info_span!(
            "HTTP request",
            otel.name = route,
            otel.kind = "server",
            http.request.method = "POST",
            http.route = route,
            url.path = route,
            url.scheme = "http",
            server.address = "127.0.0.1:8000",
            network.protocol.version = "1.1",
            user_agent.original = "bench",
            client.address = "127.0.0.1",
            http.response.status_code = tracing::field::Empty
        )
    };
    let client = |name: &'static str, headers: &mut HeaderMap| {
        let span = tracing::info_span!(
            "client",
            otel.name = name,
            otel.kind = "client",
            http.request.method = "POST",
            url.full = "http://127.0.0.1:8001/process",
            server.address = "127.0.0.1",
            server.port = 8001,
            ragtrace.peer.service = "next",
            http.response.status_code = tracing::field::Empty
        );
        span.in_scope(|| inject_context(&Span::current().context(), headers));
        span.record("http.response.status_code", 200);
        span
    };
    let internal = |name: &'static str, operation: &'static str| {
        let span = tracing::info_span!(
            "internal",
            otel.name = name,
            gen_ai.operation.name = operation,
            gen_ai.request.model = "offline",
            gen_ai.usage.input_tokens = tracing::field::Empty,
            gen_ai.usage.output_tokens = tracing::field::Empty
        );
        span.record("gen_ai.usage.input_tokens", 42);
        span.record("gen_ai.usage.output_tokens", 7);
        span
    };
    let evaluation = |name: &'static str| {
        let span = tracing::info_span!(
            "evaluation",
            otel.name = name,
            gen_ai.evaluation.name = name,
            gen_ai.evaluation.score.value = tracing::field::Empty,
            gen_ai.evaluation.score.label = tracing::field::Empty,
            gen_ai.evaluation.explanation = tracing::field::Empty
        );
        span.record("gen_ai.evaluation.score.value", 1.0);
        span.record("gen_ai.evaluation.score.label", "pass");
        span.record(
            "gen_ai.evaluation.explanation",
            "4 of 4 sentences supported",
        );
        span
    };
    let hop = |route: &'static str, inner: &dyn Fn()| {
        let span = server(route);
        span.in_scope(inner);
        span.record("http.response.status_code", 200);
    };
    let headers = Mutex::new(headers);
    let call = |name: &'static str, inner: &dyn Fn()| {
        let span = client(name, &mut headers.lock().unwrap());
        span.in_scope(inner);
    };
    hop("/chat", &|| {
        internal("invoke_agent ragtrace", "invoke_agent").in_scope(|| {
            call("POST /process", &|| {
                hop("/process", &|| {
                    internal("execute_tool process_query", "execute_tool").in_scope(|| {
                        call("POST /retrieve", &|| {
                            hop("/retrieve", &|| {
                                internal("retrieve", "retrieval").in_scope(|| {
                                    internal("embeddings", "embeddings").in_scope(|| {});
                                    internal("query", "search").in_scope(|| {});
                                })
                            })
                        });
                        call("POST /generate", &|| {
                            hop("/generate", &|| {
                                internal("chat offline", "chat").in_scope(|| {})
                            })
                        });
                        for name in ["relevance", "groundedness", "citations"] {
                            evaluation(name).in_scope(|| {});
                        }
                    })
                })
            })
        })
    });
}
