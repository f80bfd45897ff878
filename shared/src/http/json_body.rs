//! The JSON request body extractor every handler takes, [`JsonBody`].
//!
//! Why not `web::Json`: its rejections are plain text with actix-web's own
//! statuses, so a client could not tell a malformed body from a missing
//! field, and the error would not carry the trace id. Every failure here is
//! a [`BodyError`] with the shared error body (`crate::error`), and a type
//! error names the field it is in (`top_k: invalid type: string "3",
//! expected u32`). The extractor runs inside the SERVER span, so even a
//! rejected body is recorded in the caller's trace.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::{Error, FromRequest, HttpMessage, HttpRequest, web};
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// Largest request body any endpoint accepts.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// Why a JSON request body was rejected.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("expected Content-Type: application/json")]
    UnsupportedMediaType,
    #[error("request body is larger than {MAX_BODY_BYTES} bytes")]
    TooLarge,
    #[error("request body is not valid JSON: {0}")]
    Malformed(String),
    #[error("{0}")]
    Invalid(String),
    #[error("cannot read request body: {0}")]
    Unreadable(String),
}

impl ApiError for BodyError {
    fn status(&self) -> StatusCode {
        match self {
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Malformed(_) | Self::Unreadable(_) => StatusCode::BAD_REQUEST,
            Self::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
        }
    }
    fn code(&self) -> &'static str {
        match self {
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::TooLarge => "payload_too_large",
            Self::Malformed(_) => "malformed_json",
            Self::Invalid(_) => "invalid_request",
            Self::Unreadable(_) => "bad_request",
        }
    }
}
crate::impl_response_error!(BodyError);

/// A JSON request body. Like `web::Json`, but every failure is a [`BodyError`]
/// with the shared error body, and a type error names the field it is in.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for JsonBody<T> {
    type Error = Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = json_bytes(req, payload);
        Box::pin(async move {
            let bytes = body.await?;
            parse_json(&bytes).map(JsonBody).map_err(Error::from)
        })
    }
}

/// The raw body of a JSON request: checks the content type (`application/json`
/// or `+json`) and the size limit ([`MAX_BODY_BYTES`]), with [`BodyError`]s.
/// For extractors that parse something other than a JSON object.
pub fn json_bytes(
    req: &HttpRequest,
    payload: &mut Payload,
) -> impl Future<Output = Result<web::Bytes, BodyError>> + use<> {
    let is_json = req
        .mime_type()
        .ok()
        .flatten()
        .is_some_and(|m| m.subtype() == "json" || m.suffix().is_some_and(|s| s == "json"));
    let body = web::Bytes::from_request(req, payload);
    async move {
        if !is_json {
            return Err(BodyError::UnsupportedMediaType);
        }
        body.await.map_err(|err| {
            if err.as_response_error().status_code() == StatusCode::PAYLOAD_TOO_LARGE {
                BodyError::TooLarge
            } else {
                BodyError::Unreadable(err.to_string())
            }
        })
    }
}

/// Parse `bytes` as one JSON object of type `T`.
///
/// Only an object is accepted at the top level: serde would otherwise also
/// take a JSON array as a struct (fields by position), which no client of a
/// named-field API means.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, BodyError> {
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => {}
        None => return Err(BodyError::Malformed("the body is empty".into())),
        Some(b'[' | b'"' | b'-' | b'0'..=b'9' | b't' | b'f' | b'n') => {
            return Err(BodyError::Invalid("the body must be a JSON object".into()));
        }
        Some(_) => {}
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        if inner.is_data() {
            if path == "." {
                BodyError::Invalid(inner.to_string())
            } else {
                BodyError::Invalid(format!("{path}: {inner}"))
            }
        } else {
            BodyError::Malformed(inner.to_string())
        }
    })?;
    de.end()
        .map_err(|err| BodyError::Malformed(err.to_string()))?;
    Ok(value)
}

/// The payload limit [`JsonBody`] enforces (registered by
/// [`crate::server::Application`]).
pub(crate) fn payload_config() -> web::PayloadConfig {
    web::PayloadConfig::new(MAX_BODY_BYTES)
}
