use std::time::Instant;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use shared::attributes::gen_ai;
use shared::dialects::{self, Fact, Role};
use shared::error::ApiError;
use shared::genai::{Api, ProviderError};
use shared::metrics::{self, GenAiOperation};
use shared::server::JsonBody;
use shared::wire::{Context, GenerateRequest, GenerateResponse, MAX_QUERY_CHARS, MAX_TOP_K, Usage};

use crate::generator::{self, GeneratorConfig, MODEL_NAME};
use crate::startup::Model;

#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error("query must not be empty")]
    EmptyQuery,
    #[error("query is {0} characters long; the limit is {MAX_QUERY_CHARS}")]
    QueryTooLong(usize),
    #[error("at most {MAX_TOP_K} contexts are accepted, got {0}")]
    TooManyContexts(usize),
    #[error(transparent)]
    Provider(#[from] ProviderError),
}

impl ApiError for GenerateError {
    fn status(&self) -> StatusCode {
        match self {
            Self::Provider(err) => err.status(),
            _ => StatusCode::UNPROCESSABLE_ENTITY,
        }
    }
    fn code(&self) -> &'static str {
        match self {
            Self::EmptyQuery | Self::QueryTooLong(_) => "invalid_query",
            Self::TooManyContexts(_) => "too_many_contexts",
            Self::Provider(err) => err.code(Api::Chat),
        }
    }
}
shared::impl_response_error!(GenerateError);

/// `POST /generate`: answer a question from the given contexts.
pub async fn generate(
    JsonBody(request): JsonBody<GenerateRequest>,
    model: web::Data<Model>,
) -> Result<HttpResponse, GenerateError> {
    let query = request.query.trim();
    if query.is_empty() {
        return Err(GenerateError::EmptyQuery);
    }
    let chars = query.chars().count();
    if chars > MAX_QUERY_CHARS {
        return Err(GenerateError::QueryTooLong(chars));
    }
    if request.contexts.len() > MAX_TOP_K as usize {
        return Err(GenerateError::TooManyContexts(request.contexts.len()));
    }
    let response = match model.get_ref() {
        Model::Offline(config) => offline(query, &request.contexts, config),
        Model::Remote(chat) => {
            let completion = chat.complete(query, &request.contexts).await?;
            GenerateResponse {
                answer: completion.answer,
                model: completion.model,
                usage: completion.usage,
                finish_reason: completion.finish_reason,
            }
        }
    };
    Ok(HttpResponse::Ok().json(response))
}

/// The offline generator, inside its `chat {model}` span.
fn offline(query: &str, contexts: &[Context], config: &GeneratorConfig) -> GenerateResponse {
    // GenAI inference span: name `{operation} {model}`. INTERNAL, because the
    // offline model runs in this process; a call to a hosted API is CLIENT.
    let span = tracing::info_span!(
        "chat",
        otel.name = %format!("{} {MODEL_NAME}", gen_ai::operation::CHAT),
        otel.kind = "internal",
    );
    dialects::record(
        &span,
        &[
            Fact::Role(Role::Llm),
            Fact::Chat {
                model: MODEL_NAME,
                provider: gen_ai::PROVIDER_RAGTRACE,
            },
            Fact::ChatParameters {
                temperature: None,
                max_tokens: Some(config.max_output_tokens),
            },
            Fact::Input(query),
            // What the offline model conceptually reads (its token count is
            // the input usage).
            Fact::ChatInput {
                system: None,
                user: &generator::prompt_text(query, contexts),
            },
        ],
    );
    let started = Instant::now();
    let generation = span.in_scope(|| generator::generate(query, contexts, config));
    let duration = started.elapsed();
    // Response and usage, known only once the model has answered.
    dialects::record(
        &span,
        &[
            Fact::ChatResponse {
                id: None,
                model: MODEL_NAME,
                finish_reason: generation.finish_reason.as_str(),
            },
            Fact::Usage {
                input: generation.input_tokens,
                output: Some(generation.output_tokens),
            },
            Fact::Output(&generation.answer),
            Fact::ChatOutput {
                text: &generation.answer,
                finish_reason: generation.finish_reason.as_str(),
            },
        ],
    );
    drop(span);
    // In-process model: no server.address/port. It cannot fail.
    metrics::record_operation(
        &GenAiOperation {
            operation: gen_ai::operation::CHAT,
            provider: gen_ai::PROVIDER_RAGTRACE,
            request_model: MODEL_NAME,
            response_model: Some(MODEL_NAME),
            server_address: None,
            server_port: None,
            error_type: None,
        },
        duration,
        Some(generation.input_tokens),
        Some(generation.output_tokens),
    );

    GenerateResponse {
        answer: generation.answer,
        model: MODEL_NAME.to_owned(),
        usage: Usage {
            input_tokens: generation.input_tokens,
            output_tokens: generation.output_tokens,
        },
        finish_reason: generation.finish_reason.as_str().to_owned(),
    }
}
