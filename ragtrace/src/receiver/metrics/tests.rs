//! Decoding (both encodings) and how the store folds cumulative and delta
//! series.

use std::time::Duration;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint,
    ResourceMetrics, ScopeMetrics, Sum, metric::Data, number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;
use serde_json::{Value, json};

use super::*;
use crate::receiver::DecodeError;
use crate::receiver::tests::{kv, s};

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
