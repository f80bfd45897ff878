use actix_web::{App, HttpResponse, HttpServer, web};

use super::*;

/// A server answering `/chat` after `delay_ms`, 500 for body "fail".
fn server(delay_ms: u64) -> (SocketAddr, actix_web::dev::ServerHandle) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = HttpServer::new(move || {
        App::new().route(
            "/chat",
            web::post().to(move |body: web::Bytes| async move {
                tokio::time::sleep(Duration::from_millis(delay_ms)).await;
                if body.as_ref() == b"fail" {
                    HttpResponse::InternalServerError().body("injected")
                } else {
                    HttpResponse::Ok().body(r#"{"trace_id":"traced"}"#)
                }
            }),
        )
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .unwrap()
    .run();
    let handle = server.handle();
    tokio::spawn(server);
    (addr, handle)
}

fn target(addr: SocketAddr, bodies: &[&'static str]) -> Arc<Target> {
    Arc::new(Target {
        addr,
        path: "/chat",
        bodies: bodies
            .iter()
            .map(|b| Bytes::from_static(b.as_bytes()))
            .collect(),
        timeout: Duration::from_secs(5),
    })
}

fn traced() -> Classifier {
    Arc::new(|body: &[u8]| body.ends_with(b"\"traced\"}").then_some(7))
}

#[actix_web::test]
async fn closed_loop_sends_exactly_the_requests_asked_for_and_counts_errors() {
    let (addr, handle) = server(0);
    let progress = Arc::new(AtomicU64::new(0));
    let mode = Mode::Closed {
        concurrency: 3,
        stop: Stop::Requests(40),
    };
    let outcome = run(
        target(addr, &["{}", "fail"]),
        mode,
        traced(),
        progress.clone(),
    )
    .await
    .unwrap();
    assert_eq!(outcome.ok + outcome.errors, 40);
    assert_eq!(progress.load(Ordering::Relaxed), 40);
    // Every worker alternates bodies, so about half fail.
    assert!(outcome.errors >= 10 && outcome.ok >= 10, "{outcome:?}");
    assert_eq!(outcome.traced.len() as u64, outcome.ok);
    assert!(outcome.traced.iter().all(|&id| id == 7));
    assert_eq!(outcome.latency_us.len(), outcome.ok);
    assert!(outcome.first_error.unwrap().contains("HTTP 500"));
    handle.stop(false).await;
}

#[actix_web::test]
async fn open_loop_keeps_its_rate_and_charges_stalls_to_every_request_behind_them() {
    // 100 requests/s on 2 connections for 1 s, each answered after
    // 30 ms: a connection's share of the schedule is one request every
    // 20 ms, so each falls further behind with every request.
    let (addr, handle) = server(30);
    let mode = Mode::Open {
        rate: 100.0,
        connections: 2,
        duration: Duration::from_secs(1),
    };
    let progress = Arc::new(AtomicU64::new(0));
    let outcome = run(target(addr, &["{}"]), mode, traced(), progress)
        .await
        .unwrap();
    // The whole schedule was sent (catching up after the end).
    assert_eq!(outcome.ok + outcome.not_sent, 100, "{outcome:?}");
    assert_eq!(outcome.errors, 0);
    // Most requests were late, and their latency includes the wait: the
    // last ones waited ~0.5 s, far more than the 30 ms service time.
    assert!(outcome.late > 80, "{outcome:?}");
    assert!(outcome.latency_us.max() > 300_000, "{outcome:?}");

    // A pipeline that keeps up: the whole schedule is sent and measured.
    // (How many are late then depends on the machine's load, so that is
    // reported by the bench, not asserted here.)
    let (fast, fast_handle) = server(0);
    let mode = Mode::Open {
        rate: 200.0,
        connections: 4,
        duration: Duration::from_millis(500),
    };
    let outcome = run(target(fast, &["{}"]), mode, traced(), Arc::default())
        .await
        .unwrap();
    assert_eq!(outcome.ok, 100, "{outcome:?}");
    assert_eq!(outcome.not_sent, 0, "{outcome:?}");
    assert_eq!(outcome.latency_us.len(), 100);
    handle.stop(false).await;
    fast_handle.stop(false).await;
}

#[actix_web::test]
async fn probes_and_refused_connections() {
    let (addr, handle) = server(0);
    let status = get_status(addr, "/nope", Duration::from_secs(2)).await;
    assert_eq!(status.unwrap(), 404);
    handle.stop(false).await;
    let free = crate::launcher::free_loopback_addr().unwrap();
    assert!(get_status(free, "/", Duration::from_secs(2)).await.is_err());
}
