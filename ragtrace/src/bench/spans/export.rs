//! The export side, part by part: translate, encoding and sending, over
//! real spans; and the processor and exporter that free what they get.

use std::io::{BufRead, BufReader, Read, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::http::header::HeaderMap;
use opentelemetry::Context;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{Sampler, SpanData, SpanExporter, SpanProcessor};
use tracing_subscriber::layer::SubscriberExt;

use super::{BATCH, Clock, SPANS, cpu, provider, tracing_request};

/// translate, encoding and sending, per span, over batches of real spans
/// (one `/chat`'s tree, recorded through the layer, repeated to fill a batch).
pub(super) fn export_parts(requests: u64) -> (f64, f64, f64) {
    let kept = Arc::default();
    let provider = provider(Sampler::AlwaysOn, Capture(Some(Arc::clone(&kept))));
    let layer = shared::telemetry::otel_layer(provider.tracer("bench"));
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        tracing_request(&mut HeaderMap::new())
    });
    let tree = std::mem::take(&mut *kept.lock().unwrap());
    assert_eq!(tree.len(), SPANS, "one /chat is {SPANS} spans");
    let batch: Vec<SpanData> = tree.iter().cycle().take(BATCH).cloned().collect();
    let batches = (requests as usize * SPANS).div_ceil(BATCH).max(1);
    let spans = (batches * BATCH) as f64;
    let dialects = shared::dialects::Dialects::current();
    let encoder = otlp_fast::TraceEncoder::new(&opentelemetry_sdk::Resource::builder().build());

    let mut translate = Duration::ZERO;
    let mut encoding = Duration::ZERO;
    let mut bodies = 0usize;
    for _ in 0..batches {
        let mut spans = batch.clone();
        let start = cpu(Clock::Thread);
        for span in &mut spans {
            shared::dialects::translate::translate(span, dialects);
        }
        let translated = cpu(Clock::Thread);
        bodies += encoder.encode(&spans).len();
        encoding += cpu(Clock::Thread) - translated;
        translate += translated - start;
    }
    assert!(bodies > 0);

    let (endpoint, sink_cpu) = sink();
    let exporter = otlp_fast::ProtobufHttpExporter::from_env(endpoint).expect("exporter");
    let send = |batch: Vec<SpanData>| {
        futures_util::FutureExt::now_or_never(exporter.export(batch))
            .expect("the exporter sends on the calling thread")
            .expect("the sink accepts every batch");
    };
    send(batch.clone()); // connects
    let start = cpu(Clock::Process);
    let sink_start = *sink_cpu.lock().unwrap();
    for _ in 0..batches {
        send(batch.clone());
    }
    let sent = cpu(Clock::Process) - start - (*sink_cpu.lock().unwrap() - sink_start);
    // Cloning and freeing the batches is not sending.
    let start = cpu(Clock::Thread);
    for _ in 0..batches {
        drop(std::hint::black_box(batch.clone()));
    }
    let sending = sent.saturating_sub(cpu(Clock::Thread) - start);
    let ns = |d: Duration| d.as_nanos() as f64 / spans;
    (ns(translate), ns(encoding), ns(sending))
}

/// An exporter that frees every batch, and a processor that frees every
/// ended span: what is left is the work before them.
#[derive(Debug)]
pub(super) struct Discard;

impl Discard {
    pub(super) fn processor() -> Capture {
        Capture(None)
    }
}

impl SpanExporter for Discard {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        drop(batch);
        Ok(())
    }
}

/// A span processor that keeps ended spans in its list, or frees them at
/// once when it has none.
#[derive(Debug)]
pub(super) struct Capture(Option<Arc<Mutex<Vec<SpanData>>>>);

impl SpanProcessor for Capture {
    fn on_start(&self, _: &mut opentelemetry_sdk::trace::Span, _: &Context) {}
    fn on_end(&self, span: SpanData) {
        if let Some(kept) = &self.0 {
            kept.lock().unwrap().push(span);
        }
    }
    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }
    fn shutdown_with_timeout(&self, _: Duration) -> OTelSdkResult {
        Ok(())
    }
}

/// A collector on loopback that answers every request 200, and the CPU time
/// its thread has used (updated after each request).
fn sink() -> (String, Arc<Mutex<Duration>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the sink");
    let endpoint = format!("http://{}/v1/traces", listener.local_addr().unwrap());
    let used = Arc::new(Mutex::new(Duration::ZERO));
    let report = used.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let _ = serve(stream, &report);
        }
    });
    (endpoint, used)
}

/// Answer the requests of one connection until the client closes it.
fn serve(stream: std::net::TcpStream, used: &Mutex<Duration>) -> std::io::Result<()> {
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    loop {
        let mut length = 0;
        let mut line = String::new();
        loop {
            line.clear();
            if reader.read_line(&mut line)? == 0 {
                return Ok(());
            }
            if line == "\r\n" {
                break;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        writer.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")?;
        *used.lock().unwrap() = cpu(Clock::Thread);
    }
}
