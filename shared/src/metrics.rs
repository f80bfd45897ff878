//! The metrics every ragtrace service exports over OTLP, beside its spans.
//!
//! | metric | unit | kind | recorded by |
//! |---|---|---|---|
//! | `gen_ai.client.operation.duration` | `s` | histogram | every chat and embeddings call: llm-service, retrieval |
//! | `gen_ai.client.token.usage` | `{token}` | histogram, per `gen_ai.token.type` | the same calls, when the model reported usage |
//! | `gen_ai.client.operation.time_to_first_chunk` | `s` | histogram | streaming chat only |
//! | `ragtrace.gen_ai.client.cost` | `USD` | counter | the same calls, for a model with a price ([`cost`]) |
//! | `http.server.request.duration` | `s` | histogram | every service, every request ([`crate::server`]) |
//! | `mcp.client.operation.duration`, `mcp.server.operation.duration` | `s` | histogram | each MCP request, at each end ([`mcp`]) |
//!
//! Names, units, attributes and bucket boundaries follow the OpenTelemetry
//! GenAI semantic conventions v1.41 (`docs/gen-ai/gen-ai-metrics.md`) and the
//! stable HTTP conventions (`docs/http/http-metrics.md`).
//!
//! # Why spans are not enough
//!
//! A span describes one request, and only if its trace was sampled. A metric
//! aggregates *every* request in the process before it is exported, whatever
//! the sampler decided (`OTEL_TRACES_SAMPLER=parentbased_traceidratio` with
//! 0.01 keeps one trace in a hundred; the histograms still count all of
//! them). Latency percentiles and token spend per model come from here; the
//! trace of one slow request comes from the spans. That is also why these are
//! recorded explicitly where the operation ends, and not derived from ended
//! spans in a span processor: an unsampled span never reaches a processor.
//!
//! # Why explicit bucket boundaries
//!
//! The SDK's default histogram boundaries (0, 5, 10, 25, 50, 75, 100, 250,
//! 500, 750, 1000, 2500, 5000, 7500, 10000) are meant for milliseconds. In
//! seconds every request under 5 s lands in one bucket, and token counts
//! above 10 000 in the overflow bucket: percentiles computed from such a
//! histogram are meaningless. Each convention therefore specifies its own
//! boundaries (as an *advisory* parameter), and we pass exactly those, so two
//! services (or two vendors' SDKs) produce histograms that can be merged.
//!
//! # Where the instruments come from
//!
//! From the *global* meter provider, once, on first use ([`instruments`]).
//! [`crate::telemetry::init`] installs the provider before a service records
//! anything; with metrics off (`OTEL_METRICS_EXPORTER=none`,
//! `OTEL_SDK_DISABLED=true`) the global provider is the API's no-op, and a
//! recording costs next to nothing. An instrument created before `init`
//! would stay a no-op forever, so nothing here is touched at startup.
//!
//! # Cardinality
//!
//! Every attribute value below comes from a small set: operation and
//! provider names, the configured model, our own error codes, the route
//! *pattern* (`/chat`, never a raw path), status codes. Never a user id, a
//! query or a trace id: each distinct attribute set is a separate series,
//! kept in memory by the SDK and by every backend downstream.

pub mod cost;
pub mod mcp;

use std::sync::OnceLock;
use std::time::Duration;

use opentelemetry::metrics::{Histogram, Meter};
use opentelemetry::{InstrumentationScope, KeyValue, global};

use crate::attributes::{error, gen_ai, http};

/// `gen_ai.client.operation.duration`: how long a GenAI operation took, as
/// its caller saw it (network and retries included), failures too.
pub const OPERATION_DURATION: &str = "gen_ai.client.operation.duration";
/// `gen_ai.client.token.usage`: tokens per operation, one measurement per
/// `gen_ai.token.type`.
pub const TOKEN_USAGE: &str = "gen_ai.client.token.usage";
/// `gen_ai.client.operation.time_to_first_chunk`: for a streamed response,
/// the time from the request to its first chunk.
pub const TIME_TO_FIRST_CHUNK: &str = "gen_ai.client.operation.time_to_first_chunk";
/// `http.server.request.duration`: how long the server took to answer.
pub const HTTP_SERVER_REQUEST_DURATION: &str = "http.server.request.duration";

/// Boundaries of `gen_ai.client.operation.duration` and of
/// `gen_ai.client.operation.time_to_first_chunk`, in seconds (GenAI
/// conventions v1.41): doubling from 10 ms to 82 s, since a model call can
/// take anything from a cached embedding to a long generation.
pub const OPERATION_DURATION_BOUNDARIES: [f64; 14] = [
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
];

/// Boundaries of `gen_ai.client.token.usage` (GenAI conventions v1.41):
/// powers of 4 from 1 to 67 108 864 tokens.
pub const TOKEN_USAGE_BOUNDARIES: [f64; 14] = [
    1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0, 4194304.0,
    16777216.0, 67108864.0,
];

/// Boundaries of `http.server.request.duration`, in seconds (stable HTTP
/// conventions).
pub const HTTP_SERVER_DURATION_BOUNDARIES: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// The instrumentation scope of every ragtrace instrument.
pub const METER_NAME: &str = "ragtrace";

/// One GenAI operation (a chat completion, an embeddings call), described by
/// the attributes its metrics carry. The same values as on its span.
///
/// Build it where the operation's span is recorded, once the outcome is
/// known: `response_model` from the response, `error_type` on failure (the
/// span's `error.type`: our low-cardinality code, e.g. `llm_timeout`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GenAiOperation<'a> {
    /// `gen_ai.operation.name`: `chat`, `embeddings`, ...
    /// ([`gen_ai::operation`]).
    pub operation: &'a str,
    /// `gen_ai.provider.name`: `openai`, `openai_compatible`, `ragtrace`, ...
    pub provider: &'a str,
    /// `gen_ai.request.model`: the model asked for.
    pub request_model: &'a str,
    /// `gen_ai.response.model`: the model that answered, when known.
    pub response_model: Option<&'a str>,
    /// `server.address`: the API's host; `None` for an in-process model.
    pub server_address: Option<&'a str>,
    /// `server.port`: recorded only together with `server_address`.
    pub server_port: Option<u16>,
    /// `error.type`: set exactly when the operation failed.
    pub error_type: Option<&'a str>,
}

impl GenAiOperation<'_> {
    /// The attributes shared by all three GenAI metrics. `error.type` is
    /// added only for the duration histograms: a failed call has no usage.
    fn attributes(&self, with_error: bool) -> Vec<KeyValue> {
        let mut attributes = Vec::with_capacity(8);
        attributes.push(KeyValue::new(
            gen_ai::OPERATION_NAME,
            self.operation.to_owned(),
        ));
        attributes.push(KeyValue::new(
            gen_ai::PROVIDER_NAME,
            self.provider.to_owned(),
        ));
        attributes.push(KeyValue::new(
            gen_ai::REQUEST_MODEL,
            self.request_model.to_owned(),
        ));
        if let Some(model) = self.response_model {
            attributes.push(KeyValue::new(gen_ai::RESPONSE_MODEL, model.to_owned()));
        }
        if let Some(address) = self.server_address {
            attributes.push(KeyValue::new(http::SERVER_ADDRESS, address.to_owned()));
            // The convention asks for server.port only alongside server.address.
            if let Some(port) = self.server_port {
                attributes.push(KeyValue::new(http::SERVER_PORT, i64::from(port)));
            }
        }
        if with_error && let Some(error_type) = self.error_type {
            attributes.push(KeyValue::new(error::TYPE, error_type.to_owned()));
        }
        attributes
    }
}

/// One HTTP request a service answered, described by the attributes of
/// `http.server.request.duration`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpServerRequest<'a> {
    /// `http.request.method`; anything but a known method is recorded as
    /// `_OTHER` (the convention's guard against made-up methods).
    pub method: &'a str,
    /// `http.route`: the matched route *pattern* (`/chat`). `None` when no
    /// route matched: a raw path would make one series per URL anyone tries.
    pub route: Option<&'a str>,
    /// `http.response.status_code`.
    pub status: u16,
    /// `url.scheme`: `http` or `https`.
    pub scheme: &'a str,
    /// `network.protocol.version`: `1.1`, `2`, ...
    pub protocol_version: &'a str,
}

impl HttpServerRequest<'_> {
    fn attributes(&self) -> Vec<KeyValue> {
        let mut attributes = Vec::with_capacity(6);
        attributes.push(KeyValue::new(
            http::REQUEST_METHOD,
            known_method(self.method),
        ));
        if let Some(route) = self.route {
            attributes.push(KeyValue::new(http::ROUTE, route.to_owned()));
        }
        attributes.push(KeyValue::new(
            http::RESPONSE_STATUS_CODE,
            i64::from(self.status),
        ));
        attributes.push(KeyValue::new(http::URL_SCHEME, self.scheme.to_owned()));
        attributes.push(KeyValue::new(
            http::NETWORK_PROTOCOL_VERSION,
            self.protocol_version.to_owned(),
        ));
        // HTTP semconv: a server request is an error only for 5xx, and then
        // `error.type` is the status code as a string (when no better,
        // equally low-cardinality class is known at this layer).
        if (500..600).contains(&self.status) {
            attributes.push(KeyValue::new(error::TYPE, self.status.to_string()));
        }
        attributes
    }
}

/// `method` if it is one the HTTP conventions know, else `_OTHER`.
fn known_method(method: &str) -> &'static str {
    const KNOWN: [&str; 9] = [
        "CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE",
    ];
    KNOWN
        .iter()
        .find(|known| **known == method)
        .copied()
        .unwrap_or("_OTHER")
}

/// The four instruments, created from one [`Meter`].
#[derive(Debug, Clone)]
pub struct Instruments {
    operation_duration: Histogram<f64>,
    token_usage: Histogram<u64>,
    time_to_first_chunk: Histogram<f64>,
    http_server_request_duration: Histogram<f64>,
}

impl Instruments {
    /// Create the instruments on `meter`, with the conventions' units,
    /// descriptions and bucket boundaries.
    pub fn new(meter: &Meter) -> Self {
        Self {
            operation_duration: meter
                .f64_histogram(OPERATION_DURATION)
                .with_unit("s")
                .with_description("GenAI operation duration.")
                .with_boundaries(OPERATION_DURATION_BOUNDARIES.to_vec())
                .build(),
            token_usage: meter
                .u64_histogram(TOKEN_USAGE)
                .with_unit("{token}")
                .with_description("Number of input and output tokens used.")
                .with_boundaries(TOKEN_USAGE_BOUNDARIES.to_vec())
                .build(),
            time_to_first_chunk: meter
                .f64_histogram(TIME_TO_FIRST_CHUNK)
                .with_unit("s")
                .with_description("Time to receive the first chunk of a streamed response.")
                .with_boundaries(OPERATION_DURATION_BOUNDARIES.to_vec())
                .build(),
            http_server_request_duration: meter
                .f64_histogram(HTTP_SERVER_REQUEST_DURATION)
                .with_unit("s")
                .with_description("Duration of HTTP server requests.")
                .with_boundaries(HTTP_SERVER_DURATION_BOUNDARIES.to_vec())
                .build(),
        }
    }

    /// See [`record_operation`].
    pub fn record_operation(
        &self,
        operation: &GenAiOperation<'_>,
        duration: Duration,
        input_tokens: Option<u64>,
        output_tokens: Option<u64>,
    ) {
        self.operation_duration
            .record(duration.as_secs_f64(), &operation.attributes(true));
        if input_tokens.is_none() && output_tokens.is_none() {
            return;
        }
        let mut attributes = operation.attributes(false);
        for (token_type, tokens) in [
            (gen_ai::token_type::INPUT, input_tokens),
            (gen_ai::token_type::OUTPUT, output_tokens),
        ] {
            if let Some(tokens) = tokens {
                attributes.push(KeyValue::new(gen_ai::TOKEN_TYPE, token_type));
                self.token_usage.record(tokens, &attributes);
                attributes.pop();
            }
        }
    }

    /// See [`record_time_to_first_chunk`].
    pub fn record_time_to_first_chunk(
        &self,
        operation: &GenAiOperation<'_>,
        time_to_first_chunk: Duration,
    ) {
        self.time_to_first_chunk.record(
            time_to_first_chunk.as_secs_f64(),
            &operation.attributes(true),
        );
    }

    /// See [`record_http_server_request`].
    pub fn record_http_server_request(&self, request: &HttpServerRequest<'_>, duration: Duration) {
        self.http_server_request_duration
            .record(duration.as_secs_f64(), &request.attributes());
    }
}

/// The process-wide instruments, created from the global meter provider on
/// first use (see the module docs for why not earlier).
pub fn instruments() -> &'static Instruments {
    static INSTRUMENTS: OnceLock<Instruments> = OnceLock::new();
    INSTRUMENTS.get_or_init(|| {
        let scope = InstrumentationScope::builder(METER_NAME)
            .with_version(env!("CARGO_PKG_VERSION"))
            .build();
        Instruments::new(&global::meter_with_scope(scope))
    })
}

/// Record one finished GenAI operation: its duration in
/// `gen_ai.client.operation.duration` (with `error.type` when it failed) and,
/// for each token count the model reported, one measurement in
/// `gen_ai.client.token.usage` with `gen_ai.token.type` `input` or `output`.
///
/// Pass `None` for a count that is unknown (a failed call, an embeddings
/// call has no output): it is not recorded, rather than recorded as 0.
pub fn record_operation(
    operation: &GenAiOperation<'_>,
    duration: Duration,
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
) {
    instruments().record_operation(operation, duration, input_tokens, output_tokens);
}

/// Record the time from sending a *streaming* GenAI request to receiving its
/// first chunk, in `gen_ai.client.operation.time_to_first_chunk`.
///
/// Call it once per streamed operation, when the first chunk arrives, with
/// the same attributes the operation's [`record_operation`] will carry
/// (`response_model` and `error_type` as far as known then; usually
/// `response_model` from the first chunk, `error_type: None`). A stream that
/// fails before any chunk has no first chunk: record only its duration.
/// The same value belongs on the span as `gen_ai.response.time_to_first_chunk`.
pub fn record_time_to_first_chunk(operation: &GenAiOperation<'_>, time_to_first_chunk: Duration) {
    instruments().record_time_to_first_chunk(operation, time_to_first_chunk);
}

/// Record one answered HTTP request in `http.server.request.duration`.
/// [`crate::server`] does this for every request of every service.
pub fn record_http_server_request(request: &HttpServerRequest<'_>, duration: Duration) {
    instruments().record_http_server_request(request, duration);
}

#[cfg(test)]
mod tests {
    //! The instruments against a real SDK pipeline: a meter provider with a
    //! periodic reader and an exporter that keeps what it is given, flushed
    //! by hand. (The OTLP encoding is tested end to end in
    //! `e2e/tests/metrics.rs`.)

    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex};

    use opentelemetry::metrics::MeterProvider as _;
    use opentelemetry_sdk::error::OTelSdkResult;
    use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData, ResourceMetrics};
    use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
    use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider, Temporality};

    use super::*;

    /// One histogram data point, flattened.
    #[derive(Debug, Clone, PartialEq)]
    struct Point {
        unit: String,
        attributes: BTreeMap<String, String>,
        count: u64,
        sum: f64,
        bounds: Vec<f64>,
    }

    #[derive(Clone, Default)]
    struct Keep(Arc<Mutex<Vec<(String, Point)>>>);

    impl PushMetricExporter for Keep {
        async fn export(&self, metrics: &ResourceMetrics) -> OTelSdkResult {
            let mut kept = self.0.lock().unwrap();
            kept.clear(); // cumulative: the last export holds everything
            for scope in metrics.scope_metrics() {
                for metric in scope.metrics() {
                    let mut push = |attributes: BTreeMap<String, String>,
                                    count: u64,
                                    sum: f64,
                                    bounds: Vec<f64>| {
                        kept.push((
                            metric.name().to_owned(),
                            Point {
                                unit: metric.unit().to_owned(),
                                attributes,
                                count,
                                sum,
                                bounds,
                            },
                        ));
                    };
                    let attributes = |kvs: &mut dyn Iterator<Item = &KeyValue>| {
                        kvs.map(|kv| (kv.key.to_string(), kv.value.to_string()))
                            .collect::<BTreeMap<_, _>>()
                    };
                    match metric.data() {
                        AggregatedMetrics::F64(MetricData::Histogram(h)) => {
                            for p in h.data_points() {
                                push(
                                    attributes(&mut p.attributes()),
                                    p.count(),
                                    p.sum(),
                                    p.bounds().collect(),
                                );
                            }
                        }
                        AggregatedMetrics::U64(MetricData::Histogram(h)) => {
                            for p in h.data_points() {
                                push(
                                    attributes(&mut p.attributes()),
                                    p.count(),
                                    p.sum() as f64,
                                    p.bounds().collect(),
                                );
                            }
                        }
                        other => panic!("unexpected aggregation {other:?}"),
                    }
                }
            }
            Ok(())
        }
        fn force_flush(&self) -> OTelSdkResult {
            Ok(())
        }
        fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
            Ok(())
        }
        fn temporality(&self) -> Temporality {
            Temporality::Cumulative
        }
    }

    fn pipeline() -> (SdkMeterProvider, Instruments, Keep) {
        let keep = Keep::default();
        let provider = SdkMeterProvider::builder()
            .with_reader(
                PeriodicReader::builder(keep.clone())
                    .with_interval(Duration::from_secs(3600))
                    .build(),
            )
            .build();
        let instruments = Instruments::new(&provider.meter(METER_NAME));
        (provider, instruments, keep)
    }

    fn points(provider: &SdkMeterProvider, keep: &Keep, name: &str) -> Vec<Point> {
        provider.force_flush().unwrap();
        keep.0
            .lock()
            .unwrap()
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, p)| p.clone())
            .collect()
    }

    fn attrs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const CHAT: GenAiOperation<'static> = GenAiOperation {
        operation: "chat",
        provider: "openai",
        request_model: "gpt-4o-mini",
        response_model: Some("gpt-4o-mini-2024-07-18"),
        server_address: Some("api.openai.com"),
        server_port: Some(443),
        error_type: None,
    };

    #[test]
    fn an_operation_records_duration_and_both_token_types_with_the_convention_buckets() {
        let (provider, instruments, keep) = pipeline();
        instruments.record_operation(&CHAT, Duration::from_millis(1500), Some(120), Some(30));
        instruments.record_operation(&CHAT, Duration::from_millis(500), Some(80), Some(10));

        let base = [
            ("gen_ai.operation.name", "chat"),
            ("gen_ai.provider.name", "openai"),
            ("gen_ai.request.model", "gpt-4o-mini"),
            ("gen_ai.response.model", "gpt-4o-mini-2024-07-18"),
            ("server.address", "api.openai.com"),
            ("server.port", "443"),
        ];
        let duration = points(&provider, &keep, OPERATION_DURATION);
        assert_eq!(duration.len(), 1, "{duration:#?}");
        assert_eq!(duration[0].unit, "s");
        assert_eq!(duration[0].attributes, attrs(&base));
        assert_eq!(duration[0].count, 2);
        assert!((duration[0].sum - 2.0).abs() < 1e-9);
        assert_eq!(duration[0].bounds, OPERATION_DURATION_BOUNDARIES);

        let mut tokens = points(&provider, &keep, TOKEN_USAGE);
        tokens.sort_by(|a, b| a.attributes.cmp(&b.attributes));
        assert_eq!(tokens.len(), 2, "{tokens:#?}");
        for (point, (token_type, sum)) in tokens.iter().zip([("input", 200.0), ("output", 40.0)]) {
            let mut expected = base.to_vec();
            expected.push(("gen_ai.token.type", token_type));
            assert_eq!(point.attributes, attrs(&expected));
            assert_eq!(point.unit, "{token}");
            assert_eq!(point.count, 2);
            assert_eq!(point.sum, sum);
            assert_eq!(point.bounds, TOKEN_USAGE_BOUNDARIES);
        }
    }

    #[test]
    fn a_failure_carries_error_type_on_the_duration_and_records_no_tokens() {
        let (provider, instruments, keep) = pipeline();
        let failed = GenAiOperation {
            response_model: None,
            error_type: Some("model_timeout"),
            ..CHAT
        };
        instruments.record_operation(&failed, Duration::from_secs(15), None, None);
        let duration = points(&provider, &keep, OPERATION_DURATION);
        assert_eq!(duration.len(), 1);
        assert_eq!(
            duration[0].attributes.get("error.type").map(String::as_str),
            Some("model_timeout")
        );
        assert!(!duration[0].attributes.contains_key("gen_ai.response.model"));
        assert!(points(&provider, &keep, TOKEN_USAGE).is_empty());
    }

    #[test]
    fn an_in_process_embedding_has_no_server_and_input_tokens_only() {
        let (provider, instruments, keep) = pipeline();
        let embed = GenAiOperation {
            operation: "embeddings",
            provider: "ragtrace",
            request_model: "ragtrace-hashing-384",
            response_model: Some("ragtrace-hashing-384"),
            server_address: None,
            server_port: Some(80), // ignored without an address
            error_type: None,
        };
        instruments.record_operation(&embed, Duration::from_micros(40), Some(9), None);
        let duration = points(&provider, &keep, OPERATION_DURATION);
        assert!(!duration[0].attributes.contains_key("server.address"));
        assert!(!duration[0].attributes.contains_key("server.port"));
        let tokens = points(&provider, &keep, TOKEN_USAGE);
        assert_eq!(tokens.len(), 1);
        assert_eq!(
            tokens[0]
                .attributes
                .get("gen_ai.token.type")
                .map(String::as_str),
            Some("input")
        );
        assert_eq!(tokens[0].sum, 9.0);
    }

    #[test]
    fn time_to_first_chunk_uses_the_duration_buckets() {
        let (provider, instruments, keep) = pipeline();
        instruments.record_time_to_first_chunk(&CHAT, Duration::from_millis(250));
        let ttfc = points(&provider, &keep, TIME_TO_FIRST_CHUNK);
        assert_eq!(ttfc.len(), 1);
        assert_eq!(ttfc[0].unit, "s");
        assert_eq!(ttfc[0].count, 1);
        assert!((ttfc[0].sum - 0.25).abs() < 1e-9);
        assert_eq!(ttfc[0].bounds, OPERATION_DURATION_BOUNDARIES);
        assert_eq!(
            ttfc[0]
                .attributes
                .get("gen_ai.request.model")
                .map(String::as_str),
            Some("gpt-4o-mini")
        );
    }

    #[test]
    fn http_requests_use_the_http_buckets_and_mark_5xx_only() {
        let (provider, instruments, keep) = pipeline();
        let ok = HttpServerRequest {
            method: "POST",
            route: Some("/chat"),
            status: 200,
            scheme: "http",
            protocol_version: "1.1",
        };
        instruments.record_http_server_request(&ok, Duration::from_millis(30));
        instruments.record_http_server_request(
            &HttpServerRequest { status: 422, ..ok },
            Duration::from_millis(1),
        );
        instruments.record_http_server_request(
            &HttpServerRequest { status: 502, ..ok },
            Duration::from_millis(2),
        );
        instruments.record_http_server_request(
            &HttpServerRequest {
                method: "BREW",
                route: None,
                status: 404,
                ..ok
            },
            Duration::from_millis(1),
        );
        let mut points = points(&provider, &keep, HTTP_SERVER_REQUEST_DURATION);
        assert_eq!(points.len(), 4, "{points:#?}");
        assert!(
            points
                .iter()
                .all(|p| p.bounds == HTTP_SERVER_DURATION_BOUNDARIES && p.unit == "s")
        );
        points.sort_by_key(|p| p.attributes["http.response.status_code"].clone());
        let [ok, not_found, invalid, bad_gateway] = &points[..] else {
            unreachable!()
        };
        assert_eq!(
            ok.attributes,
            attrs(&[
                ("http.request.method", "POST"),
                ("http.route", "/chat"),
                ("http.response.status_code", "200"),
                ("url.scheme", "http"),
                ("network.protocol.version", "1.1"),
            ])
        );
        assert!(
            !invalid.attributes.contains_key("error.type"),
            "4xx is no error"
        );
        assert_eq!(bad_gateway.attributes["error.type"], "502");
        assert_eq!(not_found.attributes["http.request.method"], "_OTHER");
        assert!(!not_found.attributes.contains_key("http.route"));
    }
}
