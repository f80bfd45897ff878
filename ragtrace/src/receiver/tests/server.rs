use std::net::SocketAddr;
use std::time::Duration;

use actix_web::http::header;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;
use serde_json::Value;

use super::{SPEC_JSON, TRACE_HEX, kv, s, sample_request};
use crate::receiver::server::{JSON_CT, PROTOBUF_CT};
use crate::receiver::{MAX_BODY_BYTES, Receiver};

async fn post(
    client: &awc::Client,
    url: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> (u16, String, Vec<u8>) {
    let mut req = client.post(url);
    for (k, v) in headers {
        req = req.insert_header((*k, *v));
    }
    let mut resp = req.send_body(body).await.expect("request failed");
    let ct = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body = resp.body().await.expect("body").to_vec();
    (resp.status().as_u16(), ct, body)
}

async fn exercise_receiver() {
    let rx = Receiver::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    assert_ne!(rx.addr.port(), 0);
    assert_eq!(
        rx.endpoint(),
        format!("http://127.0.0.1:{}", rx.addr.port())
    );
    let url = rx.traces_endpoint();
    let client = awc::Client::default();

    // protobuf
    let (status, ct, body) = post(
        &client,
        &url,
        &[("content-type", PROTOBUF_CT)],
        sample_request().encode_to_vec(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(ct, PROTOBUF_CT);
    assert_eq!(
        ExportTraceServiceResponse::decode(body.as_slice()).unwrap(),
        ExportTraceServiceResponse::default()
    );
    assert_eq!(rx.store.len(), 3);
    assert_eq!(rx.store.trace_ids(), [TRACE_HEX]);

    // JSON (with a charset parameter)
    let (status, ct, body) = post(
        &client,
        &url,
        &[("content-type", "application/json; charset=utf-8")],
        SPEC_JSON.as_bytes().to_vec(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(ct, JSON_CT);
    assert_eq!(body, b"{}");
    assert_eq!(rx.store.len(), 5);
    assert_eq!(
        rx.store.trace_ids(),
        [TRACE_HEX, "5b8efff798038103d269b633813fc60c"]
    );
    assert_eq!(rx.store.export_requests(), 2);
    let t = rx
        .store
        .wait_for_trace(
            "5b8efff798038103d269b633813fc60c",
            2,
            Duration::from_secs(1),
        )
        .await
        .unwrap();
    assert_eq!(t[0].service_name, "retrieval");

    // errors
    let (status, ct, body) = post(
        &client,
        &url,
        &[("content-type", "text/plain")],
        b"hello".to_vec(),
    )
    .await;
    assert_eq!(status, 415);
    assert_eq!(ct, JSON_CT);
    assert!(String::from_utf8_lossy(&body).contains("Content-Type"));
    let (status, _, _) = post(&client, &url, &[], b"hello".to_vec()).await;
    assert_eq!(status, 415, "no content type");
    let (status, _, _) = post(
        &client,
        &url,
        &[("content-type", PROTOBUF_CT), ("content-encoding", "gzip")],
        sample_request().encode_to_vec(),
    )
    .await;
    assert_eq!(status, 415, "gzip");
    let (status, ct, body) = post(
        &client,
        &url,
        &[("content-type", PROTOBUF_CT)],
        b"\xff\xff\xff\xffgarbage".to_vec(),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(ct, JSON_CT);
    let err: Value = serde_json::from_slice(&body).unwrap();
    assert!(err["error"].as_str().unwrap().contains("protobuf"), "{err}");
    let (status, _, _) = post(
        &client,
        &url,
        &[("content-type", JSON_CT)],
        b"{not json".to_vec(),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(rx.store.len(), 5, "rejected requests store nothing");
    assert_eq!(rx.store.export_requests(), 2);

    // metrics: decoded into the metric store, in both encodings
    let metrics_url = format!("{}/v1/metrics", rx.endpoint());
    let gauge = |service: &str| {
        use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
        use opentelemetry_proto::tonic::metrics::v1::{
            Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, metric,
            number_data_point,
        };
        ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                resource: Some(Resource {
                    attributes: vec![kv("service.name", s(service))],
                    ..Default::default()
                }),
                scope_metrics: vec![ScopeMetrics {
                    metrics: vec![Metric {
                        name: "up".into(),
                        data: Some(metric::Data::Gauge(Gauge {
                            data_points: vec![NumberDataPoint {
                                value: Some(number_data_point::Value::AsInt(1)),
                                ..Default::default()
                            }],
                        })),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                schema_url: String::new(),
            }],
        }
    };
    let (status, ct, body) = post(
        &client,
        &metrics_url,
        &[("content-type", PROTOBUF_CT)],
        gauge("a").encode_to_vec(),
    )
    .await;
    assert_eq!((status, ct.as_str(), body.len()), (200, PROTOBUF_CT, 0));
    let (status, ct, body) = post(
        &client,
        &metrics_url,
        &[("content-type", JSON_CT)],
        serde_json::to_vec(&gauge("b")).unwrap(),
    )
    .await;
    assert_eq!((status, ct.as_str()), (200, JSON_CT));
    assert_eq!(body, b"{}");
    let (status, _, _) = post(
        &client,
        &metrics_url,
        &[("content-type", PROTOBUF_CT)],
        b"\xff\xff\xff\xffgarbage".to_vec(),
    )
    .await;
    assert_eq!(status, 400);
    let (status, _, _) = post(
        &client,
        &metrics_url,
        &[("content-type", "text/plain")],
        vec![],
    )
    .await;
    assert_eq!(status, 415);
    assert_eq!(rx.metrics.export_requests(), 2);
    assert_eq!(rx.metrics.json_export_requests(), 1);
    let services: Vec<String> = rx
        .metrics
        .all()
        .into_iter()
        .map(|p| p.service_name)
        .collect();
    assert_eq!(services, ["a", "b"]);

    // logs: accepted and discarded
    let u = format!("{}/v1/logs", rx.endpoint());
    let (status, ct, body) =
        post(&client, &u, &[("content-type", PROTOBUF_CT)], vec![1, 2, 3]).await;
    assert_eq!((status, ct.as_str(), body.len()), (200, PROTOBUF_CT, 0));
    let (status, ct, body) = post(&client, &u, &[("content-type", JSON_CT)], b"{}".to_vec()).await;
    assert_eq!((status, ct.as_str()), (200, JSON_CT));
    assert_eq!(body, b"{}");
    assert_eq!(
        rx.store.len(),
        5,
        "other signals never reach the span store"
    );

    // elsewhere
    let (status, _, _) = post(
        &client,
        &format!("{}/v1/tracez", rx.endpoint()),
        &[("content-type", JSON_CT)],
        b"{}".to_vec(),
    )
    .await;
    assert_eq!(status, 404);
    let resp = client
        .get(format!("{}/", rx.endpoint()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 404);
    let resp = client.get(url.clone()).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 405);

    // too large
    let (status, _, _) = post(
        &client,
        &url,
        &[("content-type", PROTOBUF_CT)],
        vec![0u8; MAX_BODY_BYTES + 1],
    )
    .await;
    assert_eq!(status, 413);

    let store = rx.store.clone();
    let addr = rx.addr;
    rx.stop().await;
    assert_eq!(store.len(), 5, "store outlives the receiver");
    // The port is released.
    assert!(
        client
            .post(format!("http://{addr}/v1/traces"))
            .send()
            .await
            .is_err()
    );
}

#[actix_web::test]
async fn receiver_under_actix_runtime() {
    exercise_receiver().await;
}

#[tokio::test]
async fn receiver_under_plain_tokio() {
    // awc needs a LocalSet (it uses spawn_local); the receiver does not.
    tokio::task::LocalSet::new()
        .run_until(exercise_receiver())
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receiver_under_multi_thread_tokio_and_drop_stops_it() {
    let rx = Receiver::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let addr = rx.addr;
    let store = rx.store.clone();
    // A plain HTTP/1.1 request over a raw socket (no actix client).
    let body = sample_request().encode_to_vec();
    let status = raw_post(addr, PROTOBUF_CT, &body).await;
    assert_eq!(status, 200);
    assert_eq!(store.len(), 3);
    drop(rx);
    // Stop is asynchronous after a drop: poll until the port refuses.
    let mut refused = false;
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(addr).await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(refused, "receiver still listening after drop");
}

async fn raw_post(addr: SocketAddr, ct: &str, body: &[u8]) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut sock = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /v1/traces HTTP/1.1\r\nHost: {addr}\r\nContent-Type: {ct}\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    sock.write_all(head.as_bytes()).await.unwrap();
    sock.write_all(body).await.unwrap();
    let mut resp = Vec::new();
    sock.read_to_end(&mut resp).await.unwrap();
    let text = String::from_utf8_lossy(&resp);
    text.split_whitespace().nth(1).unwrap().parse().unwrap()
}
