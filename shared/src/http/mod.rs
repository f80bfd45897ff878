//! The HTTP plumbing every service needs and no reader of the lesson does.
//!
//! The reading path is [`crate::server`] (the SERVER span, where inbound
//! context is extracted) and [`crate::client`] (the CLIENT span, where it is
//! injected). What makes those two into dependable services lives here, one
//! module per job:
//!
//! - [`json_body`]: the request body extractor, so a bad body gets the shared
//!   error body (and a status and code a client can branch on) instead of
//!   actix-web's plain-text default.
//! - [`routes`]: the routes every service has besides its own: `/healthz`,
//!   the `/readyz` answer, the default service for unknown routes and wrong
//!   methods, and the probe a `/readyz` uses to check a downstream.
//! - `request_duration`: the `http.server.request.duration` metric, timed
//!   to the end of the response body.
//! - [`downstream_error`]: what a failed call to another service is, and
//!   which status and code it becomes in our own answer.
//! - [`error_codes`]: the codes that keep their meaning across hops, their
//!   statuses and the public edge's message for each.
//! - `version`: the HTTP version as the semantic conventions spell it.
//!
//! Streaming calls and responses (Server-Sent Events) are in
//! [`crate::streaming`].

pub mod downstream_error;
pub mod error_codes;
pub mod json_body;
pub(crate) mod request_duration;
pub mod routes;
pub(crate) mod version;
