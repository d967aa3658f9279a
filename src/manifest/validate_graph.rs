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
    // For each environment, the edges leaving it, by position in `edges`.
    let mut out: Vec<Vec<usize>> = Vec::new();
    let mut targets: Vec<usize> = Vec::with_capacity(edges.len());
    for (index, (from, to)) in edges.iter().enumerate() {
        let (from, to) = (id_of(from), id_of(to.as_str()));
        targets.push(to);
        if out.len() <= from.max(to) {
            out.resize_with(from.max(to) + 1, Vec::new);
        }
        out[from].push(index);
    }
    let mut starts: Vec<usize> = (0..out.len()).filter(|&n| !out[n].is_empty()).collect();
    starts.sort_unstable_by_key(|&n| names[n]);
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    let mut marks = vec![Mark::New; out.len()];
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
            let Some(&edge) = out[node].get(*next) else {
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
}
