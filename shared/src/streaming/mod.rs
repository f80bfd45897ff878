//! Streams of [`StreamEvent`]s as Server-Sent Events, both ways: serving our
//! own ([`respond`]) and reading a downstream's (`Downstream::post_stream`,
//! [`EventStream`], [`relay`]), with the spans that describe a stream kept
//! open exactly as long as it runs.
//!
//! # Why this needs care
//!
//! A plain handler returns, its spans close, and the response goes out. A
//! streaming handler returns *before* the answer exists: the work happens
//! later, while actix polls the response body. So the spans that describe
//! that work must travel with the body and close when it finishes, and the
//! outcome — completed, failed, or abandoned by the client — is only known
//! then:
//!
//! - the spans handed to [`respond`] are owned by the response body and end
//!   when the body ends (the SERVER span is held the same way by
//!   tracing-actix-web);
//! - after the terminal event (`done` or `error`) the stream ends, so a
//!   misbehaving upstream cannot keep a client hanging;
//! - if actix drops the body first — the client disconnected — the spans
//!   still end, with `ragtrace.stream.outcome = cancelled`, and dropping our
//!   upstream [`EventStream`] closes *its* connection, so the cancellation
//!   travels down the chain hop by hop instead of leaving work running for
//!   nobody.
//!
//! The modules: `serve` (our response body), `receive` (a downstream's
//! response, inside the call's CLIENT span), `span_end` (the end time both
//! give their spans). The framing itself is [`crate::sse`].
//!
//! [`StreamEvent`]: crate::wire::StreamEvent

mod receive;
mod serve;
mod span_end;

pub use receive::{EventStream, relay};
pub use serve::{CANCELLED, Observed, Outcome, respond};
