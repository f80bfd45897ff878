//! gateway: the public edge. `POST /chat` is where a request's trace starts
//! (or joins the caller's, when the caller sent `traceparent`).
//!
//! What this service teaches is the *root* of an LLM trace:
//!
//! ```text
//! gateway SERVER POST /chat
//!   invoke_agent ragtrace     confident.span.type=agent, confident.trace.*
//!     CLIENT POST /process  -> query-processor ...
//! ```
//!
//! It also turns `user_id` / `session_id` from the body into W3C baggage, so
//! every downstream service can attribute its spans to the user and the
//! conversation without those fields being threaded through every body.

pub mod configuration;
pub mod routes;
pub mod startup;

/// This binary's `service.name`.
pub const SERVICE_NAME: &str = "gateway";

/// Telemetry, settings, server: what `main` runs.
pub async fn run() -> anyhow::Result<()> {
    let _telemetry = shared::telemetry::init(SERVICE_NAME)?;
    let settings = configuration::Settings::from_env()?;
    let application = startup::build(&settings)?;
    tracing::info!(port = application.port(), "gateway listening");
    application.run_until_stopped().await?;
    Ok(())
}
