use serde_json::json;

use crate::receiver::{SpanKind, StatusCode};

#[test]
fn all_kinds_and_codes_map() {
    let kinds = [
        (0, SpanKind::Unspecified, "UNSPECIFIED"),
        (1, SpanKind::Internal, "INTERNAL"),
        (2, SpanKind::Server, "SERVER"),
        (3, SpanKind::Client, "CLIENT"),
        (4, SpanKind::Producer, "PRODUCER"),
        (5, SpanKind::Consumer, "CONSUMER"),
        (-1, SpanKind::Unspecified, "UNSPECIFIED"),
    ];
    for (n, k, name) in kinds {
        assert_eq!(SpanKind::from_otlp(n), k);
        assert_eq!(k.as_str(), name);
        assert_eq!(serde_json::to_value(k).unwrap(), json!(name));
    }
    assert_eq!(StatusCode::from_otlp(0), StatusCode::Unset);
    assert_eq!(StatusCode::from_otlp(1), StatusCode::Ok);
    assert_eq!(StatusCode::from_otlp(2), StatusCode::Error);
    assert_eq!(StatusCode::from_otlp(9), StatusCode::Unset);
}
