//! A second OpenTelemetry minor in the dependency graph compiles fine and
//! silently breaks propagation (a crate built against the other minor reads
//! a different global propagator and starts new traces). This test fails if
//! `Cargo.lock` ever holds two versions of an OpenTelemetry crate, or if they
//! drift apart from one minor.

use std::collections::BTreeMap;

fn locked_versions() -> BTreeMap<String, Vec<String>> {
    let lock = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.lock"))
        .expect("Cargo.lock is committed at the workspace root");
    let mut versions: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut name = None;
    for line in lock.lines() {
        if let Some(value) = line.strip_prefix("name = ") {
            name = Some(value.trim_matches('"').to_owned());
        } else if let Some(value) = line.strip_prefix("version = ")
            && let Some(name) = name.take()
        {
            versions
                .entry(name)
                .or_default()
                .push(value.trim_matches('"').to_owned());
        }
    }
    versions
}

fn minor(version: &str) -> String {
    version.split('.').take(2).collect::<Vec<_>>().join(".")
}

#[test]
fn one_version_of_each_opentelemetry_crate_at_one_minor() {
    let versions = locked_versions();
    let otel: Vec<(&String, &Vec<String>)> = versions
        .iter()
        .filter(|(name, _)| name.starts_with("opentelemetry"))
        .collect();
    assert!(
        otel.len() >= 4,
        "expected the OpenTelemetry crates in Cargo.lock, found {otel:?}"
    );
    for (name, found) in &otel {
        assert_eq!(
            found.len(),
            1,
            "{name} is locked at several versions: {found:?}"
        );
    }
    let api_minor = minor(&versions["opentelemetry"][0]);
    for (name, found) in &otel {
        assert_eq!(
            minor(&found[0]),
            api_minor,
            "{name} {} is not on opentelemetry {api_minor}",
            found[0]
        );
    }
    let bridge = &versions["tracing-opentelemetry"];
    assert_eq!(
        bridge.len(),
        1,
        "tracing-opentelemetry is locked at several versions: {bridge:?}"
    );
}
