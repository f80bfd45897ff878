use super::{T, ids, pipeline, sp};
use crate::receiver::SpanKind;
use crate::tree::{TreeNode, build};

#[test]
fn builds_parent_links_and_sorts_children_by_start() {
    let spans = pipeline();
    let tree = build(&spans);
    assert_eq!(ids(&tree.roots), ["g1"]);
    assert!(!tree.roots[0].orphan);
    let q1 = &tree.roots[0].children[0].children[0];
    assert_eq!(q1.span.span_id, "q1");
    // c1 (start 3) before c2 (start 40) though c2 arrived first.
    assert_eq!(ids(&q1.children), ["c1", "c2"]);
    assert_eq!(ids(&q1.children[0].children), ["e1", "s1"]);
    assert_eq!(tree.depth(), 5);
    assert_eq!(tree.orphans(), 0);
    assert_eq!(tree.roots[0].count(), spans.len());
    let walk: Vec<_> = tree
        .walk()
        .into_iter()
        .map(|(level, last, n)| (level, last, n.span.span_id.as_str()))
        .collect();
    assert_eq!(
        walk,
        [
            (0, true, "g1"),
            (1, true, "g2"),
            (2, true, "q1"),
            (3, false, "c1"),
            (4, false, "e1"),
            (4, true, "s1"),
            (3, true, "c2"),
            (4, true, "d2"),
        ]
    );
}

#[test]
fn orphans_and_cycles_become_flagged_roots() {
    let mut spans = pipeline();
    // The gateway's spans never arrived: q1's parent g2 is missing.
    spans.retain(|s| !s.span_id.starts_with('g'));
    // A self-parented span and a two-span cycle.
    spans.push(sp(
        "x",
        Some("x"),
        "weird",
        SpanKind::Internal,
        "self",
        500,
        501,
    ));
    spans.push(sp(
        "y",
        Some("z"),
        "weird",
        SpanKind::Internal,
        "y",
        600,
        601,
    ));
    spans.push(sp(
        "z",
        Some("y"),
        "weird",
        SpanKind::Internal,
        "z",
        700,
        701,
    ));
    // Same span id in another trace does not adopt children across traces.
    let mut other = sp("q1", None, "other", SpanKind::Server, "other", 0, 1);
    other.trace_id = "ffffffffffffffffffffffffffffffff".into();
    spans.push(other);
    let tree = build(&spans);
    let tops: Vec<_> = tree
        .roots
        .iter()
        .map(|n| (n.span.span_id.as_str(), n.orphan))
        .collect();
    assert_eq!(
        tops,
        [("q1", false), ("q1", false), ("x", true), ("y", true)],
        "roots sorted by start; the other trace's q1 (start 0) is a real root, and in a trace \
         with no parentless span the earliest span with a missing parent is its entry (a \
         caller's remote parent), not an orphan"
    );
    assert_eq!(tree.roots[1].span.trace_id, T);
    assert_eq!(tree.roots[1].count(), 6);
    assert_eq!(ids(&tree.roots[3].children), ["z"]);
    assert_eq!(tree.orphans(), 2);
    let total: usize = tree.roots.iter().map(TreeNode::count).sum();
    assert_eq!(total, spans.len(), "every span exactly once");
    assert_eq!(build(&[]).depth(), 0);
}
