//! `POST /v1/metrics` bodies into [`MetricPoint`]s, one per data point.

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, metric::Data, number_data_point,
};
use prost::Message;
use serde_json::Value;

use super::{HistogramValue, MetricKind, MetricPoint, PointValue, Temporality};
use crate::receiver::DecodeError;
use crate::receiver::decode::{
    as_array_mut, attributes_to_map, enum_by_name, normalize_attributes, resource_and_service,
    strip_nulls,
};

/// Decodes a protobuf `ExportMetricsServiceRequest`.
pub fn decode_protobuf(body: &[u8]) -> Result<Vec<MetricPoint>, DecodeError> {
    let request = ExportMetricsServiceRequest::decode(body).map_err(DecodeError::Protobuf)?;
    Ok(points_from_request(request))
}

/// Decodes an OTLP/JSON `ExportMetricsServiceRequest`, with the same
/// normalisation as spans ([`crate::receiver::decode_json`]): `null` fields, enums by
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
        let (resource, service_name) = resource_and_service(rm.resource);
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
    strip_nulls(doc);
    let Some(root) = doc.as_object_mut() else {
        return; // not an object: let serde report the error
    };
    let rms = root
        .entry("resourceMetrics")
        .or_insert_with(|| Value::Array(Vec::new()));
    for rm in as_array_mut(Some(rms)) {
        if let Some(resource) = rm.get_mut("resource") {
            normalize_attributes(resource.get_mut("attributes"));
        }
        for sm in as_array_mut(rm.get_mut("scopeMetrics")) {
            if let Some(scope) = sm.get_mut("scope") {
                normalize_attributes(scope.get_mut("attributes"));
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
    normalize_attributes(obj.get_mut("metadata"));
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
            enum_by_name(temporality, |name| {
                AggregationTemporality::from_str_name(name).map(|t| t as i32)
            });
        }
        for point in as_array_mut(data.get_mut("dataPoints")) {
            let Some(point) = point.as_object_mut() else {
                continue;
            };
            normalize_attributes(point.get_mut("attributes"));
            for exemplar in as_array_mut(point.get_mut("exemplars")) {
                normalize_attributes(exemplar.get_mut("filteredAttributes"));
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
