//! Spans into a tree by parent id: [`build`] and the [`TraceTree`] it returns.

use std::collections::{HashMap, HashSet};

use crate::receiver::SpanRecord;

/// One span and its children (sorted by start time).
#[derive(Debug, Clone)]
pub struct TreeNode<'a> {
    pub span: &'a SpanRecord,
    /// The span names a parent that is not among the spans (or is part of a
    /// parent cycle): it is shown as a root, marked `(orphan)`.
    pub orphan: bool,
    pub children: Vec<TreeNode<'a>>,
}

impl TreeNode<'_> {
    /// Levels in this subtree (a leaf is 1).
    pub fn depth(&self) -> usize {
        1 + self.children.iter().map(TreeNode::depth).max().unwrap_or(0)
    }

    /// Spans in this subtree.
    pub fn count(&self) -> usize {
        1 + self.children.iter().map(TreeNode::count).sum::<usize>()
    }
}

/// Spans arranged by parent. Roots (no parent) and orphans (a parent that is
/// not there) are both top-level nodes, sorted by start time.
#[derive(Debug, Clone, Default)]
pub struct TraceTree<'a> {
    pub roots: Vec<TreeNode<'a>>,
}

impl<'a> TraceTree<'a> {
    /// Levels in the deepest branch (a lone root is 1; empty is 0).
    pub fn depth(&self) -> usize {
        self.roots.iter().map(TreeNode::depth).max().unwrap_or(0)
    }

    /// Top-level nodes that are orphans.
    pub fn orphans(&self) -> usize {
        self.roots.iter().filter(|n| n.orphan).count()
    }

    /// Every node depth-first, with its level (top level = 0) and whether it
    /// is the last of its siblings.
    pub fn walk(&self) -> Vec<(usize, bool, &TreeNode<'a>)> {
        fn go<'t, 'a>(
            nodes: &'t [TreeNode<'a>],
            level: usize,
            out: &mut Vec<(usize, bool, &'t TreeNode<'a>)>,
        ) {
            for (i, n) in nodes.iter().enumerate() {
                out.push((level, i + 1 == nodes.len(), n));
                go(&n.children, level + 1, out);
            }
        }
        let mut out = Vec::new();
        go(&self.roots, 0, &mut out);
        out
    }
}

/// Arranges spans into a tree. Parents are looked up by (trace id, span id);
/// siblings are sorted by start time, ties keeping input order. Every span
/// appears exactly once, including spans in a parent cycle (as orphans).
pub fn build(spans: &[SpanRecord]) -> TraceTree<'_> {
    let mut by_id: HashMap<(&str, &str), usize> = HashMap::with_capacity(spans.len());
    for (i, s) in spans.iter().enumerate() {
        by_id.entry((&s.trace_id, &s.span_id)).or_insert(i);
    }
    let mut children: HashMap<usize, Vec<usize>> = HashMap::new();
    let mut tops: Vec<(usize, bool)> = Vec::new();
    for (i, s) in spans.iter().enumerate() {
        match &s.parent_span_id {
            None => tops.push((i, false)),
            Some(p) => match by_id.get(&(s.trace_id.as_str(), p.as_str())) {
                Some(&pi) if pi != i => children.entry(pi).or_default().push(i),
                _ => tops.push((i, true)),
            },
        }
    }
    // A trace continued from a caller (it sent `traceparent`) has no
    // parentless span: its entry span's parent lives in the caller's process.
    // That entry, the earliest span whose parent is missing, is the root, not
    // an orphan. Orphans are the *other* spans whose parent never arrived.
    let mut has_root: HashSet<&str> = HashSet::new();
    for &(i, orphan) in &tops {
        if !orphan {
            has_root.insert(&spans[i].trace_id);
        }
    }
    let mut entry: HashMap<&str, usize> = HashMap::new();
    for (pos, &(i, _)) in tops.iter().enumerate() {
        let trace = spans[i].trace_id.as_str();
        if has_root.contains(trace) {
            continue;
        }
        let earliest = entry.entry(trace).or_insert(pos);
        if spans[i].start_unix_nanos < spans[tops[*earliest].0].start_unix_nanos {
            *earliest = pos;
        }
    }
    for pos in entry.into_values() {
        tops[pos].1 = false;
    }
    let by_start =
        |a: &usize, b: &usize| spans[*a].start_unix_nanos.cmp(&spans[*b].start_unix_nanos);
    for list in children.values_mut() {
        list.sort_by(by_start);
    }

    fn node<'a>(
        i: usize,
        orphan: bool,
        spans: &'a [SpanRecord],
        children: &HashMap<usize, Vec<usize>>,
        seen: &mut [bool],
    ) -> TreeNode<'a> {
        seen[i] = true;
        let kids = children
            .get(&i)
            .map(|c| c.iter().filter(|&&c| !seen[c]).copied().collect::<Vec<_>>())
            .unwrap_or_default();
        let mut out = Vec::with_capacity(kids.len());
        for c in kids {
            if !seen[c] {
                out.push(node(c, false, spans, children, seen));
            }
        }
        TreeNode {
            span: &spans[i],
            orphan,
            children: out,
        }
    }

    let mut seen = vec![false; spans.len()];
    let mut roots = Vec::with_capacity(tops.len());
    for &(i, orphan) in &tops {
        roots.push(node(i, orphan, spans, &children, &mut seen));
    }
    // Spans only reachable through a cycle (a -> b -> a): show them too.
    for i in 0..spans.len() {
        if !seen[i] {
            roots.push(node(i, true, spans, &children, &mut seen));
        }
    }
    roots.sort_by_key(|n| n.span.start_unix_nanos);
    TraceTree { roots }
}
