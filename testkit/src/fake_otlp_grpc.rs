//! An OTLP/gRPC collector (the `TraceService` and `MetricsService` that
//! opentelemetry-proto generates), keeping every export request it receives.
//! It lets a test prove that `OTEL_EXPORTER_OTLP_PROTOCOL=grpc` really
//! exports, which the HTTP receiver cannot.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use tonic::{Request, Response, Status};

#[derive(Clone, Default)]
struct Collector {
    requests: Arc<Mutex<Vec<ExportTraceServiceRequest>>>,
    metric_requests: Arc<Mutex<Vec<ExportMetricsServiceRequest>>>,
}

#[tonic::async_trait]
impl MetricsService for Collector {
    async fn export(
        &self,
        request: Request<ExportMetricsServiceRequest>,
    ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        self.metric_requests
            .lock()
            .expect("metric requests")
            .push(request.into_inner());
        Ok(Response::new(ExportMetricsServiceResponse {
            partial_success: None,
        }))
    }
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        self.requests
            .lock()
            .expect("requests")
            .push(request.into_inner());
        Ok(Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

/// A running collector on 127.0.0.1, on its own thread and Tokio runtime.
pub struct FakeOtlpGrpc {
    addr: SocketAddr,
    collector: Collector,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl FakeOtlpGrpc {
    pub fn start() -> FakeOtlpGrpc {
        let collector = Collector::default();
        let service = collector.clone();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (shutdown_tx, shutdown_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind");
                ready_tx
                    .send(listener.local_addr().expect("addr"))
                    .expect("ready");
                let incoming = futures_util::stream::unfold(listener, |listener| async move {
                    Some((listener.accept().await.map(|(stream, _)| stream), listener))
                });
                let server = tonic::transport::Server::builder()
                    .add_service(TraceServiceServer::new(service.clone()))
                    .add_service(MetricsServiceServer::new(service))
                    .serve_with_incoming_shutdown(incoming, async {
                        let _ = shutdown_rx.await;
                    });
                if let Err(err) = server.await {
                    eprintln!("fake_otlp_grpc: {err}");
                }
            });
        });
        let addr = ready_rx.recv().expect("collector started");
        FakeOtlpGrpc {
            addr,
            collector,
            shutdown: Some(shutdown_tx),
            thread: Some(thread),
        }
    }

    /// The `OTEL_EXPORTER_OTLP_ENDPOINT` for it.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every trace export request received so far.
    pub fn requests(&self) -> Vec<ExportTraceServiceRequest> {
        self.collector.requests.lock().expect("requests").clone()
    }

    /// Every metrics export request received so far.
    pub fn metric_requests(&self) -> Vec<ExportMetricsServiceRequest> {
        self.collector
            .metric_requests
            .lock()
            .expect("metric requests")
            .clone()
    }
}

impl Drop for FakeOtlpGrpc {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
