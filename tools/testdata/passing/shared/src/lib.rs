//! Fixture: what every service's shared code reads.

pub fn listen_addr(default: &str) -> String {
    env_string("LISTEN_ADDR", default)
}

pub fn telemetry() {
    // Read here and by the SDK: either way, compose must pass it.
    let _ = std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT");
    // Read here only.
    let _ = std::env::var("OTEL_SDK_DISABLED");
}
