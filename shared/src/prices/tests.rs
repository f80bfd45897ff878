use std::path::Path;

use super::*;

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-12
}

#[test]
fn a_cost_is_tokens_times_the_price_per_million() {
    let price = Price {
        input: 2.5,
        output: 10.0,
    };
    let cost = price.cost(1_200, 300);
    assert!(close(cost.input, 0.003), "{cost:?}");
    assert!(close(cost.output, 0.003), "{cost:?}");
    assert!(close(cost.total, 0.006), "{cost:?}");
    assert_eq!(price.cost(0, 0).total, 0.0);
}

#[test]
fn the_embedded_table_prices_the_hosted_models_and_our_own_at_zero() {
    let prices = Prices::embedded();
    for model in [
        "gpt-4o",
        "gpt-4o-mini",
        "gpt-4.1",
        "gpt-4.1-mini",
        "gpt-4.1-nano",
        "o3",
        "o4-mini",
        "gpt-5",
        "gpt-5-mini",
        "text-embedding-3-small",
        "text-embedding-3-large",
        "text-embedding-ada-002",
        "gpt-5.6",
        "claude-sonnet-4-6",
        "claude-haiku-4-5",
        "claude-opus-4-8",
        "gemini-3.8-flash",
        "mistral-large-latest",
    ] {
        let price = prices.price(model).unwrap_or_else(|| panic!("{model}"));
        assert!(price.input > 0.0, "{model}");
    }
    let mini = prices.cost("gpt-4o-mini", 1_000_000, 1_000_000).unwrap();
    assert!(
        close(mini.input, 0.15) && close(mini.output, 0.60),
        "{mini:?}"
    );
    // The offline generator and the hashing embedder, at any dimension.
    for model in [
        "ragtrace-extractive-v1",
        "ragtrace-hashing-384",
        "ragtrace-hashing-64",
    ] {
        let cost = prices
            .cost(model, 500, 50)
            .unwrap_or_else(|| panic!("{model}"));
        assert_eq!(cost.total, 0.0, "{model}");
    }
    let source: serde_json::Value = serde_json::from_str(EMBEDDED).unwrap();
    assert!(source["_source"].as_str().unwrap().contains("list prices"));
    assert!(source["as_of"].is_string());
}

#[test]
fn an_unknown_model_has_no_cost_rather_than_zero() {
    let prices = Prices::embedded();
    assert_eq!(prices.cost("llama3:8b", 100, 10), None);
    assert_eq!(prices.cost("", 100, 10), None);
    // A variant that is not a snapshot is another model.
    assert_eq!(prices.price("gpt-4o-mini-search-preview"), None);
    assert_eq!(prices.price("ragtrace-other"), None);
}

#[test]
fn a_dated_snapshot_is_priced_as_its_base_entry() {
    let prices = Prices::embedded();
    let base = |m: &str| prices.price(m).unwrap();
    assert_eq!(base("gpt-4o-mini-2024-07-18"), base("gpt-4o-mini"));
    assert_eq!(base("gpt-4o-2024-08-06"), base("gpt-4o"));
    assert_eq!(base("o3-2025-04-16"), base("o3"));
    assert_eq!(
        base("claude-sonnet-4-5-20250929"),
        base("claude-sonnet-4-5")
    );
    assert_eq!(base("claude-haiku-4-5-latest"), base("claude-haiku-4-5"));
    // The longest entry wins: a snapshot of gpt-5-mini is not gpt-5.
    assert_eq!(base("gpt-5-mini-2025-08-07"), base("gpt-5-mini"));
    assert_ne!(base("gpt-5-mini"), base("gpt-5"));
    assert_eq!(base("claude-opus-4-5-20251101"), base("claude-opus-4-5"));
    // A single digit is a model version, not a snapshot: 4-9 is not 4-8.
    assert_eq!(prices.price("claude-opus-4-9"), None);
    assert_eq!(prices.price("gpt-5.9"), None);
    // A snapshot with its own entry keeps its own price.
    assert_ne!(base("gpt-4o-2024-05-13"), base("gpt-4o"));

    for version in ["2024-07-18", "20250929", "0613", "001", "latest"] {
        assert!(is_version(version), "{version}");
    }
    for other in ["5", "12", "mini", "2024-7-18", "preview-2024-07-18", ""] {
        assert!(!is_version(other), "{other}");
    }
}

#[test]
fn an_override_file_replaces_the_table() {
    let dir = std::env::temp_dir().join(format!("ragtrace-prices-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("prices.json");
    std::fs::write(
        &path,
        r#"{"_source": "our contract", "models": {"gpt-4o-mini": {"input": 1, "output": 2}, "team-*": {"input": 0.5, "output": 0.5}}}"#,
    )
    .unwrap();
    let prices = Prices::from_file(&path).unwrap();
    assert_eq!(prices.len(), 2);
    let cost = prices
        .cost("gpt-4o-mini-2024-07-18", 1_000_000, 500_000)
        .unwrap();
    assert!(
        close(cost.input, 1.0) && close(cost.output, 1.0),
        "{cost:?}"
    );
    assert!(prices.price("team-llama").is_some());
    // Replaced, not merged.
    assert_eq!(prices.price("gpt-4o"), None);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_bad_file_is_an_error_naming_the_file_and_the_problem() {
    let missing = Prices::from_file(Path::new("/nonexistent/prices.json")).unwrap_err();
    let message = missing.to_string();
    assert!(
        message.starts_with("RAGTRACE_PRICES=/nonexistent/prices.json: cannot read"),
        "{message}"
    );

    let dir = std::env::temp_dir().join(format!("ragtrace-bad-prices-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("prices.json");
    let cases = [
        ("{not json", "key must be a string"),
        (r#"{"model": {}}"#, "missing field `models`"),
        (
            r#"{"models": {"gpt-4o": {"input": "2.5", "output": 10}}}"#,
            "models.gpt-4o.input: invalid type",
        ),
        (
            r#"{"models": {"gpt-4o": {"input": 2.5, "ouput": 10}}}"#,
            "unknown field `ouput`",
        ),
        (
            r#"{"models": {"gpt-4o": {"input": -1, "output": 10}}}"#,
            "models.gpt-4o.input: -1 is not a price",
        ),
        (
            r#"{"models": {"gpt-*-mini": {"input": 1, "output": 1}}}"#,
            "`*` may only end a model name",
        ),
    ];
    for (json, problem) in cases {
        std::fs::write(&path, json).unwrap();
        let message = Prices::from_file(&path).unwrap_err().to_string();
        let named = format!("RAGTRACE_PRICES={}: not a price table: ", path.display());
        assert!(message.starts_with(&named), "{message}");
        assert!(message.contains(problem), "{json}: {message}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
