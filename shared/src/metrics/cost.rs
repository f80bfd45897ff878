//! `ragtrace.gen_ai.client.cost`: what GenAI calls cost, in USD, counted by
//! model.
//!
//! A counter (a sum that only grows), with the attributes of
//! `gen_ai.client.token.usage`: `gen_ai.operation.name`,
//! `gen_ai.provider.name`, `gen_ai.request.model`, `gen_ai.response.model`
//! when known, `server.address` and `server.port` for a hosted model. Each
//! call adds its `gen_ai.cost.total`, priced by [`crate::prices`]; a model
//! without a price adds nothing (its series does not exist, rather than
//! sitting at 0). The OpenTelemetry conventions define no cost metric, hence
//! the `ragtrace.` prefix.
//!
//! Like the histograms in [`super`], it counts every call, sampled or not:
//! the spend per model comes from here, one request's cost from its span.

use std::sync::OnceLock;

use opentelemetry::metrics::{Counter, Meter};
use opentelemetry::{InstrumentationScope, global};

use super::{GenAiOperation, METER_NAME};
use crate::prices::Cost;

/// The counter's name.
pub const COST: &str = "ragtrace.gen_ai.client.cost";

/// The cost counter, created from one [`Meter`].
#[derive(Debug, Clone)]
pub struct CostCounter {
    cost: Counter<f64>,
}

impl CostCounter {
    pub fn new(meter: &Meter) -> Self {
        Self {
            cost: meter
                .f64_counter(COST)
                .with_unit("USD")
                .with_description("Cost of GenAI operations at list price.")
                .build(),
        }
    }

    /// See [`record`].
    pub fn record(&self, operation: &GenAiOperation<'_>, cost: &Cost) {
        self.cost.add(cost.total, &operation.attributes(false));
    }
}

/// The process-wide counter, from the global meter provider on first use.
fn counter() -> &'static CostCounter {
    static COUNTER: OnceLock<CostCounter> = OnceLock::new();
    COUNTER.get_or_init(|| {
        let scope = InstrumentationScope::builder(METER_NAME)
            .with_version(env!("CARGO_PKG_VERSION"))
            .build();
        CostCounter::new(&global::meter_with_scope(scope))
    })
}

/// Add one finished operation's total cost to `ragtrace.gen_ai.client.cost`.
/// [`crate::prices::record_cost`] calls it along with recording the span's
/// cost.
pub fn record(operation: &GenAiOperation<'_>, cost: &Cost) {
    counter().record(operation, cost);
}

#[cfg(test)]
mod tests {
    //! The counter against a real SDK pipeline, read back from an exporter
    //! that keeps what it is given (like the tests in [`super::super`]).

    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use opentelemetry::metrics::MeterProvider as _;
    use opentelemetry_sdk::error::OTelSdkResult;
    use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData, ResourceMetrics};
    use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
    use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider, Temporality};

    use super::*;
    use crate::prices::Prices;

    /// One data point of [`COST`]: attributes, sum, unit.
    type Point = (BTreeMap<String, String>, f64, String);

    #[derive(Clone, Default)]
    struct Keep(Arc<Mutex<Vec<Point>>>);

    impl PushMetricExporter for Keep {
        async fn export(&self, metrics: &ResourceMetrics) -> OTelSdkResult {
            let mut kept = self.0.lock().unwrap();
            kept.clear(); // cumulative: the last export holds everything
            for scope in metrics.scope_metrics() {
                for metric in scope.metrics().filter(|m| m.name() == COST) {
                    let AggregatedMetrics::F64(MetricData::Sum(sum)) = metric.data() else {
                        panic!("{COST} is not an f64 sum");
                    };
                    assert!(sum.is_monotonic(), "a counter only grows");
                    for point in sum.data_points() {
                        let attributes = point
                            .attributes()
                            .map(|kv| (kv.key.to_string(), kv.value.to_string()))
                            .collect();
                        kept.push((attributes, point.value(), metric.unit().to_owned()));
                    }
                }
            }
            Ok(())
        }
        fn force_flush(&self) -> OTelSdkResult {
            Ok(())
        }
        fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
            Ok(())
        }
        fn temporality(&self) -> Temporality {
            Temporality::Cumulative
        }
    }

    const CHAT: GenAiOperation<'static> = GenAiOperation {
        operation: "chat",
        provider: "openai",
        request_model: "gpt-4o-mini",
        response_model: Some("gpt-4o-mini-2024-07-18"),
        server_address: Some("api.openai.com"),
        server_port: Some(443),
        error_type: None,
    };

    #[test]
    fn costs_add_up_per_model_with_the_token_usage_attributes() {
        let keep = Keep::default();
        let provider = SdkMeterProvider::builder()
            .with_reader(
                PeriodicReader::builder(keep.clone())
                    .with_interval(Duration::from_secs(3600))
                    .build(),
            )
            .build();
        let counter = CostCounter::new(&provider.meter(METER_NAME));
        let prices = Prices::embedded();
        // Two calls of gpt-4o-mini ($0.15 in, $0.60 out per 1M tokens).
        counter.record(&CHAT, &prices.cost("gpt-4o-mini", 1_000, 100).unwrap());
        counter.record(&CHAT, &prices.cost("gpt-4o-mini", 3_000, 300).unwrap());
        provider.force_flush().unwrap();

        let points = keep.0.lock().unwrap().clone();
        assert_eq!(points.len(), 1, "one series: {points:?}");
        let (attributes, sum, unit) = &points[0];
        assert_eq!(unit, "USD");
        let expected = (4_000.0 * 0.15 + 400.0 * 0.60) / 1e6;
        assert!((sum - expected).abs() < 1e-12, "{sum} != {expected}");
        let keys: Vec<&str> = attributes.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "gen_ai.operation.name",
                "gen_ai.provider.name",
                "gen_ai.request.model",
                "gen_ai.response.model",
                "server.address",
                "server.port",
            ]
        );
        assert_eq!(
            attributes["gen_ai.response.model"],
            "gpt-4o-mini-2024-07-18"
        );
    }
}
