//! `docs/tour.md` stays true to the code.
//!
//! Each stop of the tour is a heading that names one file and one item in
//! it: ``## 3. Extract and inject: `shared/src/propagation.rs` · `extract_context` ``.
//! This test fails if a stop names a file or an item that no longer exists,
//! if the tour has more than thirteen stops, if the items it sends a reader to
//! add up to more than about 600 lines, or if the README's "Where to read"
//! no longer opens with the tour's first paragraph.

use std::path::{Path, PathBuf};

const MAX_STOPS: usize = 13;
const MAX_TOUR_LINES: usize = 600;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|err| panic!("{path}: {err}"))
}

/// One stop: its number, file and item (`name` or `Type::name`).
#[derive(Debug)]
struct Stop {
    number: usize,
    file: String,
    item: String,
}

/// The stops: `## N. title: `file` · `item`` headings.
fn stops(tour: &str) -> Vec<Stop> {
    tour.lines()
        .filter_map(|line| line.strip_prefix("## "))
        .filter_map(|heading| {
            let (number, rest) = heading.split_once(". ")?;
            let number = number.parse().ok()?;
            let ticks: Vec<&str> = rest.split('`').collect();
            // title `file` · `item`
            (ticks.len() >= 5 && ticks[2].trim() == "·").then(|| Stop {
                number,
                file: ticks[1].to_owned(),
                item: ticks[3].to_owned(),
            })
        })
        .collect()
}

const DEFINITIONS: &[&str] = &[
    "fn", "struct", "enum", "trait", "const", "static", "type", "mod", "impl",
];

/// The line where `name` is defined in `source`, if it is.
fn definition(source: &str, name: &str) -> Option<usize> {
    source.lines().position(|line| {
        let words: Vec<&str> = line
            .split(|c: char| !(c.is_alphanumeric() || c == '_'))
            .filter(|w| !w.is_empty())
            .collect();
        words
            .windows(2)
            .any(|w| DEFINITIONS.contains(&w[0]) && w[1] == name)
    })
}

/// How many lines the item starting at `start` spans: its doc comments are
/// not counted; its body runs to the brace (or semicolon) that closes it.
fn item_lines(source: &str, start: usize) -> usize {
    let mut depth = 0i32;
    let mut opened = false;
    for (n, line) in source.lines().enumerate().skip(start) {
        let code = line.split("//").next().unwrap_or("");
        for c in code.chars() {
            match c {
                '{' => {
                    depth += 1;
                    opened = true;
                }
                '}' => depth -= 1,
                _ => {}
            }
        }
        if (opened && depth <= 0) || (!opened && code.trim_end().ends_with(';')) {
            return n - start + 1;
        }
    }
    source.lines().count() - start
}

#[test]
fn every_stop_names_an_item_that_exists_and_the_tour_is_short() {
    let tour = read("docs/tour.md");
    let stops = stops(&tour);
    assert!(
        (1..=MAX_STOPS).contains(&stops.len()),
        "the tour has {} stops (1 to {MAX_STOPS})",
        stops.len()
    );
    let mut total = 0;
    for (i, stop) in stops.iter().enumerate() {
        assert_eq!(stop.number, i + 1, "stops are numbered in order: {stop:?}");
        let source = read(&stop.file);
        let mut lines = 0;
        // `Type::method`: both must be defined in the file.
        for name in stop.item.split("::") {
            let start = definition(&source, name).unwrap_or_else(|| {
                panic!("stop {}: {} defines no `{name}`", stop.number, stop.file)
            });
            lines = item_lines(&source, start);
        }
        total += lines;
    }
    assert!(
        total <= MAX_TOUR_LINES,
        "the tour's items add up to {total} lines (at most {MAX_TOUR_LINES})"
    );
}

#[test]
fn the_readme_opens_its_reading_path_with_the_tour() {
    let tour = read("docs/tour.md");
    let intro = tour
        .split("\n\n")
        .map(str::trim)
        .find(|p| !p.is_empty() && !p.starts_with('#'))
        .expect("the tour's first paragraph");
    let readme = read("README.md");
    let section = readme
        .split("## Where to read")
        .nth(1)
        .expect("README has a Where to read section");
    let intro_flat = intro.split_whitespace().collect::<Vec<_>>().join(" ");
    let section_flat = section.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        section_flat.starts_with(&intro_flat),
        "README's Where to read must open with the tour's first paragraph:\n{intro}"
    );
}

#[test]
fn the_parser_reads_a_stop_and_finds_items() {
    let stops = stops("# T\n\n## 2. Inject: `a/b.rs` · `Call::send`\n## x\n");
    assert_eq!(stops.len(), 1);
    assert_eq!((stops[0].number, stops[0].file.as_str()), (2, "a/b.rs"));
    assert_eq!(stops[0].item, "Call::send");
    let source = "/// doc\npub fn send(\n    a: u8,\n) {\n    if a {\n    }\n}\nconst X: u8 = 1;\n";
    assert_eq!(definition(source, "send"), Some(1));
    assert_eq!(item_lines(source, 1), 6);
    assert_eq!(item_lines(source, definition(source, "X").unwrap()), 1);
    assert_eq!(definition(source, "sen"), None);
}
