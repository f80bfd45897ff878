//! [`MetricStore`]: the current point of every series (see the module docs
//! for how points of one series are folded together).

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::watch;

use super::{MetricPoint, SeriesKey};

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
