//! Case: the worker's code reads an OTEL_* variable that no compose file
//! passes to it, so setting it in .env would change nothing.

pub fn semconv_opt_in() -> Option<String> {
    first_set("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_SEMCONV_STABILITY_OPT_IN")
}
