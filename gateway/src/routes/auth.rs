//! The optional API key on `/chat` (`GATEWAY_API_KEY`).
//!
//! Checked before the body is even read, so an unauthenticated request costs
//! nothing downstream. The `Authorization` header is never recorded on a
//! span or in a log, and the comparison takes the same time wherever the
//! first wrong byte is.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{AUTHORIZATION, HeaderValue, WWW_AUTHENTICATE};
use actix_web::middleware::Next;
use actix_web::{Error, web};

use crate::configuration::Settings;

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub async fn require_api_key(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let expected = req
        .app_data::<web::Data<Settings>>()
        .and_then(|settings| settings.api_key.clone());
    if let Some(expected) = expected {
        let presented = req
            .headers()
            .get(AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::trim);
        if !presented
            .is_some_and(|key| constant_time_eq(key.as_bytes(), expected.expose().as_bytes()))
        {
            let mut response = shared::error::respond_with(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "missing or wrong API key: send Authorization: Bearer <GATEWAY_API_KEY>",
            );
            response
                .headers_mut()
                .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            return Ok(req.into_response(response));
        }
    }
    Ok(next.call(req).await?.map_into_boxed_body())
}

#[cfg(test)]
mod tests {
    use super::constant_time_eq;

    #[test]
    fn compares_whole_keys() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
        assert!(!constant_time_eq(b"", b"x"));
    }
}
