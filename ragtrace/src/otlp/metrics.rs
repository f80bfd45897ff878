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

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, metric::Data, number_data_point,
};
use prost::Message;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::watch;

use super::{DecodeError, as_array_mut, attributes_to_map};

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
        super::json_as_i64(self.attributes.get(key)?)
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

// ---------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------

/// Decodes a protobuf `ExportMetricsServiceRequest`.
pub fn decode_protobuf(body: &[u8]) -> Result<Vec<MetricPoint>, DecodeError> {
    let request = ExportMetricsServiceRequest::decode(body).map_err(DecodeError::Protobuf)?;
    Ok(points_from_request(request))
}

/// Decodes an OTLP/JSON `ExportMetricsServiceRequest`, with the same
/// normalisation as spans ([`super::decode_json`]): `null` fields, enums by
/// name (`AGGREGATION_TEMPORALITY_CUMULATIVE`), `{}` attribute values, plus
/// `asInt` given as a string (as the OTLP JSON encoding writes 64-bit
/// integers).
pub fn decode_json(body: &[u8]) -> Result<Vec<MetricPoint>, DecodeError> {
    let mut doc: Value = serde_json::from_slice(body).map_err(DecodeError::Json)?;
    normalize_request(&mut doc);
    let request: ExportMetricsServiceRequest =
        serde_json::from_value(doc).map_err(DecodeError::Json)?;
    Ok(points_from_request(request))
}

/// Flattens a request into points, one per data point.
pub fn points_from_request(request: ExportMetricsServiceRequest) -> Vec<MetricPoint> {
    let mut out = Vec::new();
    for rm in request.resource_metrics {
        let (resource, service_name) = super::resource_and_service(rm.resource);
        for sm in rm.scope_metrics {
            let scope_name = sm.scope.map(|s| s.name).unwrap_or_default();
            for metric in sm.metrics {
                let point = |kind, temporality, attributes, start, time, value| MetricPoint {
                    service_name: service_name.clone(),
                    resource: resource.clone(),
                    scope_name: scope_name.clone(),
                    name: metric.name.clone(),
                    unit: metric.unit.clone(),
                    description: metric.description.clone(),
                    kind,
                    temporality,
                    attributes: attributes_to_map(attributes),
                    start_unix_nanos: start,
                    time_unix_nanos: time,
                    value,
                };
                let number = |value: Option<number_data_point::Value>| match value {
                    Some(number_data_point::Value::AsDouble(d)) => d,
                    Some(number_data_point::Value::AsInt(i)) => i as f64,
                    None => f64::NAN,
                };
                match metric.data.clone() {
                    None => {}
                    Some(Data::Gauge(gauge)) => {
                        for p in gauge.data_points {
                            out.push(point(
                                MetricKind::Gauge,
                                Temporality::Unspecified,
                                p.attributes,
                                p.start_time_unix_nano,
                                p.time_unix_nano,
                                PointValue::Number(number(p.value)),
                            ));
                        }
                    }
                    Some(Data::Sum(sum)) => {
                        let temporality = Temporality::from_otlp(sum.aggregation_temporality);
                        for p in sum.data_points {
                            out.push(point(
                                MetricKind::Sum {
                                    monotonic: sum.is_monotonic,
                                },
                                temporality,
                                p.attributes,
                                p.start_time_unix_nano,
                                p.time_unix_nano,
                                PointValue::Number(number(p.value)),
                            ));
                        }
                    }
                    Some(Data::Histogram(histogram)) => {
                        let temporality = Temporality::from_otlp(histogram.aggregation_temporality);
                        for p in histogram.data_points {
                            out.push(point(
                                MetricKind::Histogram,
                                temporality,
                                p.attributes,
                                p.start_time_unix_nano,
                                p.time_unix_nano,
                                PointValue::Histogram(HistogramValue {
                                    count: p.count,
                                    sum: p.sum,
                                    min: p.min,
                                    max: p.max,
                                    bounds: p.explicit_bounds,
                                    bucket_counts: p.bucket_counts,
                                }),
                            ));
                        }
                    }
                    Some(Data::ExponentialHistogram(histogram)) => {
                        let temporality = Temporality::from_otlp(histogram.aggregation_temporality);
                        for p in histogram.data_points {
                            out.push(point(
                                MetricKind::ExponentialHistogram,
                                temporality,
                                p.attributes,
                                p.start_time_unix_nano,
                                p.time_unix_nano,
                                PointValue::ExponentialHistogram {
                                    count: p.count,
                                    sum: p.sum,
                                },
                            ));
                        }
                    }
                    Some(Data::Summary(summary)) => {
                        for p in summary.data_points {
                            out.push(point(
                                MetricKind::Summary,
                                // Summaries are cumulative by definition.
                                Temporality::Cumulative,
                                p.attributes,
                                p.start_time_unix_nano,
                                p.time_unix_nano,
                                PointValue::Summary {
                                    count: p.count,
                                    sum: p.sum,
                                },
                            ));
                        }
                    }
                }
            }
        }
    }
    out
}

fn normalize_request(doc: &mut Value) {
    super::strip_nulls(doc);
    let Some(root) = doc.as_object_mut() else {
        return; // not an object: let serde report the error
    };
    let rms = root
        .entry("resourceMetrics")
        .or_insert_with(|| Value::Array(Vec::new()));
    for rm in as_array_mut(Some(rms)) {
        if let Some(resource) = rm.get_mut("resource") {
            super::normalize_attributes(resource.get_mut("attributes"));
        }
        for sm in as_array_mut(rm.get_mut("scopeMetrics")) {
            if let Some(scope) = sm.get_mut("scope") {
                super::normalize_attributes(scope.get_mut("attributes"));
            }
            for metric in as_array_mut(sm.get_mut("metrics")) {
                normalize_metric(metric);
            }
        }
    }
}

fn normalize_metric(metric: &mut Value) {
    let Some(obj) = metric.as_object_mut() else {
        return;
    };
    super::normalize_attributes(obj.get_mut("metadata"));
    for kind in [
        "gauge",
        "sum",
        "histogram",
        "exponentialHistogram",
        "summary",
    ] {
        let Some(data) = obj.get_mut(kind).and_then(Value::as_object_mut) else {
            continue;
        };
        if let Some(temporality) = data.get_mut("aggregationTemporality") {
            super::enum_by_name(temporality, |name| {
                AggregationTemporality::from_str_name(name).map(|t| t as i32)
            });
        }
        for point in as_array_mut(data.get_mut("dataPoints")) {
            let Some(point) = point.as_object_mut() else {
                continue;
            };
            super::normalize_attributes(point.get_mut("attributes"));
            for exemplar in as_array_mut(point.get_mut("exemplars")) {
                super::normalize_attributes(exemplar.get_mut("filteredAttributes"));
            }
            // sfixed64 in JSON is a string; the crate's serde takes a number.
            if let Some(Value::String(int)) = point.get("asInt")
                && let Ok(int) = int.trim().parse::<i64>()
            {
                point.insert("asInt".into(), Value::from(int));
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Store
// ---------------------------------------------------------------------------

#[derive(Default)]
struct State {
    series: HashMap<SeriesKey, MetricPoint>,
    export_requests: u64,
    json_export_requests: u64,
}

impl State {
    /// Every series' current point, sorted (service, name, attributes).
    fn points(&self) -> Vec<MetricPoint> {
        let mut keyed: Vec<(&SeriesKey, &MetricPoint)> = self.series.iter().collect();
        keyed.sort_by(|a, b| a.0.cmp(b.0));
        keyed.into_iter().map(|(_, p)| p.clone()).collect()
    }
}

struct Shared {
    state: Mutex<State>,
    /// Bumped on every change; waiters watch it.
    generation: watch::Sender<u64>,
}

/// Thread-safe store of the current point of every metric series received.
/// Cloning shares the store.
#[derive(Clone)]
pub struct MetricStore {
    shared: Arc<Shared>,
}

impl Default for MetricStore {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for MetricStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetricStore")
            .field("series", &self.len())
            .field("export_requests", &self.export_requests())
            .finish()
    }
}

impl MetricStore {
    pub fn new() -> Self {
        MetricStore {
            shared: Arc::new(Shared {
                state: Mutex::new(State::default()),
                generation: watch::Sender::new(0),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.shared
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Folds the points into their series (see the module docs) and wakes
    /// waiters.
    pub fn push(&self, points: Vec<MetricPoint>) {
        {
            let mut state = self.lock();
            for point in points {
                match state.series.entry(point.series_key()) {
                    std::collections::hash_map::Entry::Occupied(mut entry) => {
                        entry.get_mut().merge(point)
                    }
                    std::collections::hash_map::Entry::Vacant(entry) => {
                        entry.insert(point);
                    }
                }
            }
        }
        self.shared.generation.send_modify(|g| *g += 1);
    }

    /// Records one received export request and its points.
    pub(crate) fn push_export(&self, points: Vec<MetricPoint>, json: bool) {
        {
            let mut state = self.lock();
            state.export_requests += 1;
            state.json_export_requests += u64::from(json);
        }
        self.push(points);
    }

    /// Number of metrics export requests received and decoded
    /// (`POST /v1/metrics`, including empty ones).
    pub fn export_requests(&self) -> u64 {
        self.lock().export_requests
    }

    /// How many of [`MetricStore::export_requests`] were OTLP/JSON.
    pub fn json_export_requests(&self) -> u64 {
        self.lock().json_export_requests
    }

    /// The current point of every series, sorted by service, metric name
    /// and attributes.
    pub fn all(&self) -> Vec<MetricPoint> {
        self.lock().points()
    }

    /// The series of metric `name` exported by `service`.
    pub fn series(&self, service: &str, name: &str) -> Vec<MetricPoint> {
        self.all()
            .into_iter()
            .filter(|p| p.service_name == service && p.name == name)
            .collect()
    }

    /// `(service.name, metric name)` of every series.
    pub fn names(&self) -> BTreeSet<(String, String)> {
        self.lock()
            .series
            .values()
            .map(|p| (p.service_name.clone(), p.name.clone()))
            .collect()
    }

    /// Number of series.
    pub fn len(&self) -> usize {
        self.lock().series.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets every series (the export request counter is kept).
    pub fn clear(&self) {
        self.lock().series.clear();
        self.shared.generation.send_modify(|g| *g += 1);
    }

    /// Waits until `pred` holds for the current points ([`MetricStore::all`]).
    /// `Ok` with those points when it does, `Err` with the points at the
    /// timeout.
    pub async fn wait_until(
        &self,
        timeout: Duration,
        pred: impl Fn(&[MetricPoint]) -> bool,
    ) -> Result<Vec<MetricPoint>, Vec<MetricPoint>> {
        let deadline = tokio::time::Instant::now() + timeout;
        // Subscribe before looking, so a push in between is not missed.
        let mut rx = self.shared.generation.subscribe();
        loop {
            let points = self.all();
            if pred(&points) {
                return Ok(points);
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) | Err(_) => {
                    let points = self.all();
                    return if pred(&points) {
                        Ok(points)
                    } else {
                        Err(points)
                    };
                }
            }
        }
    }
}

/// A one-line description of `points` for humans: how many series of how
/// many metrics from which services.
pub fn summary(points: &[MetricPoint]) -> String {
    let services: BTreeSet<&str> = points.iter().map(|p| p.service_name.as_str()).collect();
    let metrics: BTreeSet<&str> = points.iter().map(|p| p.name.as_str()).collect();
    format!(
        "{} metric series ({} metrics) from {}",
        points.len(),
        metrics.len(),
        if services.is_empty() {
            "no service".to_owned()
        } else {
            services.into_iter().collect::<Vec<_>>().join(", ")
        }
    )
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
    use opentelemetry_proto::tonic::metrics::v1::{
        Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics,
        ScopeMetrics, Sum,
    };
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use serde_json::json;

    use super::super::tests::{kv, s};
    use super::*;

    const BOUNDS: [f64; 3] = [0.1, 1.0, 10.0];

    fn histogram_point(
        route: &str,
        time: u64,
        count: u64,
        sum: f64,
        buckets: [u64; 4],
    ) -> HistogramDataPoint {
        HistogramDataPoint {
            attributes: vec![
                kv("http.route", s(route)),
                kv(
                    "http.response.status_code",
                    opentelemetry_proto::tonic::common::v1::any_value::Value::IntValue(200),
                ),
            ],
            start_time_unix_nano: 1_000,
            time_unix_nano: time,
            count,
            sum: Some(sum),
            bucket_counts: buckets.to_vec(),
            explicit_bounds: BOUNDS.to_vec(),
            min: Some(0.05),
            max: Some(5.0),
            ..Default::default()
        }
    }

    fn request(
        service: &str,
        temporality: AggregationTemporality,
        points: Vec<HistogramDataPoint>,
    ) -> ExportMetricsServiceRequest {
        ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                resource: Some(Resource {
                    attributes: vec![kv("service.name", s(service))],
                    ..Default::default()
                }),
                scope_metrics: vec![ScopeMetrics {
                    scope: Some(InstrumentationScope {
                        name: "ragtrace".into(),
                        ..Default::default()
                    }),
                    metrics: vec![
                        Metric {
                            name: "http.server.request.duration".into(),
                            unit: "s".into(),
                            description: "Duration of HTTP server requests.".into(),
                            data: Some(Data::Histogram(Histogram {
                                data_points: points,
                                aggregation_temporality: temporality as i32,
                            })),
                            ..Default::default()
                        },
                        Metric {
                            name: "queue.size".into(),
                            unit: "{span}".into(),
                            data: Some(Data::Gauge(Gauge {
                                data_points: vec![NumberDataPoint {
                                    time_unix_nano: 5_000,
                                    value: Some(number_data_point::Value::AsInt(7)),
                                    ..Default::default()
                                }],
                            })),
                            ..Default::default()
                        },
                        Metric {
                            name: "requests".into(),
                            data: Some(Data::Sum(Sum {
                                data_points: vec![NumberDataPoint {
                                    time_unix_nano: 5_000,
                                    value: Some(number_data_point::Value::AsDouble(2.5)),
                                    ..Default::default()
                                }],
                                aggregation_temporality: temporality as i32,
                                is_monotonic: true,
                            })),
                            ..Default::default()
                        },
                    ],
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            }],
        }
    }

    #[test]
    fn protobuf_maps_every_field_of_a_histogram_point() {
        let body = request(
            "gateway",
            AggregationTemporality::Cumulative,
            vec![histogram_point("/chat", 2_000, 3, 1.5, [1, 1, 1, 0])],
        )
        .encode_to_vec();
        let points = decode_protobuf(&body).unwrap();
        assert_eq!(points.len(), 3);
        let p = &points[0];
        assert_eq!(p.service_name, "gateway");
        assert_eq!(p.resource["service.name"], json!("gateway"));
        assert_eq!(p.scope_name, "ragtrace");
        assert_eq!(p.name, "http.server.request.duration");
        assert_eq!(p.unit, "s");
        assert_eq!(p.description, "Duration of HTTP server requests.");
        assert_eq!(p.kind, MetricKind::Histogram);
        assert_eq!(p.temporality, Temporality::Cumulative);
        assert_eq!(p.attr_str("http.route"), Some("/chat"));
        assert_eq!(p.attr_i64("http.response.status_code"), Some(200));
        assert!(p.has_attributes(&[("http.route", json!("/chat"))]));
        assert!(!p.has_attributes(&[("http.route", json!("/other"))]));
        assert_eq!(p.start_unix_nanos, 1_000);
        assert_eq!(p.time_unix_nanos, 2_000);
        assert_eq!(
            p.histogram(),
            Some(&HistogramValue {
                count: 3,
                sum: Some(1.5),
                min: Some(0.05),
                max: Some(5.0),
                bounds: BOUNDS.to_vec(),
                bucket_counts: vec![1, 1, 1, 0],
            })
        );
        assert_eq!(points[1].kind, MetricKind::Gauge);
        assert_eq!(points[1].temporality, Temporality::Unspecified);
        assert_eq!(points[1].number(), Some(7.0));
        assert_eq!(points[1].histogram(), None);
        assert_eq!(points[2].kind, MetricKind::Sum { monotonic: true });
        assert_eq!(points[2].number(), Some(2.5));
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(matches!(
            decode_protobuf(b"\xff\xff\xff not protobuf"),
            Err(DecodeError::Protobuf(_))
        ));
        assert!(matches!(
            decode_json(b"{\"resourceMetrics\": 7}"),
            Err(DecodeError::Json(_))
        ));
    }

    #[test]
    fn json_as_the_spec_writes_it() {
        // 64-bit integers as strings, enums by name, hex-free (metrics have
        // no ids), an attribute with an empty value.
        let doc = r#"{"resourceMetrics": [{
          "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "retrieval"}}]},
          "scopeMetrics": [{
            "scope": {"name": "ragtrace", "version": "0.1.0"},
            "metrics": [
              {"name": "gen_ai.client.token.usage", "unit": "{token}",
               "histogram": {"aggregationTemporality": "AGGREGATION_TEMPORALITY_CUMULATIVE",
                 "dataPoints": [{
                   "attributes": [{"key": "gen_ai.token.type", "value": {"stringValue": "input"}},
                                  {"key": "empty", "value": {}}],
                   "startTimeUnixNano": "1544712660000000000",
                   "timeUnixNano": "1544712661000000000",
                   "count": "2", "sum": 40, "bucketCounts": ["0", "1", "1", "0"],
                   "explicitBounds": [1, 16, 64], "min": null}]}},
              {"name": "up", "gauge": {"dataPoints": [{"asInt": "1", "timeUnixNano": 5}]}},
              {"name": "future", "someFutureType": {}}
            ]}]}]}"#;
        let points = decode_json(doc.as_bytes()).unwrap();
        assert_eq!(points.len(), 2, "{points:#?}");
        let usage = &points[0];
        assert_eq!(usage.service_name, "retrieval");
        assert_eq!(usage.temporality, Temporality::Cumulative);
        assert_eq!(usage.start_unix_nanos, 1_544_712_660_000_000_000);
        assert_eq!(usage.attr_str("gen_ai.token.type"), Some("input"));
        assert_eq!(usage.attributes["empty"], Value::Null);
        let h = usage.histogram().unwrap();
        assert_eq!((h.count, h.sum, h.min), (2, Some(40.0), None));
        assert_eq!(h.bounds, [1.0, 16.0, 64.0]);
        assert_eq!(h.bucket_counts, [0, 1, 1, 0]);
        assert_eq!(points[1].number(), Some(1.0));
    }

    #[test]
    fn json_serialised_by_the_crate_round_trips() {
        // What the SDK's http/json exporter sends is this serialisation.
        let original = request(
            "llm-service",
            AggregationTemporality::Delta,
            vec![histogram_point("/generate", 2_000, 1, 0.3, [0, 1, 0, 0])],
        );
        let body = serde_json::to_vec(&original).unwrap();
        assert_eq!(
            decode_json(&body).unwrap(),
            points_from_request(original.clone())
        );
    }

    impl MetricStore {
        fn push_export_pb(&self, points: Vec<MetricPoint>) {
            self.push_export(points, false);
        }
    }

    #[test]
    fn cumulative_series_keep_their_latest_point() {
        let store = MetricStore::new();
        let cumulative = AggregationTemporality::Cumulative;
        store.push_export_pb(points_from_request(request(
            "gateway",
            cumulative,
            vec![
                histogram_point("/chat", 2_000, 1, 0.5, [0, 1, 0, 0]),
                histogram_point("/healthz", 2_000, 4, 0.01, [4, 0, 0, 0]),
            ],
        )));
        store.push_export_pb(points_from_request(request(
            "gateway",
            cumulative,
            vec![histogram_point("/chat", 3_000, 3, 2.5, [0, 2, 1, 0])],
        )));
        // An older export arriving late changes nothing.
        store.push_export_pb(points_from_request(request(
            "gateway",
            cumulative,
            vec![histogram_point("/chat", 2_500, 2, 1.0, [0, 2, 0, 0])],
        )));
        assert_eq!(store.export_requests(), 3);
        let series = store.series("gateway", "http.server.request.duration");
        assert_eq!(series.len(), 2, "one series per route");
        let chat = series
            .iter()
            .find(|p| p.attr_str("http.route") == Some("/chat"))
            .unwrap();
        let h = chat.histogram().unwrap();
        assert_eq!((h.count, h.sum), (3, Some(2.5)));
        assert_eq!(h.bucket_counts, [0, 2, 1, 0]);
        assert_eq!(chat.time_unix_nanos, 3_000);
        // Three metrics in all: the histogram's two series, gauge, sum.
        assert_eq!(store.len(), 4);
        assert!(store.names().contains(&(
            "gateway".to_owned(),
            "http.server.request.duration".to_owned()
        )));
        assert_eq!(
            summary(&store.all()),
            "4 metric series (3 metrics) from gateway"
        );
    }

    #[test]
    fn delta_series_are_added_up() {
        let store = MetricStore::new();
        let delta = AggregationTemporality::Delta;
        store.push(points_from_request(request(
            "retrieval",
            delta,
            vec![histogram_point("/retrieve", 2_000, 1, 0.5, [0, 1, 0, 0])],
        )));
        let mut second = histogram_point("/retrieve", 3_000, 2, 20.0, [0, 0, 1, 1]);
        second.start_time_unix_nano = 2_000;
        second.min = Some(0.01);
        store.push(points_from_request(request(
            "retrieval",
            delta,
            vec![second],
        )));
        let series = store.series("retrieval", "http.server.request.duration");
        let h = series[0].histogram().unwrap();
        assert_eq!((h.count, h.sum), (3, Some(20.5)));
        assert_eq!(h.bucket_counts, [0, 1, 1, 1]);
        assert_eq!((h.min, h.max), (Some(0.01), Some(5.0)));
        assert_eq!(
            (series[0].start_unix_nanos, series[0].time_unix_nanos),
            (1_000, 3_000)
        );
        let requests = store.series("retrieval", "requests");
        assert_eq!(requests[0].number(), Some(5.0), "2.5 + 2.5");
        // Gauges are not added up, even from a delta exporter.
        assert_eq!(
            store.series("retrieval", "queue.size")[0].number(),
            Some(7.0)
        );
    }

    #[tokio::test]
    async fn wait_until_sees_later_pushes_and_times_out_with_the_state() {
        let store = MetricStore::new();
        let pusher = store.clone();
        let waiter = tokio::spawn(async move {
            store
                .wait_until(Duration::from_secs(5), |points| {
                    points.iter().any(|p| p.service_name == "gateway")
                })
                .await
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        pusher.push(points_from_request(request(
            "gateway",
            AggregationTemporality::Cumulative,
            vec![],
        )));
        assert!(waiter.await.unwrap().is_ok());

        let timed_out = pusher
            .wait_until(Duration::from_millis(50), |points| points.len() > 100)
            .await;
        assert_eq!(timed_out.unwrap_err().len(), 2);
    }
}
