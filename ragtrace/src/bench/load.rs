//! The load generator: HTTP/1.1 keep-alive connections driven from one
//! thread, closed-loop or open-loop, latencies into an HDR histogram.
//!
//! # Cheap, because it shares the cores it measures
//!
//! On a two-core machine every cycle the generator spends is a cycle the
//! pipeline does not get, and it is spent differently in each configuration
//! only if the generator's cost depends on the responses. So: one OS thread
//! with a current-thread Tokio runtime (the generator can never take more
//! than one core), one long-lived connection per concurrent request
//! (`hyper`'s connection-level HTTP/1.1 client: no pool, no per-request
//! connection lookup), request bodies built once and shared (`Bytes`
//! clones), one histogram per connection merged at the end (no lock per
//! request), and `TCP_NODELAY` so a small request is not held back by Nagle.
//! The bench reports the generator's own CPU time per request next to the
//! pipeline's.
//!
//! # Closed loop and open loop
//!
//! **Closed loop** (`concurrency` connections, each sends its next request
//! when the previous one is answered) finds the maximum throughput: the
//! pipeline is kept saturated. Its latencies are those of a saturated
//! system, and a slow response delays the requests behind it (they are never
//! sent), which is why it is the wrong tool for latency under a given load.
//!
//! **Open loop** sends at a fixed rate whatever the responses do. Every
//! request has an *intended* send time on a fixed schedule; its latency is
//! measured from that time, not from when it was actually sent. A stall
//! therefore shows up in every request that should have been sent during it,
//! instead of in one (the "coordinated omission" that makes closed-loop
//! percentiles look better than what users see). The schedule is split over
//! the connections (connection `k` of `K` owns intended times
//! `(k + iK) / rate`); a request whose connection was still busy at its
//! intended time is sent as soon as it frees up and counted as *late*.
//!
//! Tokio's timer has a 1 ms granularity and rounds deadlines up, so each
//! connection sleeps until 1 ms *before* its intended time and sends on
//! waking: sends land within about 1 ms before the intended time instead of
//! up to 1 ms after it. Latency is measured from the earlier of the intended
//! and the actual send time, so an early send measures true service time and
//! a late one includes the wait.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{CONTENT_TYPE, HOST, HeaderValue};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Highest latency the histograms hold (longer ones are clamped to it).
const MAX_LATENCY: Duration = Duration::from_secs(60);
/// A send more than this after its intended time is counted as late.
pub const LATE_AFTER: Duration = Duration::from_millis(1);
/// How long an open-loop connection may run past the end of the schedule to
/// catch up before its remaining requests are counted as not sent.
const CATCH_UP: Duration = Duration::from_secs(2);

/// Where requests go and what they carry.
#[derive(Debug)]
pub struct Target {
    pub addr: SocketAddr,
    pub path: &'static str,
    /// JSON bodies, sent in turn.
    pub bodies: Vec<Bytes>,
    /// A request not answered within this counts as an error.
    pub timeout: Duration,
}

/// Reads a 200 response body: the request's trace id if it was traced
/// (sampled), else `None`.
pub type Classifier = Arc<dyn Fn(&[u8]) -> Option<u128> + Send + Sync>;

/// When a closed-loop run ends.
#[derive(Debug, Clone, Copy)]
pub enum Stop {
    After(Duration),
    Requests(u64),
}

#[derive(Debug, Clone, Copy)]
pub enum Mode {
    Closed {
        concurrency: usize,
        stop: Stop,
    },
    Open {
        /// Requests per second, over all connections.
        rate: f64,
        connections: usize,
        duration: Duration,
    },
}

/// What one run measured.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Latency of every 200 response, in microseconds.
    pub latency_us: Histogram<u64>,
    /// Requests answered 200.
    pub ok: u64,
    /// Requests that failed: connection error, timeout or a non-200 status.
    pub errors: u64,
    /// Trace ids of the 200 responses the classifier called traced.
    pub traced: Vec<u128>,
    /// Open loop: requests sent more than [`LATE_AFTER`] after their
    /// intended time.
    pub late: u64,
    /// Open loop: scheduled requests never sent (the schedule could not be
    /// caught up within 2 s of its end).
    pub not_sent: u64,
    /// From the first send to the last response.
    pub elapsed: Duration,
    /// The first error, for the report.
    pub first_error: Option<String>,
}

impl Outcome {
    fn new() -> Self {
        Self {
            latency_us: new_histogram(),
            ok: 0,
            errors: 0,
            traced: Vec::new(),
            late: 0,
            not_sent: 0,
            elapsed: Duration::ZERO,
            first_error: None,
        }
    }

    fn merge(&mut self, other: &Outcome) {
        self.latency_us
            .add(&other.latency_us)
            .expect("histograms share bounds");
        self.ok += other.ok;
        self.errors += other.errors;
        self.traced.extend_from_slice(&other.traced);
        self.late += other.late;
        self.not_sent += other.not_sent;
        if self.first_error.is_none() {
            self.first_error.clone_from(&other.first_error);
        }
    }

    fn record(&mut self, result: anyhow::Result<Bytes>, latency: Duration, classify: &Classifier) {
        match result {
            Ok(body) => {
                self.ok += 1;
                if let Some(trace_id) = classify(&body) {
                    self.traced.push(trace_id);
                }
                let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
                self.latency_us.saturating_record(us.max(1));
            }
            Err(err) => {
                self.errors += 1;
                if self.first_error.is_none() {
                    self.first_error = Some(format!("{err:#}"));
                }
            }
        }
    }

    /// Completed requests per second.
    pub fn throughput(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            (self.ok + self.errors) as f64 / secs
        } else {
            0.0
        }
    }
}

fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY.as_micros() as u64, 3)
        .expect("valid histogram bounds")
}

/// Run `mode` against `target` on a thread of its own and wait for it.
/// `progress` is bumped once per completed request (for checkpoints).
pub async fn run(
    target: Arc<Target>,
    mode: Mode,
    classify: Classifier,
    progress: Arc<AtomicU64>,
) -> anyhow::Result<Outcome> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("bench-load".into())
        .spawn(move || {
            let result = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(anyhow::Error::from)
                .and_then(|runtime| runtime.block_on(drive(target, mode, classify, progress)));
            let _ = tx.send(result);
        })
        .context("cannot start the load generator thread")?;
    rx.await.context("the load generator thread died")?
}

async fn drive(
    target: Arc<Target>,
    mode: Mode,
    classify: Classifier,
    progress: Arc<AtomicU64>,
) -> anyhow::Result<Outcome> {
    anyhow::ensure!(!target.bodies.is_empty(), "no request bodies");
    let started = Instant::now();
    let mut workers = Vec::new();
    match mode {
        Mode::Closed { concurrency, stop } => {
            anyhow::ensure!(concurrency > 0, "concurrency must be at least 1");
            let issued = Arc::new(AtomicU64::new(0));
            for k in 0..concurrency {
                workers.push(tokio::spawn(closed_loop(
                    Worker::new(&target, &classify, &progress, k, concurrency),
                    stop,
                    started,
                    issued.clone(),
                )));
            }
        }
        Mode::Open {
            rate,
            connections,
            duration,
        } => {
            anyhow::ensure!(
                rate.is_finite() && rate > 0.0,
                "the rate must be positive, not {rate}"
            );
            anyhow::ensure!(connections > 0, "connections must be at least 1");
            for k in 0..connections {
                workers.push(tokio::spawn(open_loop(
                    Worker::new(&target, &classify, &progress, k, connections),
                    rate,
                    started,
                    started + duration,
                )));
            }
        }
    }
    let mut total = Outcome::new();
    for worker in workers {
        total.merge(&worker.await.context("a load worker panicked")?);
    }
    total.elapsed = started.elapsed();
    Ok(total)
}

/// One connection's share of the load.
struct Worker {
    target: Arc<Target>,
    classify: Classifier,
    progress: Arc<AtomicU64>,
    host: HeaderValue,
    sender: Option<SendRequest<Full<Bytes>>>,
    /// Index of the next body; workers start at different ones.
    next_body: usize,
    index: usize,
    of: usize,
    outcome: Outcome,
}

impl Worker {
    fn new(
        target: &Arc<Target>,
        classify: &Classifier,
        progress: &Arc<AtomicU64>,
        index: usize,
        of: usize,
    ) -> Self {
        let host = HeaderValue::from_str(&target.addr.to_string()).expect("an address is ASCII");
        Self {
            target: target.clone(),
            classify: classify.clone(),
            progress: progress.clone(),
            host,
            sender: None,
            next_body: index,
            index,
            of,
            outcome: Outcome::new(),
        }
    }

    /// One request, reconnecting first if the connection was lost. Returns
    /// when the response (or the error) is complete, with the time it was.
    async fn request(&mut self) -> (anyhow::Result<Bytes>, Instant) {
        let body = self.target.bodies[self.next_body % self.target.bodies.len()].clone();
        self.next_body += 1;
        let timeout = self.target.timeout;
        let result = match tokio::time::timeout(timeout, self.exchange(body)).await {
            Ok(result) => result,
            Err(_) => Err(anyhow::anyhow!("no response within {timeout:?}")),
        };
        let done = Instant::now();
        if result.as_ref().is_err_and(|e| !e.is::<HttpStatus>()) {
            // A transport error or a timeout may leave the connection
            // half-used: start over on a new one. (A complete non-200
            // response leaves it reusable.)
            self.sender = None;
        }
        self.progress.fetch_add(1, Ordering::Relaxed);
        (result, done)
    }

    /// Whether the last request failed below HTTP (then back off before
    /// the next: a refused connection fails in microseconds and would spin).
    fn disconnected(&self) -> bool {
        self.sender.is_none()
    }

    async fn exchange(&mut self, body: Bytes) -> anyhow::Result<Bytes> {
        let sender = match &mut self.sender {
            Some(sender) => sender,
            None => self.sender.insert(connect(self.target.addr).await?),
        };
        sender.ready().await.context("connection closed")?;
        let request = Request::post(self.target.path)
            .header(HOST, self.host.clone())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .body(Full::new(body))?;
        let response = sender.send_request(request).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        if status != StatusCode::OK {
            return Err(HttpStatus(status, String::from_utf8_lossy(&body).into_owned()).into());
        }
        Ok(body)
    }

    fn record(&mut self, result: anyhow::Result<Bytes>, latency: Duration) {
        self.outcome.record(result, latency, &self.classify);
    }
}

/// A complete response with a status other than 200.
#[derive(Debug, thiserror::Error)]
#[error("HTTP {0}: {1}")]
struct HttpStatus(StatusCode, String);

async fn closed_loop(
    mut worker: Worker,
    stop: Stop,
    started: Instant,
    issued: Arc<AtomicU64>,
) -> Outcome {
    loop {
        let go = match stop {
            Stop::After(duration) => started.elapsed() < duration,
            Stop::Requests(n) => issued.fetch_add(1, Ordering::Relaxed) < n,
        };
        if !go {
            break;
        }
        let sent = Instant::now();
        let (result, done) = worker.request().await;
        worker.record(result, done - sent);
        if worker.disconnected() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    worker.outcome
}

async fn open_loop(mut worker: Worker, rate: f64, started: Instant, end: Instant) -> Outcome {
    // Connection k of K owns the intended send times (k + iK) / rate.
    let period = Duration::from_secs_f64(worker.of as f64 / rate);
    let mut intended = started + Duration::from_secs_f64(worker.index as f64 / rate);
    while intended < end {
        let now = Instant::now();
        if now >= end + CATCH_UP {
            // Hopelessly behind: what is left of the schedule was not sent.
            let left = (end - intended).as_secs_f64() / period.as_secs_f64();
            worker.outcome.not_sent += left.ceil() as u64;
            break;
        }
        // See the module docs: wake at most ~1 ms early, never late.
        let wake = intended.checked_sub(Duration::from_millis(1));
        if let Some(wake) = wake.filter(|w| *w > now) {
            tokio::time::sleep_until(wake.into()).await;
        }
        let sent = Instant::now();
        if sent > intended + LATE_AFTER {
            worker.outcome.late += 1;
        }
        let (result, done) = worker.request().await;
        worker.record(result, done - intended.min(sent));
        intended += period;
    }
    worker.outcome
}

/// A new keep-alive HTTP/1.1 connection to `addr`.
async fn connect(addr: SocketAddr) -> anyhow::Result<SendRequest<Full<Bytes>>> {
    let stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("cannot connect to {addr}"))?;
    stream.set_nodelay(true)?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        // Ends when the sender is dropped or the server closes.
        let _ = connection.await;
    });
    Ok(sender)
}

/// `GET path` on a fresh connection: the status, or an error if nothing
/// answered within `timeout` (for readiness probes).
pub async fn get_status(addr: SocketAddr, path: &str, timeout: Duration) -> anyhow::Result<u16> {
    let probe = async {
        let mut sender = connect(addr).await?;
        let request = Request::get(path)
            .header(HOST, HeaderValue::from_str(&addr.to_string())?)
            .body(Full::new(Bytes::new()))?;
        let response = sender.send_request(request).await?;
        let status = response.status().as_u16();
        let _ = response.into_body().collect().await;
        anyhow::Ok(status)
    };
    tokio::time::timeout(timeout, probe)
        .await
        .map_err(|_| anyhow::anyhow!("no answer within {timeout:?}"))?
}

#[cfg(test)]
mod tests;
