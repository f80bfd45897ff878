use std::time::Duration;

use super::rec;
use crate::receiver::{SpanStore, TraceSummary};

#[tokio::test]
async fn store_indexes_and_waits() {
    let store = SpanStore::new();
    assert!(store.is_empty());
    store.push(vec![rec("t2", "a", None), rec("t1", "b", None)]);
    store.push(vec![rec("t2", "c", Some("a"))]);
    store.push(vec![]);
    assert_eq!(store.len(), 3);
    assert_eq!(store.trace_ids(), ["t2", "t1"]);
    let t2: Vec<_> = store.trace("t2").into_iter().map(|s| s.span_id).collect();
    assert_eq!(t2, ["a", "c"]);
    assert!(store.trace("nope").is_empty());
    assert_eq!(
        store.trace_summaries(),
        vec![
            TraceSummary {
                trace_id: "t2".into(),
                spans: 2,
                roots: 1
            },
            TraceSummary {
                trace_id: "t1".into(),
                spans: 1,
                roots: 1
            },
        ]
    );

    // Already true: returns at once.
    let all = store
        .wait_until(Duration::from_secs(5), |s| s.len() == 3)
        .await
        .unwrap();
    assert_eq!(all.len(), 3);
    // Times out with a snapshot.
    let t0 = std::time::Instant::now();
    let err = store
        .wait_for_trace("t1", 2, Duration::from_millis(100))
        .await
        .unwrap_err();
    assert_eq!(err.len(), 1);
    assert!(t0.elapsed() >= Duration::from_millis(100));

    // Woken by a later push.
    let waiter = {
        let store = store.clone();
        tokio::spawn(async move { store.wait_for_trace("t3", 2, Duration::from_secs(10)).await })
    };
    let t0 = std::time::Instant::now();
    tokio::time::sleep(Duration::from_millis(20)).await;
    store.push(vec![rec("t3", "x", None)]);
    tokio::time::sleep(Duration::from_millis(20)).await;
    store.push(vec![rec("t3", "y", Some("x"))]);
    let got = waiter.await.unwrap().unwrap();
    assert_eq!(got.len(), 2);
    assert!(t0.elapsed() < Duration::from_secs(5));

    let mut sub = store.subscribe();
    store.push(vec![rec("t4", "z", None)]);
    assert_eq!(sub.recv().await.unwrap()[0].span_id, "z");

    store.clear();
    assert!(store.is_empty());
    assert!(store.trace_ids().is_empty());
    assert!(store.trace_summaries().is_empty());
}
