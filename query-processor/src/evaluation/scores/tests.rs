//! Each evaluator on crafted answers, at and around its threshold.

use shared::wire::Passage;

use super::*;

fn passage(score: f32) -> Passage {
    Passage {
        id: "a.md#0".into(),
        source: "a.md".into(),
        text: "text".into(),
        score,
    }
}

#[test]
fn markers_after_the_full_stop_belong_to_the_sentence_before_it() {
    let answer =
        "Spans nest. [1] Context crosses the wire [2]! [1][3]\n\nSources: [1] a.md, [2] b.md";
    let found = sentences(answer);
    let cited: Vec<(&str, &[usize], bool)> = found
        .iter()
        .map(|s| (s.text.as_str(), s.citations.as_slice(), s.is_source_list))
        .collect();
    assert_eq!(
        cited,
        vec![
            ("Spans nest.", &[1][..], false),
            ("Context crosses the wire !", &[2, 1, 3][..], false),
            ("Sources:  a.md,  b.md", &[1, 2][..], true),
        ]
    );
    assert!(!found[2].is_statement());
    // `[x]` is not a citation, and a lone marker states nothing.
    let odd = sentences("See [x] here. [2]");
    assert_eq!(odd[0].text, "See [x] here.");
    assert_eq!(odd[0].citations, vec![2]);
}

#[test]
fn citation_validity_passes_only_when_every_citation_is_valid() {
    let answer = sentences("One. [1] Two. [2]\nSources: [1] a.md, [2] b.md");
    let used = vec![vec![0.9, 0.0], vec![0.0, 0.9]];
    let all = citation_validity(&answer, 2, &used);
    assert_eq!(all.value, 1.0);
    assert!(all.value >= CITATION_VALIDITY_THRESHOLD);

    // A fabricated `[9]` among four citations: 3 of 4.
    let fabricated = sentences("One. [1] Two. [9]\nSources: [1] a.md, [2] b.md");
    let score = citation_validity(&fabricated, 2, &used);
    assert_eq!(score.value, 0.75);
    assert!(score.value < CITATION_VALIDITY_THRESHOLD);
    assert!(
        score.explanation.contains("1 name no retrieved passage"),
        "{}",
        score.explanation
    );

    // `[2]` on a sentence that passage 2 does not say: cited but unused.
    let unused = vec![vec![0.9, 0.0], vec![0.0, CITED_SIMILARITY - 0.01]];
    let score = citation_validity(&answer, 2, &unused);
    assert_eq!(score.value, 0.75);
    let at_threshold = vec![vec![0.9, 0.0], vec![0.0, CITED_SIMILARITY]];
    assert_eq!(citation_validity(&answer, 2, &at_threshold).value, 1.0);
}

#[test]
fn an_uncited_answer_fails_unless_it_has_nothing_to_cite() {
    let answer = sentences("Spans nest.");
    let supported = citation_validity(&answer, 1, &[vec![SUPPORTED_SIMILARITY]]);
    assert_eq!(supported.value, 0.0);
    let refusal = citation_validity(&answer, 1, &[vec![0.1]]);
    assert_eq!(refusal.value, 1.0);
}

#[test]
fn groundedness_is_the_share_of_supported_sentences() {
    let s = SUPPORTED_SIMILARITY;
    let three_of_four = vec![
        vec![s, 0.0],
        vec![0.0, 0.9],
        vec![1.0, 0.0],
        vec![0.1, s - 0.01],
    ];
    let score = groundedness(&three_of_four);
    assert_eq!(score.value, 0.75);
    assert!(score.value >= GROUNDEDNESS_THRESHOLD);
    assert_eq!(score.explanation, "3 of 4 sentences supported by a passage");
    let two_of_four = vec![vec![s], vec![0.0], vec![1.0], vec![0.1]];
    assert!(groundedness(&two_of_four).value < GROUNDEDNESS_THRESHOLD);
    assert_eq!(groundedness(&[]).value, 0.0);
}

#[test]
fn context_relevance_is_the_share_of_relevant_passages() {
    let r = RELEVANT_SIMILARITY;
    let half = context_relevance(&[passage(r), passage(r - 0.01)]);
    assert_eq!(half.value, 0.5);
    assert!(half.value >= CONTEXT_RELEVANCE_THRESHOLD);
    let none = context_relevance(&[passage(r - 0.01), passage(-0.3)]);
    assert_eq!(none.value, 0.0);
    assert!(none.value < CONTEXT_RELEVANCE_THRESHOLD);
    assert_eq!(context_relevance(&[]).value, 0.0);
}
