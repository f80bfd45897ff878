//! Setup shared by the in-process propagation tests.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt;

/// Run `test` with the services' global propagator and a `tracing` subscriber
/// bridged to an OpenTelemetry tracer (no exporter).
pub fn with_tracing(test: impl FnOnce()) {
    opentelemetry::global::set_text_map_propagator(shared::telemetry::w3c_propagator());
    let provider = SdkTracerProvider::builder().build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
    tracing::subscriber::with_default(subscriber, test);
}
