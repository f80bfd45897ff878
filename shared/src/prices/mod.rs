//! What a model call cost: a price table per model, and the cost of one
//! `chat` or `embeddings` call recorded on its span and in a metric.
//!
//! The table ships with the binary (`shared/prices.json`, embedded with
//! `include_str!`): list prices in USD per million input and output tokens
//! for the common hosted models, and 0 for ragtrace's own in-process models
//! (`ragtrace-extractive-v1`, `ragtrace-hashing-*`), which are free. A file
//! named in `RAGTRACE_PRICES` replaces it; [`init`] reads that file once at
//! startup, and a file that is missing or malformed stops the service with
//! an error naming the file and the problem.
//!
//! A model is looked up by name ([`Prices::price`]): the exact name first,
//! then a dated snapshot of an entry (`gpt-4o-mini-2024-07-18` is priced as
//! `gpt-4o-mini`), then an entry ending in `*` that is a prefix of the name.
//! A model that matches nothing has no cost: its span gets no cost keys,
//! rather than a cost of 0 that would read as "free".
//!
//! The cost is computed here, by us, from the token counts the model
//! reported: it is an estimate at list price, not the provider's bill.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde::Deserialize;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::attributes::cost as keys;
use crate::metrics::{self, GenAiOperation};

#[cfg(test)]
mod tests;

/// The variable naming a price file that replaces the embedded table.
pub const ENV: &str = "RAGTRACE_PRICES";

/// The embedded table.
pub const EMBEDDED: &str = include_str!("../../prices.json");

/// One model's list price, in USD per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    pub input: f64,
    pub output: f64,
}

/// The cost of one call, in USD.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cost {
    pub input: f64,
    pub output: f64,
    pub total: f64,
}

impl Price {
    /// The cost of `input_tokens` in and `output_tokens` out.
    pub fn cost(&self, input_tokens: u64, output_tokens: u64) -> Cost {
        let input = input_tokens as f64 * self.input / 1_000_000.0;
        let output = output_tokens as f64 * self.output / 1_000_000.0;
        Cost {
            input,
            output,
            total: input + output,
        }
    }
}

/// The file's shape. `_source` and `as_of` say where the prices come from;
/// other top-level keys are ignored, unknown keys in a price are errors.
#[derive(Deserialize)]
struct PriceFile {
    models: BTreeMap<String, Price>,
}

/// A price table, by model name.
#[derive(Debug, Clone, PartialEq)]
pub struct Prices {
    models: BTreeMap<String, Price>,
}

/// Why a price table could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum PricesError {
    #[error("{ENV}={}: cannot read the price file: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{ENV}={}: not a price table: {reason}", path.display())]
    Invalid { path: PathBuf, reason: String },
}

impl Prices {
    /// Parse a table: `{"models": {"<model>": {"input": .., "output": ..}}}`.
    /// Prices must be finite and not negative; `*` may only end a name.
    /// The error is the JSON path and what is wrong there.
    pub fn from_json(json: &str) -> Result<Self, String> {
        let de = &mut serde_json::Deserializer::from_str(json);
        let file: PriceFile = serde_path_to_error::deserialize(de).map_err(|err| {
            let path = err.path().to_string();
            format!("{path}: {}", err.into_inner())
        })?;
        for (model, price) in &file.models {
            if model.trim_end_matches('*').contains('*') || model.is_empty() {
                return Err(format!("models.{model}: `*` may only end a model name"));
            }
            for (side, value) in [("input", price.input), ("output", price.output)] {
                if !value.is_finite() || value < 0.0 {
                    return Err(format!(
                        "models.{model}.{side}: {value} is not a price (USD per 1M tokens, >= 0)"
                    ));
                }
            }
        }
        Ok(Self {
            models: file.models,
        })
    }

    /// The table shipped with ragtrace.
    pub fn embedded() -> Self {
        Self::from_json(EMBEDDED).expect("shared/prices.json is a valid price table")
    }

    /// The table in the file at `path`.
    pub fn from_file(path: &Path) -> Result<Self, PricesError> {
        let json = std::fs::read_to_string(path).map_err(|source| PricesError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_json(&json).map_err(|reason| PricesError::Invalid {
            path: path.to_owned(),
            reason,
        })
    }

    /// The price of `model`: its own entry, else the entry it is a dated
    /// snapshot of, else the longest `prefix*` entry it starts with.
    pub fn price(&self, model: &str) -> Option<Price> {
        if let Some(price) = self.models.get(model) {
            return Some(*price);
        }
        let snapshot_of = self
            .models
            .iter()
            .filter(|(name, _)| !name.ends_with('*'))
            .filter(|(name, _)| {
                model
                    .strip_prefix(name.as_str())
                    .and_then(|rest| rest.strip_prefix('-'))
                    .is_some_and(is_version)
            })
            .max_by_key(|(name, _)| name.len());
        let wildcard = || {
            self.models
                .iter()
                .filter_map(|(name, price)| Some((name.strip_suffix('*')?, price)))
                .filter(|(prefix, _)| model.starts_with(prefix))
                .max_by_key(|(prefix, _)| prefix.len())
        };
        snapshot_of
            .map(|(_, price)| *price)
            .or_else(|| wildcard().map(|(_, price)| *price))
    }

    /// The cost of a call to `model`, or `None` for a model not in the table.
    pub fn cost(&self, model: &str, input_tokens: u64, output_tokens: u64) -> Option<Cost> {
        Some(self.price(model)?.cost(input_tokens, output_tokens))
    }

    pub fn len(&self) -> usize {
        self.models.len()
    }

    pub fn is_empty(&self) -> bool {
        self.models.is_empty()
    }
}

/// What may follow `{model}-` in a snapshot's name: a date (`2024-07-18`,
/// `20250929`), a short version number (`0613`, `2411`, `001`) or `latest`.
/// A single digit is not one: `claude-opus-4-5` is not a snapshot of
/// `claude-opus-4`.
fn is_version(rest: &str) -> bool {
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    let date = || {
        let parts: Vec<&str> = rest.split('-').collect();
        matches!(parts[..], [y, m, d] if digits(y, 4) && digits(m, 2) && digits(d, 2))
    };
    rest == "latest" || (rest.len() >= 3 && digits(rest, rest.len())) || date()
}

static TABLE: OnceLock<Prices> = OnceLock::new();

/// The table `RAGTRACE_PRICES` names, or the embedded one when it is unset
/// or blank.
pub fn from_env() -> Result<Prices, PricesError> {
    match crate::config::env_opt(ENV) {
        Some(path) => Prices::from_file(Path::new(path.trim())),
        None => Ok(Prices::embedded()),
    }
}

/// Load the process's table ([`from_env`]) once. Call it at startup, so a
/// bad `RAGTRACE_PRICES` stops the service before it serves anything.
/// Without it, [`prices`] falls back to the embedded table.
pub fn init() -> Result<(), PricesError> {
    if TABLE.get().is_none() {
        let _ = TABLE.set(from_env()?);
    }
    Ok(())
}

/// The process's table.
pub fn prices() -> &'static Prices {
    TABLE.get_or_init(Prices::embedded)
}

/// Record the cost of one finished call on its span and in the cost metric
/// ([`metrics::cost`]), priced by the operation's response model if known,
/// else its request model. A model not in the table records nothing.
///
/// The span gets `gen_ai.cost.input`, `gen_ai.cost.output` and
/// `gen_ai.cost.total` ([`keys`]), set directly as OpenTelemetry attributes,
/// so the span need not declare them as `tracing` fields.
pub fn record_cost(
    span: &Span,
    operation: &GenAiOperation<'_>,
    input_tokens: u64,
    output_tokens: u64,
) -> Option<Cost> {
    let model = operation.response_model.unwrap_or(operation.request_model);
    let cost = prices().cost(model, input_tokens, output_tokens)?;
    span.set_attribute(keys::INPUT, cost.input);
    span.set_attribute(keys::OUTPUT, cost.output);
    span.set_attribute(keys::TOTAL, cost.total);
    metrics::cost::record(operation, &cost);
    Some(cost)
}
