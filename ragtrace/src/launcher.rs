//! Start the four services as separate child processes, wired to each other.
//!
//! Separate processes, not four servers in one: each then has its own
//! `service.name`, its own tracer provider and its own exporter, exactly as in
//! production, so the only thing holding the trace together is what crosses
//! the wire. `ragtrace up` and the end-to-end tests both start the pipeline
//! through this module.

use std::net::{SocketAddr, TcpListener};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};

/// The four services, in start order (callees before callers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Service {
    Retrieval,
    LlmService,
    QueryProcessor,
    Gateway,
}

impl Service {
    pub const ALL: [Service; 4] = [
        Service::Retrieval,
        Service::LlmService,
        Service::QueryProcessor,
        Service::Gateway,
    ];

    /// Binary name, and the `service.name` it reports.
    pub fn name(self) -> &'static str {
        match self {
            Service::Retrieval => retrieval::SERVICE_NAME,
            Service::LlmService => llm_service::SERVICE_NAME,
            Service::QueryProcessor => query_processor::SERVICE_NAME,
            Service::Gateway => gateway::SERVICE_NAME,
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// Where each service listens.
#[derive(Debug, Clone, Copy)]
pub struct Topology {
    pub gateway: SocketAddr,
    pub query_processor: SocketAddr,
    pub retrieval: SocketAddr,
    pub llm_service: SocketAddr,
}

impl Default for Topology {
    /// The documented default addresses.
    fn default() -> Self {
        let parse = |s: &str| s.parse().expect("valid default address");
        Self {
            gateway: parse(gateway::configuration::DEFAULT_LISTEN_ADDR),
            query_processor: parse(query_processor::configuration::DEFAULT_LISTEN_ADDR),
            retrieval: parse(retrieval::configuration::DEFAULT_LISTEN_ADDR),
            llm_service: parse(llm_service::configuration::DEFAULT_LISTEN_ADDR),
        }
    }
}

impl Topology {
    /// Four currently free loopback ports (for tests).
    pub fn free_loopback_ports() -> std::io::Result<Self> {
        Ok(Self {
            gateway: free_loopback_addr()?,
            query_processor: free_loopback_addr()?,
            retrieval: free_loopback_addr()?,
            llm_service: free_loopback_addr()?,
        })
    }

    pub fn addr(&self, service: Service) -> SocketAddr {
        match service {
            Service::Gateway => self.gateway,
            Service::QueryProcessor => self.query_processor,
            Service::Retrieval => self.retrieval,
            Service::LlmService => self.llm_service,
        }
    }

    pub fn url(&self, service: Service) -> String {
        format!("http://{}", self.addr(service))
    }

    /// The environment that points `service` at its address and downstreams.
    pub fn env_for(&self, service: Service) -> Vec<(&'static str, String)> {
        let mut env = vec![("LISTEN_ADDR", self.addr(service).to_string())];
        match service {
            Service::Gateway => {
                env.push(("QUERY_PROCESSOR_URL", self.url(Service::QueryProcessor)))
            }
            Service::QueryProcessor => {
                env.push(("RETRIEVAL_URL", self.url(Service::Retrieval)));
                env.push(("LLM_SERVICE_URL", self.url(Service::LlmService)));
            }
            Service::Retrieval | Service::LlmService => {}
        }
        env
    }
}

/// A loopback address with a port nothing listens on, for a child to bind.
///
/// Not "bind port 0, read the port, close": the kernel may hand that port
/// straight to the next `bind(0)` or outgoing connection, which in a test run
/// is often another test's receiver or client. The child would then fail to
/// bind, or, worse, the "service" at that address would be someone else.
/// Ports are instead taken from 20000–31999, below Linux's ephemeral range
/// (32768–60999) where `bind(0)` and outgoing connections land. The walk
/// starts at a per-process random offset and never hands out the same port
/// twice in one process, and each candidate is checked by binding it.
pub fn free_loopback_addr() -> std::io::Result<SocketAddr> {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU32, Ordering};
    const LOW: u32 = 20_000;
    const SPAN: u32 = 12_000;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    static START: OnceLock<u32> = OnceLock::new();
    let start = *START.get_or_init(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        (std::process::id().wrapping_mul(7919) ^ nanos) % SPAN
    });
    for _ in 0..SPAN {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = LOW + (start + n) % SPAN;
        if let Ok(listener) = TcpListener::bind(("127.0.0.1", port as u16)) {
            return listener.local_addr();
        }
    }
    TcpListener::bind("127.0.0.1:0")?.local_addr()
}

/// What to do with a child's stdout and stderr.
#[derive(Clone)]
pub enum Output {
    /// Print each line to our stderr as `[service] line` (for `ragtrace up`).
    Prefixed,
    /// Keep every line in memory, prefixed (for tests: printed on failure,
    /// scanned for panics).
    Capture(Arc<Mutex<Vec<String>>>),
}

struct Process {
    service: Service,
    child: Child,
    spawned_at: Instant,
}

/// The running pipeline. Dropping it kills every child (tests that fail
/// half-way leave no strays); [`Pipeline::shutdown`] stops them gracefully.
pub struct Pipeline {
    topology: Topology,
    processes: Vec<Process>,
}

impl Pipeline {
    /// Start every service, callees first. `command` builds the command line
    /// for one service; the topology's variables, then `env` (which wins),
    /// are added to it.
    pub fn start(
        topology: Topology,
        command: impl Fn(Service) -> Command,
        env: &[(String, String)],
        output: &Output,
    ) -> anyhow::Result<Self> {
        let mut processes = Vec::new();
        for service in Service::ALL {
            let mut cmd = command(service);
            cmd.envs(topology.env_for(service))
                .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .kill_on_drop(true);
            let spawned_at = Instant::now();
            let mut child = cmd
                .spawn()
                .with_context(|| format!("cannot start {}", service.name()))?;
            forward(service, child.stdout.take(), output.clone());
            forward(service, child.stderr.take(), output.clone());
            processes.push(Process {
                service,
                child,
                spawned_at,
            });
        }
        Ok(Self {
            topology,
            processes,
        })
    }

    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// Wait until every service answers `GET /readyz` with 200.
    pub async fn wait_ready(&mut self, timeout: Duration) -> anyhow::Result<Duration> {
        self.wait_for("/readyz", timeout).await
    }

    /// Wait until every service answers `GET /healthz` (alive, though maybe
    /// not ready: a downstream may be down on purpose).
    pub async fn wait_alive(&mut self, timeout: Duration) -> anyhow::Result<Duration> {
        self.wait_for("/healthz", timeout).await
    }

    async fn wait_for(&mut self, probe: &str, timeout: Duration) -> anyhow::Result<Duration> {
        let started = Instant::now();
        let client = awc::Client::default();
        for service in Service::ALL {
            let url = format!("{}{probe}", self.topology.url(service));
            loop {
                if let Some(status) = self.exited(service)? {
                    bail!("{} exited during startup ({status})", service.name());
                }
                let ready = client
                    .get(&url)
                    .timeout(Duration::from_millis(500))
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success());
                if ready {
                    break;
                }
                if started.elapsed() > timeout {
                    bail!("{} not ready after {timeout:?} ({url})", service.name());
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        Ok(started.elapsed())
    }

    fn process(&mut self, service: Service) -> &mut Process {
        self.processes
            .iter_mut()
            .find(|p| p.service == service)
            .expect("every service is started")
    }

    fn exited(&mut self, service: Service) -> anyhow::Result<Option<ExitStatus>> {
        Ok(self.process(service).child.try_wait()?)
    }

    /// When `service`'s process was spawned (readiness is timed from here).
    pub fn spawned_at(&mut self, service: Service) -> Instant {
        self.process(service).spawned_at
    }

    /// Whether `service` has exited, and how.
    pub fn try_exit_status(&mut self, service: Service) -> anyhow::Result<Option<ExitStatus>> {
        self.exited(service)
    }

    /// The OS process id of `service`.
    pub fn pid(&mut self, service: Service) -> Option<u32> {
        self.process(service).child.id()
    }

    /// SIGTERM `service` and wait for it to exit (SIGKILL after `grace`).
    pub async fn stop(&mut self, service: Service, grace: Duration) -> anyhow::Result<ExitStatus> {
        stop_process(&mut self.process(service).child, grace).await
    }

    /// Resolves when any child exits, with which one and how.
    pub async fn wait_any_exit(&mut self) -> (Service, std::io::Result<ExitStatus>) {
        let waits = self.processes.iter_mut().map(|p| {
            let service = p.service;
            Box::pin(async move { (service, p.child.wait().await) })
        });
        futures_util::future::select_all(waits).await.0
    }

    /// Stop every service gracefully, callers first (so no request is cut
    /// off half-way down the chain), and report each exit status.
    pub async fn shutdown(mut self, grace: Duration) -> Vec<(Service, anyhow::Result<ExitStatus>)> {
        self.stop_all(grace).await
    }

    /// [`Pipeline::shutdown`] without giving up the handle.
    pub async fn stop_all(
        &mut self,
        grace: Duration,
    ) -> Vec<(Service, anyhow::Result<ExitStatus>)> {
        let mut statuses = Vec::new();
        for process in self.processes.iter_mut().rev() {
            statuses.push((
                process.service,
                stop_process(&mut process.child, grace).await,
            ));
        }
        statuses
    }
}

async fn stop_process(child: &mut Child, grace: Duration) -> anyhow::Result<ExitStatus> {
    if let Some(status) = child.try_wait()? {
        return Ok(status);
    }
    if let Some(pid) = child.id() {
        // SIGTERM: the service drains in-flight requests and flushes its
        // spans before exiting.
        // SAFETY: kill(2) with a pid we own and a valid signal number.
        unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
    }
    match tokio::time::timeout(grace, child.wait()).await {
        Ok(status) => Ok(status?),
        Err(_) => {
            child.kill().await?;
            bail!("did not exit within {grace:?} of SIGTERM; killed")
        }
    }
}

fn forward(service: Service, stream: Option<impl AsyncRead + Unpin + 'static>, output: Output) {
    let Some(stream) = stream else { return };
    actix_web::rt::spawn(async move {
        let mut lines = BufReader::new(stream).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let line = format!("[{:<15}] {line}", service.name());
            match &output {
                Output::Prefixed => eprintln!("{line}"),
                Output::Capture(buffer) => buffer.lock().expect("log buffer").push(line),
            }
        }
    });
}
