//! The environment dependency graph: cycles are reported whole, with every link pointed at.

use compact_str::CompactString;
use std::collections::BTreeSet;

use foldhash::{HashMap, HashMapExt};

use super::decode::Spanned;
use super::diagnostic::Diagnostic;
use super::validate::Checker;

/// Reports every dependency cycle once, the whole loop, each link pointed at.
///
/// Names are numbered once, so the search itself compares numbers: with thousands of environments,
/// looking each step up by name cost more than the rest of the checks. Environments with dependencies
/// are searched from in name order and their edges followed in the order written, so the cycles found,
/// and how each is told, do not depend on anything else.
pub(super) fn cycles(checker: &mut Checker, edges: &[(&str, Spanned<CompactString>)]) {
    let mut ids: HashMap<&str, usize> = HashMap::with_capacity(edges.len());
    let mut names: Vec<&str> = Vec::new();
    let mut id_of = |name| {
        *ids.entry(name).or_insert_with(|| {
            names.push(name);
            names.len() - 1
        })
    };
    // Each edge's ends by number; then the edges leaving each environment, by position in `edges` and
    // in the order written, all in one vector: `out[first[n]..first[n + 1]]` leave environment n.
    let mut sources: Vec<usize> = Vec::with_capacity(edges.len());
    let mut targets: Vec<usize> = Vec::with_capacity(edges.len());
    for (from, to) in edges {
        sources.push(id_of(from));
        targets.push(id_of(to.as_str()));
    }
    let nodes = names.len();
    let mut first = vec![0usize; nodes + 1];
    for &from in &sources {
        first[from + 1] += 1;
    }
    for node in 0..nodes {
        first[node + 1] += first[node];
    }
    let mut out = vec![0usize; edges.len()];
    let mut filled = first.clone();
    for (index, &from) in sources.iter().enumerate() {
        out[filled[from]] = index;
        filled[from] += 1;
    }
    let leaving = |node: usize| &out[first[node]..first[node + 1]];
    // Most manifests have no cycle, and one pass that takes away what nothing depends on says so
    // without the ordered search below.
    if acyclic(nodes, &targets, &leaving) {
        return;
    }
    let mut starts: Vec<usize> = (0..nodes).filter(|&n| !leaving(n).is_empty()).collect();
    starts.sort_unstable_by_key(|&n| names[n]);
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    let mut marks = vec![Mark::New; nodes];
    let mut reported: BTreeSet<Vec<CompactString>> = BTreeSet::new();
    // Iterative depth-first search: a manifest may hold thousands of environments in a chain.
    for start in starts {
        if marks[start] != Mark::New {
            continue;
        }
        let mut path: Vec<(usize, usize)> = vec![(start, 0)];
        let mut via: Vec<&Spanned<CompactString>> = Vec::new();
        marks[start] = Mark::Open;
        while let Some((node, next)) = path.last_mut() {
            let node = *node;
            let Some(&edge) = leaving(node).get(*next) else {
                marks[node] = Mark::Done;
                path.pop();
                via.pop();
                continue;
            };
            *next += 1;
            let (target, link) = (targets[edge], &edges[edge].1);
            match marks[target] {
                Mark::Open => {
                    let at = path.iter().position(|&(n, _)| n == target).unwrap_or(0);
                    let mut links: Vec<&Spanned<CompactString>> = via[at..].to_vec();
                    links.push(link);
                    let members: Vec<CompactString> =
                        path[at..].iter().map(|&(n, _)| CompactString::from(names[n])).collect();
                    let mut key = members.clone();
                    key.sort();
                    if reported.insert(key) {
                        report_cycle(checker, &members, &links);
                    }
                }
                Mark::Done => {}
                Mark::New => {
                    marks[target] = Mark::Open;
                    path.push((target, 0));
                    via.push(link);
                }
            }
        }
    }
}

/// Whether a graph of `nodes` with edges to `targets` (by edge), leaving each node as `leaving` says,
/// has no cycle: taking away, one after another, the nodes no remaining edge points to takes them all.
fn acyclic<'a>(nodes: usize, targets: &[usize], leaving: &impl Fn(usize) -> &'a [usize]) -> bool {
    let mut pointed_to = vec![0usize; nodes];
    for &target in targets {
        pointed_to[target] += 1;
    }
    let mut free: Vec<usize> = (0..nodes).filter(|&n| pointed_to[n] == 0).collect();
    let mut taken = 0;
    while let Some(node) = free.pop() {
        taken += 1;
        for &edge in leaving(node) {
            let target = targets[edge];
            pointed_to[target] -= 1;
            if pointed_to[target] == 0 {
                free.push(target);
            }
        }
    }
    taken == nodes
}

fn report_cycle(checker: &mut Checker, members: &[CompactString], links: &[&Spanned<CompactString>]) {
    let mut loop_text = members.join(" → ");
    loop_text.push_str(&format!(" → {}", members[0]));
    let mut diagnostic = Diagnostic::error("dependency-cycle", format!("dependency cycle: {loop_text}"))
        .at(links[links.len() - 1].span, format!("{} depends on {}", members[members.len() - 1], members[0]))
        .help("environments deploy in dependency order, so a cycle can never deploy: remove one of these links");
    for (index, link) in links[..links.len() - 1].iter().enumerate() {
        diagnostic = diagnostic.related(link.span, format!("{} depends on {}", members[index], link.value));
    }
    checker.diags.push(diagnostic);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::tree::Span;

    #[test]
    fn every_cycle_is_told_once_from_the_first_name_in_order() {
        let link = |to: &str, at: usize| Spanned { value: to.into(), span: Span::new(at, at + 1), overlay: false };
        // Written out of order; "b" is in two loops, "x" depends on a loop without being in one.
        let edges = vec![
            ("e", link("d", 0)),
            ("b", link("a", 1)),
            ("a", link("b", 2)),
            ("x", link("c", 3)),
            ("b", link("c", 4)),
            ("c", link("b", 5)),
            ("d", link("e", 6)),
            ("c", link("b", 7)),
        ];
        let mut diags = Vec::new();
        let mut checker = Checker { diags: &mut diags, root: std::path::PathBuf::new() };
        cycles(&mut checker, &edges);
        let messages: Vec<&str> = diags.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(
            messages,
            ["dependency cycle: a → b → a", "dependency cycle: b → c → b", "dependency cycle: d → e → d"]
        );
        // The last link is the label; the others are related, each pointed at.
        assert_eq!(diags[0].span, Some(Span::new(1, 2)));
        assert_eq!(diags[0].related.len(), 1);
        assert_eq!(diags[0].related[0].span, Span::new(2, 3));
    }

    #[test]
    fn a_graph_is_acyclic_only_when_every_node_can_be_taken_away() {
        // Edges by position: their targets, and the edges leaving each node.
        let check = |targets: &[usize], leaving: &[Vec<usize>]| acyclic(leaving.len(), targets, &|n| &leaving[n][..]);
        // 0 → 1 → 2 and 0 → 2.
        assert!(check(&[1, 2, 2], &[vec![0, 2], vec![1], vec![]]));
        // 0 → 1 beside a loop 2 → 3 → 2 that nothing free leads into.
        assert!(!check(&[1, 3, 2], &[vec![0], vec![], vec![1], vec![2]]));
        // A node that depends on itself.
        assert!(!check(&[0], &[vec![0]]));
        assert!(check(&[], &[]));
        // With no cycle, nothing is reported.
        let link = |to: &str| Spanned { value: to.into(), span: Span::new(0, 1), overlay: false };
        let mut diags = Vec::new();
        let mut checker = Checker { diags: &mut diags, root: std::path::PathBuf::new() };
        cycles(&mut checker, &[("b", link("a")), ("c", link("b")), ("c", link("a"))]);
        assert!(diags.is_empty());
    }
}
