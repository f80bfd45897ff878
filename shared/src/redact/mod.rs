//! Redaction of captured content, before anything is recorded on a span.
//!
//! Content capture (prompts, chunks, answers) is off by default. When it is
//! on, every captured string passes through [`Redactor::apply`] at
//! instrumentation time, so personal data and secrets never reach the
//! exporter, the collector or the backend:
//!
//! - e-mail addresses become `[EMAIL]`;
//! - phone numbers (7 to 15 digits, with `+`, spaces, dots, dashes or
//!   parentheses between them) become `[PHONE]`;
//! - payment card numbers (13 to 19 digits that pass the Luhn check) become
//!   `[CARD]`; a digit run that fails Luhn is left alone (it is an id, not a
//!   card);
//! - API-key-shaped secrets (`sk-…`, `Bearer …`, AWS `AKIA…`, GitHub `ghp_…`,
//!   Slack `xox?-…`, and any 32+ character token mixing letters and digits)
//!   become `[SECRET]`;
//! - values longer than the cap are cut at a character boundary and end with
//!   `…[truncated]`. Truncation happens on the string, before it is put in
//!   any JSON, so JSON built from it stays valid.
//!
//! Configuration: `RAGTRACE_REDACT` (comma list of `email`, `phone`, `card`,
//! `secret`, or `none`; default all four) and `RAGTRACE_CONTENT_MAX_CHARS`
//! (default 4096).
//!
//! ## Redaction by construction
//!
//! Content reaches a span only as a [`Content`] or [`Passages`] value, and
//! only this module can make one: [`Content::capture`] and
//! [`Passages::capture`] return an empty value when capture is off, and the
//! redacted, capped text when it is on. The functions that put content on
//! spans ([`crate::dialects::content`]) accept nothing else, so no dialect,
//! and no handler, can record a prompt, a passage, a tool argument or an
//! answer that skipped the redactor. Error messages are not content, but they can quote it (a
//! provider echoing a prompt, a key in a URL), so
//! [`crate::telemetry::record_error`] passes them through [`Redactor::apply`]
//! too, capture on or off.

mod patterns;

use std::sync::OnceLock;

use patterns::{luhn, redact_digit_runs, redact_emails, redact_secrets, truncate};

use crate::wire::Passage;

/// Whether prompts, retrieved text and answers may be recorded on spans.
///
/// Content is off by default (it is user data). The switch is the GenAI
/// instrumentation convention `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`:
/// `SPAN_ONLY` or `SPAN_AND_EVENT` (or the older `true`) turn it on;
/// `NO_CONTENT` (default), `EVENT_ONLY` or `false` keep spans content-free.
pub fn capture_content() -> bool {
    static CAPTURE: OnceLock<bool> = OnceLock::new();
    *CAPTURE.get_or_init(|| {
        std::env::var("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT").is_ok_and(|v| {
            matches!(
                v.trim().to_ascii_uppercase().as_str(),
                "SPAN_ONLY" | "SPAN_AND_EVENT" | "TRUE"
            )
        })
    })
}

/// Captured content: the redacted, capped text when content capture is on,
/// nothing when it is off. Only [`Content::capture`] and
/// [`Content::capture_with`] make one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Content(Option<String>);

impl Content {
    /// `text`, redacted and capped, if content capture is on.
    pub fn capture(text: &str) -> Content {
        Content::capture_with(|| text.to_owned())
    }

    /// Like [`Content::capture`], for text that costs something to build:
    /// `build` runs only when capture is on.
    pub fn capture_with(build: impl FnOnce() -> String) -> Content {
        Content(capture_content().then(|| Redactor::current().apply(&build())))
    }

    /// The redacted text, if captured.
    pub fn text(&self) -> Option<&str> {
        self.0.as_deref()
    }
}

/// Retrieved passages, captured: id, score and redacted text of each, when
/// content capture is on; nothing when it is off.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Passages(Option<Vec<CapturedPassage>>);

/// One retrieved passage whose text has been redacted and capped.
#[derive(Debug, Clone, PartialEq)]
pub struct CapturedPassage {
    pub id: String,
    pub score: f32,
    text: String,
}

impl CapturedPassage {
    /// The redacted text.
    pub fn text(&self) -> &str {
        &self.text
    }
}

impl Passages {
    /// `passages` with their text redacted and capped, if capture is on.
    pub fn capture(passages: &[Passage]) -> Passages {
        Passages(capture_content().then(|| {
            let redactor = Redactor::current();
            passages
                .iter()
                .map(|p| CapturedPassage {
                    id: p.id.clone(),
                    score: p.score,
                    text: redactor.apply(&p.text),
                })
                .collect()
        }))
    }

    /// The captured passages (`None` when capture is off).
    pub fn get(&self) -> Option<&[CapturedPassage]> {
        self.0.as_deref()
    }
}

/// What to redact, and the length cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Redactor {
    pub email: bool,
    pub phone: bool,
    pub card: bool,
    pub secret: bool,
    pub max_chars: usize,
}

impl Default for Redactor {
    fn default() -> Self {
        Self {
            email: true,
            phone: true,
            card: true,
            secret: true,
            max_chars: 4096,
        }
    }
}

impl Redactor {
    /// From `RAGTRACE_REDACT` and `RAGTRACE_CONTENT_MAX_CHARS`, read once.
    pub fn current() -> Redactor {
        static CURRENT: OnceLock<Redactor> = OnceLock::new();
        *CURRENT.get_or_init(|| {
            let mut redactor = Redactor::default();
            if let Ok(kinds) = std::env::var("RAGTRACE_REDACT") {
                let kinds: Vec<String> = kinds
                    .split(',')
                    .map(|k| k.trim().to_ascii_lowercase())
                    .collect();
                redactor.email = kinds.iter().any(|k| k == "email");
                redactor.phone = kinds.iter().any(|k| k == "phone");
                redactor.card = kinds.iter().any(|k| k == "card");
                redactor.secret = kinds.iter().any(|k| k == "secret");
            }
            if let Some(max) = std::env::var("RAGTRACE_CONTENT_MAX_CHARS")
                .ok()
                .and_then(|v| v.trim().parse().ok())
            {
                redactor.max_chars = max;
            }
            redactor
        })
    }

    /// `text` with everything configured replaced, then capped.
    ///
    /// Returns a plain `String`: the types that may reach a span
    /// ([`Content`], [`Passages`]) are built from it here, in this module.
    pub fn apply(&self, text: &str) -> String {
        let mut out = text.to_owned();
        if self.secret {
            out = redact_secrets(&out);
        }
        if self.email {
            out = redact_emails(&out);
        }
        if self.card {
            out = redact_digit_runs(&out, 13, 19, "[CARD]", luhn);
        }
        if self.phone {
            out = redact_digit_runs(&out, 7, 15, "[PHONE]", |_| true);
        }
        truncate(out, self.max_chars)
    }
}
