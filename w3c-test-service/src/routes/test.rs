use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::{Error, FromRequest, HttpRequest, HttpResponse, web};
use serde::Deserialize;
use shared::client::post_json_url;
use shared::error::ApiError;
use shared::http::json_body::BodyError;

use super::CallSettings;

/// The callee, as CLIENT spans and errors name it.
const PEER: &str = "w3c-harness";

/// Most calls one `POST /test` may ask for. The suite asks for at most 3;
/// the cap keeps one request from turning the service into a request
/// amplifier.
pub const MAX_CALLS: usize = 64;

/// One element of the harness's array: call `url` with `arguments` as the
/// JSON body. Unknown fields are ignored (the protocol may grow).
#[derive(Debug, Deserialize)]
pub struct Step {
    pub url: String,
    #[serde(default)]
    pub arguments: serde_json::Value,
}

#[derive(Debug, thiserror::Error)]
pub enum TestError {
    #[error("{0} calls requested; at most {MAX_CALLS} are allowed")]
    TooManyCalls(usize),
}

impl ApiError for TestError {
    fn status(&self) -> StatusCode {
        StatusCode::UNPROCESSABLE_ENTITY
    }
    fn code(&self) -> &'static str {
        "too_many_calls"
    }
}
shared::impl_response_error!(TestError);

/// The harness's request body: a JSON *array* of [`Step`]s. The shared
/// `JsonBody` takes only objects (right for the named-field APIs of the four
/// services), so this extractor does the same checks for an array, with the
/// same [`BodyError`]s and therefore the same error bodies.
pub struct Steps(pub Vec<Step>);

impl FromRequest for Steps {
    type Error = Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = shared::http::json_body::json_bytes(req, payload);
        Box::pin(async move {
            let bytes = body.await?;
            serde_json::from_slice(&bytes).map(Steps).map_err(|err| {
                if err.is_data() {
                    BodyError::Invalid(format!("expected [{{\"url\", \"arguments\"}}, ...]: {err}"))
                } else {
                    BodyError::Malformed(err.to_string())
                }
                .into()
            })
        })
    }
}

/// `POST /test`: make each call in order, each through the shared outbound
/// helper (its own CLIENT span, so its own parent-id in `traceparent`).
///
/// A failed call is recorded on its CLIENT span (ERROR status, `error.type`,
/// an `exception` event, an error log) and does not stop the others; the
/// answer is 200 once all are done, listing what each call got. The harness
/// ignores the body; it is there for a human with `curl`.
pub async fn test(
    Steps(steps): Steps,
    client: web::Data<awc::Client>,
    settings: web::Data<CallSettings>,
) -> Result<HttpResponse, TestError> {
    if steps.len() > MAX_CALLS {
        return Err(TestError::TooManyCalls(steps.len()));
    }
    let mut calls = Vec::with_capacity(steps.len());
    for step in &steps {
        let outcome = match post_json_url(
            &client,
            PEER,
            &step.url,
            &step.arguments,
            settings.timeout,
        )
        .await
        {
            Ok(status) => serde_json::json!({"url": step.url, "status": status.as_u16()}),
            Err(err) => serde_json::json!({
                "url": step.url,
                "error": err.code(),
                "message": err.to_string(),
            }),
        };
        calls.push(outcome);
    }
    Ok(HttpResponse::Ok().json(serde_json::json!({"calls": calls})))
}
