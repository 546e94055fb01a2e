//! The layout rules of docs/architecture.md, checked on the source itself:
//! no import cycle between the top-level modules of `src/`, the leaves
//! import nothing else from the crate, and no source file grows past
//! ~600 lines of non-test code without a stated reason.
//!
//! Run alone with `cargo test --test architecture -- --nocapture` to print
//! the module graph.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Modules every other module may stand on; they import nothing of the crate.
const LEAVES: [&str; 6] = ["model", "problems", "clock", "paths", "units", "secrets"];

/// Files allowed past the size limit, with the reason.
const LARGE: [(&str, &str); 0] = [];

const MAX_LINES: usize = 600;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of a file without its `#[cfg(test)]` module (by convention the
/// last item of a file) and without comments.
fn non_test_code(text: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    for line in text.lines() {
        if line.trim_start().starts_with("#[cfg(test)]") && !line.starts_with(' ') {
            break;
        }
        let t = line.trim_start();
        if t.starts_with("//") || t.is_empty() {
            continue;
        }
        lines.push(line);
    }
    lines
}

/// The top-level module a file belongs to (`src/alert/engine.rs` → `alert`).
fn top_module(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap();
    let first = rel.components().next().unwrap().as_os_str();
    first.to_string_lossy().trim_end_matches(".rs").to_string()
}

/// Top-level modules this code names as `crate::<module>`.
fn references(code: &[&str], tops: &BTreeSet<String>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in code {
        let mut rest = *line;
        while let Some(i) = rest.find("crate::") {
            rest = &rest[i + "crate::".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if tops.contains(&name) {
                out.insert(name);
            }
        }
    }
    out
}

/// Module → the modules it names; and each file with its non-test line count.
type Graph = (BTreeMap<String, BTreeSet<String>>, Vec<(PathBuf, usize)>);

fn graph() -> Graph {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let tops: BTreeSet<String> = files
        .iter()
        .map(|f| top_module(&src, f))
        .filter(|m| m != "lib" && m != "main")
        .collect();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut sizes = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let code = non_test_code(&text);
        sizes.push((f.strip_prefix(&src).unwrap().to_path_buf(), code.len()));
        let from = top_module(&src, f);
        let to = edges.entry(from.clone()).or_default();
        for r in references(&code, &tops) {
            if r != from {
                to.insert(r);
            }
        }
    }
    (edges, sizes)
}

/// A cycle through `start`, if any (depth-first).
fn cycle_from(edges: &BTreeMap<String, BTreeSet<String>>, start: &str) -> Option<Vec<String>> {
    fn walk(
        edges: &BTreeMap<String, BTreeSet<String>>,
        start: &str,
        at: &str,
        path: &mut Vec<String>,
        seen: &mut BTreeSet<String>,
    ) -> bool {
        for next in edges.get(at).into_iter().flatten() {
            if next == start {
                path.push(next.clone());
                return true;
            }
            if seen.insert(next.clone()) {
                path.push(next.clone());
                if walk(edges, start, next, path, seen) {
                    return true;
                }
                path.pop();
            }
        }
        false
    }
    let mut path = vec![start.to_string()];
    let mut seen = BTreeSet::new();
    walk(edges, start, start, &mut path, &mut seen).then_some(path)
}

#[test]
fn no_import_cycle_between_top_level_modules() {
    let (edges, _) = graph();
    for (from, to) in &edges {
        println!(
            "{from:>10} -> {}",
            to.iter().cloned().collect::<Vec<_>>().join(", ")
        );
    }
    let cycles: Vec<String> = edges
        .keys()
        .filter_map(|m| cycle_from(&edges, m))
        .map(|c| c.join(" -> "))
        .collect();
    assert!(cycles.is_empty(), "import cycles:\n{}", cycles.join("\n"));
}

#[test]
fn the_leaves_import_nothing_of_the_crate() {
    let (edges, _) = graph();
    for leaf in LEAVES {
        let to = edges.get(leaf).cloned().unwrap_or_default();
        assert!(to.is_empty(), "{leaf} imports {to:?}");
    }
}

#[test]
fn no_source_file_is_too_large_without_a_reason() {
    let (_, sizes) = graph();
    let too_large: Vec<String> = sizes
        .iter()
        .filter(|(f, n)| {
            *n > MAX_LINES && !LARGE.iter().any(|(name, _)| Path::new(name) == f.as_path())
        })
        .map(|(f, n)| format!("{}: {n} lines of non-test code", f.display()))
        .collect();
    assert!(
        too_large.is_empty(),
        "over {MAX_LINES} lines:\n{}",
        too_large.join("\n")
    );
}

/// The checker itself: a cycle is found when there is one.
#[test]
fn the_cycle_finder_finds_a_cycle() {
    let edges: BTreeMap<String, BTreeSet<String>> = [
        ("a", vec!["b"]),
        ("b", vec!["c"]),
        ("c", vec!["a"]),
        ("d", vec!["a"]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.into_iter().map(String::from).collect()))
    .collect();
    assert_eq!(
        cycle_from(&edges, "a"),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
    assert_eq!(cycle_from(&edges, "d"), None);
}
