//! llm-service: turns a question plus retrieved passages into an answer.
//!
//! What this service teaches is the *inference* span, the one every LLM
//! observability backend is built around:
//!
//! ```text
//! llm-service SERVER POST /generate
//!   chat {model}      gen_ai.operation.name=chat, gen_ai.provider.name,
//!                     gen_ai.request.model, gen_ai.response.model,
//!                     gen_ai.usage.input_tokens / output_tokens,
//!                     gen_ai.cost.input / output / total (shared::prices),
//!                     gen_ai.response.finish_reasons, confident.span.type=llm
//! ```
//!
//! On the embedded defaults the model is [`generator`], an offline extractive
//! generator that quotes the passages most relevant to the question and cites
//! them. It runs in-process, so its span is INTERNAL; it reports its own
//! name (`ragtrace-extractive-v1`) and provider (`ragtrace`), never a hosted
//! model's, and counts tokens with the documented rule in [`tokens`].
//!
//! With `LLM_BASE_URL` and `LLM_MODEL` set, [`remote`] calls an
//! OpenAI-compatible chat completions API instead: a CLIENT span with the
//! request parameters and the usage the API reported.

pub mod configuration;
pub mod generator;
pub mod model;
pub mod remote;
pub mod routes;
pub mod startup;
pub mod tokens;

/// This binary's `service.name`.
pub const SERVICE_NAME: &str = "llm-service";

/// Telemetry, settings, server: what `main` runs.
pub async fn run() -> anyhow::Result<()> {
    let _telemetry = shared::telemetry::init(SERVICE_NAME)?;
    let settings = configuration::Settings::from_env()?;
    shared::prices::init()?;
    let application = startup::build(&settings)?;
    tracing::info!(port = application.port(), "llm-service listening");
    application.run_until_stopped().await?;
    Ok(())
}
