//! The environment dependency graph: cycles are reported whole, with every link pointed at.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::decode::Spanned;
use super::diagnostic::Diagnostic;
use super::validate::Checker;

/// Reports every dependency cycle once, the whole loop, each link pointed at.
pub(super) fn cycles(checker: &mut Checker, edges: &[(&str, Spanned<String>)]) {
    let mut graph: BTreeMap<&str, Vec<&Spanned<String>>> = BTreeMap::new();
    for (from, to) in edges {
        graph.entry(*from).or_default().push(to);
    }
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Open,
        Done,
    }
    let mut marks: HashMap<&str, Mark> = HashMap::new();
    let mut reported: BTreeSet<Vec<String>> = BTreeSet::new();
    // Iterative depth-first search: a manifest may hold thousands of environments in a chain.
    for &start in graph.keys() {
        if marks.contains_key(start) {
            continue;
        }
        let mut path: Vec<(&str, usize)> = vec![(start, 0)];
        let mut via: Vec<&Spanned<String>> = Vec::new();
        marks.insert(start, Mark::Open);
        while let Some((node, next)) = path.last_mut() {
            let node: &str = node;
            let Some(edge) = graph.get(node).and_then(|e| e.get(*next)) else {
                marks.insert(node, Mark::Done);
                path.pop();
                via.pop();
                continue;
            };
            *next += 1;
            let target = edge.as_str();
            match marks.get(target) {
                Some(Mark::Open) => {
                    let at = path.iter().position(|(n, _)| *n == target).unwrap_or(0);
                    let mut links: Vec<&Spanned<String>> = via[at..].to_vec();
                    links.push(edge);
                    let members: Vec<String> = path[at..].iter().map(|(n, _)| n.to_string()).collect();
                    let mut key = members.clone();
                    key.sort();
                    if reported.insert(key) {
                        report_cycle(checker, &members, &links);
                    }
                }
                Some(Mark::Done) => {}
                None => {
                    marks.insert(target, Mark::Open);
                    path.push((target, 0));
                    via.push(edge);
                }
            }
        }
    }
}

fn report_cycle(checker: &mut Checker, members: &[String], links: &[&Spanned<String>]) {
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
