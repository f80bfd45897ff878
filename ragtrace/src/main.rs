//! `ragtrace`: the developer CLI.
//!
//! - `ragtrace up`: run the whole pipeline locally, with a console trace view.
//! - `ragtrace chat "question"`: ask the running pipeline.
//! - `ragtrace bench`: what tracing costs (see `ragtrace::bench`).
//! - `ragtrace ingest <dir>`: load a folder of documents into Qdrant.
//! - `ragtrace mcp`: retrieval's MCP tool on stdin/stdout, for desktop MCP
//!   hosts (see `retrieval::mcp`).
//! - `ragtrace serve <service>`: run one service in this process (what `up`
//!   spawns, once per service, so `cargo run -p ragtrace -- up` builds
//!   everything it runs).

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use ragtrace::launcher::{Output, Pipeline, Service, Topology};
use ragtrace::{receiver, tree};
use shared::wire::{ChatRequest, ChatResponse};

#[derive(Parser)]
#[command(
    name = "ragtrace",
    version,
    about = "Distributed tracing of a RAG pipeline, end to end"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start all four services and print each request's trace tree.
    Up(UpArgs),
    /// Send a question to the gateway and print the answer.
    Chat(ChatArgs),
    /// Chunk, embed and upsert a folder of documents into Qdrant
    /// (QDRANT_URL), a span per batch. Idempotent: re-running overwrites.
    Ingest {
        /// Folder of .md/.txt documents.
        dir: std::path::PathBuf,
    },
    /// Measure what tracing costs: throughput, latency, CPU, memory and
    /// span delivery with tracing off, on, and on with 10% sampling.
    Bench(ragtrace::bench::BenchArgs),
    /// Serve retrieval's MCP tool (search_documents) and corpus resources
    /// on stdin/stdout, for desktop MCP hosts. Trace context is read from
    /// each request's `params._meta`; spans are exported as retrieval's.
    Mcp,
    /// Run one service in the foreground.
    Serve {
        /// gateway, query-processor, retrieval or llm-service
        service: String,
    },
}

#[derive(clap::Args)]
struct UpArgs {
    #[arg(long, default_value = gateway::configuration::DEFAULT_LISTEN_ADDR)]
    gateway: SocketAddr,
    #[arg(long, default_value = query_processor::configuration::DEFAULT_LISTEN_ADDR)]
    query_processor: SocketAddr,
    #[arg(long, default_value = retrieval::configuration::DEFAULT_LISTEN_ADDR)]
    retrieval: SocketAddr,
    #[arg(long, default_value = llm_service::configuration::DEFAULT_LISTEN_ADDR)]
    llm_service: SocketAddr,
    /// Where the console trace view receives OTLP/HTTP (the standard local
    /// port). Not used when OTEL_EXPORTER_OTLP_ENDPOINT is set.
    #[arg(long, default_value = "127.0.0.1:4318")]
    otlp: SocketAddr,
}

#[derive(clap::Args)]
struct ChatArgs {
    /// The question.
    query: String,
    #[arg(long, env = "GATEWAY_URL", default_value = "http://127.0.0.1:8000")]
    url: String,
    #[arg(long)]
    user_id: Option<String>,
    #[arg(long)]
    session_id: Option<String>,
    #[arg(long)]
    top_k: Option<u32>,
    /// A tag for the trace (repeatable).
    #[arg(long = "tag")]
    tags: Vec<String>,
    /// Print the answer as it streams (`POST /chat/stream`).
    #[arg(long)]
    stream: bool,
}

#[actix_web::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Up(args) => up(args).await,
        Command::Chat(args) => chat(args).await,
        Command::Ingest { dir } => ingest(&dir).await,
        Command::Mcp => retrieval::serve_mcp_stdio().await,
        Command::Bench(args) => ragtrace::bench::run(args).await.map(drop),
        Command::Serve { service } => serve(&service).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("ragtrace: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(service: &str) -> anyhow::Result<()> {
    match Service::parse(service) {
        Some(Service::Gateway) => gateway::run().await,
        Some(Service::QueryProcessor) => query_processor::run().await,
        Some(Service::Retrieval) => retrieval::run().await,
        Some(Service::LlmService) => llm_service::run().await,
        None => anyhow::bail!(
            "unknown service {service:?}; expected one of: {}",
            Service::ALL.map(Service::name).join(", ")
        ),
    }
}

async fn ingest(dir: &std::path::Path) -> anyhow::Result<()> {
    let telemetry = shared::telemetry::init("ragtrace-ingest")?;
    let report = retrieval::ingest_dir(dir).await?;
    println!(
        "ingested {} chunks in {} batches from {}",
        report.chunks,
        report.batches,
        dir.display()
    );
    telemetry.shutdown();
    Ok(())
}

fn env_set(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| !v.trim().is_empty())
}

async fn up(args: UpArgs) -> anyhow::Result<()> {
    let topology = Topology {
        gateway: args.gateway,
        query_processor: args.query_processor,
        retrieval: args.retrieval,
        llm_service: args.llm_service,
    };
    let mut env: Vec<(String, String)> = Vec::new();
    // Services log JSON lines by default (for log pipelines); a terminal
    // wants text.
    if !env_set("LOG_FORMAT") {
        env.push(("LOG_FORMAT".into(), "text".into()));
    }
    // Export promptly so each trace shows up right after its request (the
    // SDK default waits up to 5 s between batches).
    if !env_set("OTEL_BSP_SCHEDULE_DELAY") {
        env.push(("OTEL_BSP_SCHEDULE_DELAY".into(), "200".into()));
    }

    // The console trace view: only when no collector is configured.
    let external =
        env_set("OTEL_EXPORTER_OTLP_ENDPOINT") || env_set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
    let console = if external {
        eprintln!(
            "ragtrace: exporting spans to the configured OTLP endpoint (console trace view off)"
        );
        None
    } else {
        let receiver = receiver::Receiver::start(args.otlp).await.with_context(|| {
            format!(
                "cannot listen on {} for the console trace view (is a collector already running \
                 there? then set OTEL_EXPORTER_OTLP_ENDPOINT to use it)",
                args.otlp
            )
        })?;
        env.push(("OTEL_EXPORTER_OTLP_ENDPOINT".into(), receiver.endpoint()));
        env.push(("OTEL_EXPORTER_OTLP_PROTOCOL".into(), "http/protobuf".into()));
        env.push((
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL".into(),
            "http/protobuf".into(),
        ));
        let printer =
            tree::spawn_printer(receiver.store.clone(), Duration::from_millis(400), |text| {
                println!("{text}")
            });
        Some((receiver, printer))
    };

    let exe = std::env::current_exe().context("cannot locate the ragtrace binary")?;
    let mut pipeline = Pipeline::start(
        topology,
        |service| {
            let mut command = tokio::process::Command::new(&exe);
            command.arg("serve").arg(service.name());
            command
        },
        &env,
        &Output::Prefixed,
    )?;
    let ready_in = pipeline.wait_ready(Duration::from_secs(30)).await?;
    let gateway = topology.url(Service::Gateway);
    eprintln!(
        "\nragtrace is up in {} ms. Ask it something:\n\n  curl -s {gateway}/chat -H 'content-type: application/json' \\\n    -d '{{\"query\": \"What does the traceparent header contain?\"}}'\n\n  or: cargo run -q --release -p ragtrace -- chat \"What does the traceparent header contain?\"\n\nCtrl-C stops everything.\n",
        ready_in.as_millis()
    );

    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let crashed = tokio::select! {
        _ = tokio::signal::ctrl_c() => None,
        _ = sigterm.recv() => None,
        (service, status) = pipeline.wait_any_exit() => Some((service, status)),
    };
    eprintln!("ragtrace: stopping the services");
    let statuses = pipeline.shutdown(Duration::from_secs(15)).await;
    if let Some((receiver, printer)) = console {
        // The services flushed their spans on exit; give the view a moment to
        // print the last traces.
        printer.flush(Duration::from_secs(2)).await;
        // Metrics arrive here too (the services flushed them on exit). The
        // console shows traces only; one line says the metrics exist.
        let metrics = receiver.metrics.all();
        receiver.stop().await;
        if !metrics.is_empty() {
            eprintln!(
                "ragtrace: also received {} (not shown here; docs/docker.md has a metrics backend)",
                receiver::metrics::summary(&metrics)
            );
        }
    }
    if let Some((service, status)) = crashed {
        anyhow::bail!("{} exited unexpectedly ({status:?})", service.name());
    }
    let failed: Vec<String> = statuses
        .iter()
        .filter_map(|(service, status)| match status {
            Ok(status) if status.success() => None,
            Ok(status) => Some(format!("{} ({status})", service.name())),
            Err(err) => Some(format!("{} ({err})", service.name())),
        })
        .collect();
    anyhow::ensure!(failed.is_empty(), "unclean exit: {}", failed.join(", "));
    Ok(())
}

async fn chat(args: ChatArgs) -> anyhow::Result<()> {
    let path = if args.stream { "/chat/stream" } else { "/chat" };
    let url = format!("{}{path}", args.url.trim_end_matches('/'));
    let request = ChatRequest {
        query: args.query,
        user_id: args.user_id,
        session_id: args.session_id,
        tags: (!args.tags.is_empty()).then_some(args.tags),
        top_k: args.top_k,
    };
    if args.stream {
        return chat_stream(&url, &request).await;
    }
    let mut response = awc::Client::default()
        .post(&url)
        .timeout(Duration::from_secs(30))
        .send_json(&request)
        .await
        .map_err(|err| anyhow::anyhow!("cannot reach {url}: {err} (is `ragtrace up` running?)"))?;
    let body = response.body().limit(8 * 1024 * 1024).await?;
    if !response.status().is_success() {
        anyhow::bail!(
            "{url} answered {}: {}",
            response.status(),
            String::from_utf8_lossy(&body)
        );
    }
    let answer: ChatResponse = serde_json::from_slice(&body)?;
    println!("{}\n", answer.answer);
    print_contexts(&answer.contexts);
    println!(
        "\nmodel {} · {} input / {} output tokens\ntrace {}",
        answer.model, answer.usage.input_tokens, answer.usage.output_tokens, answer.trace_id
    );
    if let Some(url) = answer.trace_url {
        println!("{url}");
    }
    Ok(())
}

fn print_contexts(contexts: &[shared::wire::Passage]) {
    println!("Retrieved:");
    for (i, context) in contexts.iter().enumerate() {
        println!("  [{}] {} (score {:.3})", i + 1, context.id, context.score);
    }
}

/// `ragtrace chat --stream`: print each chunk as it arrives.
async fn chat_stream(url: &str, request: &ChatRequest) -> anyhow::Result<()> {
    use futures_util::StreamExt;
    use shared::wire::StreamEvent;
    use std::io::Write;

    let mut response = awc::Client::default()
        .post(url)
        .timeout(Duration::from_secs(30))
        .send_json(request)
        .await
        .map_err(|err| anyhow::anyhow!("cannot reach {url}: {err} (is `ragtrace up` running?)"))?;
    if !response.status().is_success() {
        let body = response.body().limit(1024 * 1024).await?;
        anyhow::bail!(
            "{url} answered {}: {}",
            response.status(),
            String::from_utf8_lossy(&body)
        );
    }
    let mut decoder = shared::sse::Decoder::new();
    let mut contexts = Vec::new();
    let mut stdout = std::io::stdout();
    while let Some(chunk) = response.next().await {
        decoder.push(&chunk?);
        while let Some(raw) = decoder.next_event()? {
            match StreamEvent::parse(&raw.event, &raw.data).map_err(anyhow::Error::msg)? {
                StreamEvent::Contexts(received) => contexts = received,
                StreamEvent::Delta(text) => {
                    print!("{text}");
                    stdout.flush()?;
                }
                StreamEvent::Done(done) => {
                    println!("\n");
                    print_contexts(&contexts);
                    println!(
                        "\nmodel {} · {} input / {} output tokens\ntrace {}",
                        done.model,
                        done.usage.input_tokens,
                        done.usage.output_tokens,
                        done.trace_id.unwrap_or_default()
                    );
                    if let Some(url) = done.trace_url {
                        println!("{url}");
                    }
                    return Ok(());
                }
                StreamEvent::Error(body) => {
                    anyhow::bail!(
                        "\n{} ({}), trace {}",
                        body.message,
                        body.error,
                        body.trace_id
                    )
                }
            }
        }
    }
    anyhow::bail!("\nthe stream ended before the answer was complete")
}
