//! w3c-test-service: the service the public W3C Trace Context test suite
//! (github.com/w3c/trace-context, `test/test.py`) drives, so the suite can
//! check *our* propagation instead of a toy's.
//!
//! It is built from exactly the pieces the four ragtrace services use, and
//! nothing else: `shared::telemetry::init` (the global W3C propagator),
//! `shared::server::Application` (the SERVER span middleware that extracts
//! the inbound context through `shared::propagation`), and the shared
//! outbound helper `shared::client::post_json_url` (one CLIENT span per call,
//! context injected by `shared::propagation`). A suite failure here is a
//! propagation bug in every service.
//!
//! The protocol: `POST /test` with a JSON array of
//! `{"url": string, "arguments": any}`; for each element, in order, the
//! service sends `POST url` with `arguments` as the JSON body. The suite's
//! callbacks then show which `traceparent`/`tracestate` each hop received:
//!
//! ```text
//! harness --POST /test (traceparent, tracestate)--> w3c-test-service
//!   SERVER POST /test
//!     CLIENT POST --> harness callback 0   (own span id as parent-id)
//!     CLIENT POST --> harness callback 1   (own span id as parent-id)
//! ```
//!
//! How to run the suite against it: `docs/w3c.md`.

pub mod configuration;
pub mod routes;
pub mod startup;

/// This binary's `service.name`.
pub const SERVICE_NAME: &str = "w3c-test-service";

/// Telemetry, settings, server: what `main` runs.
pub async fn run() -> anyhow::Result<()> {
    let _telemetry = shared::telemetry::init(SERVICE_NAME)?;
    let settings = configuration::Settings::from_env()?;
    let application = startup::build(&settings)?;
    tracing::info!(port = application.port(), "w3c-test-service listening");
    application.run_until_stopped().await?;
    Ok(())
}
