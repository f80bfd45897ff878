//! OTLP metrics for the receiver: decoding `ExportMetricsServiceRequest`
//! (protobuf and JSON, like spans) into flat [`MetricPoint`]s, and a
//! [`MetricStore`] that keeps the current state of every series.
//!
//! # Series and temporality
//!
//! A *series* is one metric of one service with one set of data point
//! attributes: `http.server.request.duration` of `gateway` with
//! `{http.route=/chat, http.response.status_code=200, ...}` is one series.
//! Exporters send a point per series per interval, and what a point means
//! depends on its aggregation temporality:
//!
//! * **Cumulative** (the SDK default): every point holds the total since the
//!   process started. The store keeps the *latest* point (by
//!   `time_unix_nano`) and drops older ones, so a series' count is the number
//!   of measurements so far, however many exports it took. A restarted
//!   process starts over at zero; its first point is the latest, so the
//!   series starts over too.
//! * **Delta**: every point holds only what happened since the previous
//!   export. The store adds it to what it has (counts, sums, bucket counts,
//!   number values), so the stored point is a total as with cumulative.
//! * **Gauges** (no temporality): latest point wins.
//!
//! Either way, a test asks one question, "what is the total now?", and
//! [`MetricStore::wait_until`] lets it wait until the answer is what it
//! expects.
//!
//! This file holds what a point is; `decode.rs` turns requests into points
//! and `store.rs` folds them into series.

mod decode;
mod store;
#[cfg(test)]
mod tests;

pub use decode::{decode_json, decode_protobuf, points_from_request};
pub use store::{MetricStore, summary};

use std::collections::BTreeMap;

use opentelemetry_proto::tonic::metrics::v1::AggregationTemporality;
use serde::Serialize;
use serde_json::Value;

/// How a point's value relates to earlier points (OTLP
/// `AggregationTemporality`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Temporality {
    /// Gauges, and points that (wrongly) leave it unset.
    Unspecified,
    Delta,
    Cumulative,
}

impl Temporality {
    fn from_otlp(value: i32) -> Temporality {
        match AggregationTemporality::try_from(value) {
            Ok(AggregationTemporality::Delta) => Temporality::Delta,
            Ok(AggregationTemporality::Cumulative) => Temporality::Cumulative,
            Ok(AggregationTemporality::Unspecified) | Err(_) => Temporality::Unspecified,
        }
    }
}

/// An explicit-bucket histogram point.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistogramValue {
    /// How many measurements.
    pub count: u64,
    /// Their sum (optional in OTLP).
    pub sum: Option<f64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    /// The bucket boundaries, as the instrument declared them.
    pub bounds: Vec<f64>,
    /// One more than `bounds`: bucket `i` counts values in
    /// `(bounds[i-1], bounds[i]]`, the last one everything above.
    pub bucket_counts: Vec<u64>,
}

/// The value of one point, by metric type.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PointValue {
    /// A gauge or sum point (`asInt` is converted to `f64`).
    Number(f64),
    Histogram(HistogramValue),
    /// Only its count and sum are kept.
    ExponentialHistogram {
        count: u64,
        sum: Option<f64>,
    },
    /// Only its count and sum are kept.
    Summary {
        count: u64,
        sum: f64,
    },
}

/// The metric's type (OTLP `Metric.data`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricKind {
    Gauge,
    Sum { monotonic: bool },
    Histogram,
    ExponentialHistogram,
    Summary,
}

/// One data point, flattened out of its resource, scope and metric.
/// Attribute values are JSON, as in [`super::SpanRecord`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricPoint {
    /// The resource attribute `service.name`, or `"unknown_service"`.
    pub service_name: String,
    pub resource: BTreeMap<String, Value>,
    /// The instrumentation scope's name (the meter's name).
    pub scope_name: String,
    pub name: String,
    pub unit: String,
    pub description: String,
    pub kind: MetricKind,
    pub temporality: Temporality,
    pub attributes: BTreeMap<String, Value>,
    pub start_unix_nanos: u64,
    pub time_unix_nanos: u64,
    pub value: PointValue,
}

impl MetricPoint {
    /// A string attribute.
    pub fn attr_str(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).and_then(Value::as_str)
    }

    /// An integer attribute (also accepts an integral double or a decimal
    /// string).
    pub fn attr_i64(&self, key: &str) -> Option<i64> {
        super::model::json_as_i64(self.attributes.get(key)?)
    }

    /// The histogram, if this is an explicit-bucket histogram point.
    pub fn histogram(&self) -> Option<&HistogramValue> {
        match &self.value {
            PointValue::Histogram(h) => Some(h),
            _ => None,
        }
    }

    /// The value of a gauge or sum point.
    pub fn number(&self) -> Option<f64> {
        match self.value {
            PointValue::Number(n) => Some(n),
            _ => None,
        }
    }

    /// Whether every `(key, value)` of `subset` is among the attributes.
    pub fn has_attributes(&self, subset: &[(&str, Value)]) -> bool {
        subset
            .iter()
            .all(|(key, value)| self.attributes.get(*key) == Some(value))
    }

    /// The series this point belongs to (see the module docs).
    fn series_key(&self) -> SeriesKey {
        SeriesKey {
            service_name: self.service_name.clone(),
            scope_name: self.scope_name.clone(),
            name: self.name.clone(),
            // BTreeMap: attribute order does not make a new series.
            attributes: serde_json::to_string(&self.attributes).unwrap_or_default(),
        }
    }

    /// Folds a newer point of the same series into this one.
    fn merge(&mut self, newer: MetricPoint) {
        if newer.temporality != Temporality::Delta || self.temporality != Temporality::Delta {
            // Cumulative and gauge: the latest point is the state.
            if newer.time_unix_nanos >= self.time_unix_nanos {
                *self = newer;
            }
            return;
        }
        let added = match (&mut self.value, &newer.value) {
            (PointValue::Number(total), PointValue::Number(delta)) => {
                *total += delta;
                true
            }
            (PointValue::Histogram(total), PointValue::Histogram(delta))
                if total.bounds == delta.bounds
                    && total.bucket_counts.len() == delta.bucket_counts.len() =>
            {
                total.count += delta.count;
                total.sum = match (total.sum, delta.sum) {
                    (Some(a), Some(b)) => Some(a + b),
                    (a, b) => a.or(b),
                };
                total.min = min_opt(total.min, delta.min, f64::min);
                total.max = min_opt(total.max, delta.max, f64::max);
                for (sum, add) in total.bucket_counts.iter_mut().zip(&delta.bucket_counts) {
                    *sum += add;
                }
                true
            }
            _ => false,
        };
        if added {
            self.start_unix_nanos = self.start_unix_nanos.min(newer.start_unix_nanos);
            self.time_unix_nanos = self.time_unix_nanos.max(newer.time_unix_nanos);
        } else {
            // A point we cannot add (other bounds, other type): start over.
            *self = newer;
        }
    }
}

fn min_opt(a: Option<f64>, b: Option<f64>, pick: fn(f64, f64) -> f64) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(pick(a, b)),
        (a, b) => a.or(b),
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct SeriesKey {
    service_name: String,
    scope_name: String,
    name: String,
    attributes: String,
}
