//! The architecture's rules, checked on the source so that they hold by test, not by prose:
//!
//! - the pure core (`src/core/`) names nothing outside the core: no store, config, application
//!   layer, door or worker, no sqlx, lettre, reqwest, axum, tokio or hyper, and no clock or
//!   other IO from the standard library;
//! - no import circle between modules (each top-level module of `src/` and each file of the
//!   core is one node; an edge is a `crate::` path in code that is not a test).
//!
//! - every statement of the store that writes (`INSERT`, `UPDATE`, `DELETE`) runs in a write
//!   transaction (`begin_write`), never straight on a pool: behind a transaction-mode pooler a
//!   pooled connection commits only when it is given back, after the caller has moved on.
//!
//! Each checker is itself tested on a small input that breaks its rule, so a checker that
//! cannot fail would fail here.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Infrastructure crates and standard-library doors to the outside world the core must not use.
const FORBIDDEN_IN_CORE: &[&str] = &[
    "sqlx::",
    "lettre::",
    "reqwest::",
    "axum::",
    "tokio::",
    "hyper::",
    "minijinja::",
    "figment::",
    "Utc::now",
    "Local::now",
    "SystemTime",
    "Instant::now",
    "std::fs",
    "std::net",
    "std::env",
    "std::process",
    "std::io",
];

/// The source of `path` without its test module and without whole-line comments: what the
/// module's shipped code names.
fn code_of(text: &str) -> String {
    let shipped = match text.find("#[cfg(test)]\nmod tests") {
        Some(at) => &text[..at],
        None => text,
    };
    shipped
        .lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Each place in `code` where `needle` starts at an identifier boundary.
fn occurrences<'a>(code: &'a str, needle: &'a str) -> impl Iterator<Item = usize> + 'a {
    code.match_indices(needle)
        .map(|(at, _)| at)
        .filter(move |&at| !code[..at].chars().next_back().is_some_and(is_ident_char))
}

/// The module names that follow `crate::` in `code`, as nodes of the module graph: `core::x`
/// for a file of the core (including each name of a `crate::core::{a, b}` group), else the
/// top-level module.
fn referenced_modules(code: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for at in occurrences(code, "crate::") {
        let rest = &code[at + "crate::".len()..];
        let head: String = rest.chars().take_while(|&c| is_ident_char(c)).collect();
        if head != "core" {
            if !head.is_empty() {
                found.insert(head);
            }
            continue;
        }
        let after = &rest["core".len()..];
        let Some(after) = after.strip_prefix("::") else {
            continue;
        };
        if let Some(group) = after.strip_prefix('{') {
            let group = &group[..group.find('}').unwrap_or(group.len())];
            for name in group.split(',') {
                let name: String = name
                    .trim()
                    .chars()
                    .take_while(|&c| is_ident_char(c))
                    .collect();
                if !name.is_empty() && name != "self" {
                    found.insert(format!("core::{name}"));
                }
            }
        } else {
            let name: String = after.chars().take_while(|&c| is_ident_char(c)).collect();
            if !name.is_empty() {
                found.insert(format!("core::{name}"));
            }
        }
    }
    found
}

/// What a file of the core names that the core must not: any module outside the core, or an
/// infrastructure crate or IO. Empty when the file keeps the rule.
fn core_violations(code: &str) -> Vec<String> {
    let mut found: Vec<String> = referenced_modules(code)
        .into_iter()
        .filter(|m| !m.starts_with("core::") && m != "core")
        .map(|m| format!("crate::{m}"))
        .collect();
    for needle in FORBIDDEN_IN_CORE {
        if occurrences(code, needle).next().is_some() {
            found.push((*needle).to_string());
        }
    }
    found
}

/// A circle in `graph`, as the path of nodes that closes it, if there is one.
fn find_circle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Open,
        Done,
    }
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        marks: &mut BTreeMap<String, Mark>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        match marks.get(node) {
            Some(Mark::Done) => return None,
            Some(Mark::Open) => {
                let start = path.iter().position(|n| n == node).unwrap_or(0);
                let mut circle = path[start..].to_vec();
                circle.push(node.to_string());
                return Some(circle);
            }
            None => {}
        }
        marks.insert(node.to_string(), Mark::Open);
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(circle) = visit(next, graph, marks, path) {
                return Some(circle);
            }
        }
        path.pop();
        marks.insert(node.to_string(), Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut marks, &mut Vec::new()))
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut folders = vec![dir.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).expect("reading src/") {
            let path = entry.expect("reading src/").path();
            if path.is_dir() {
                folders.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The graph node a file belongs to: `core::x` for `src/core/x.rs` and every file of a folder
/// `src/core/x/`, else its top-level module; `None` for the crate roots.
fn node_of(path: &Path) -> Option<String> {
    let relative = path.strip_prefix(src()).ok()?;
    let parts: Vec<String> = relative
        .with_extension("")
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    match parts.as_slice() {
        [root] if root == "lib" || root == "main" => None,
        [core, file, ..] if core == "core" && file != "mod" => Some(format!("core::{file}")),
        [first, ..] => Some(first.clone()),
        [] => None,
    }
}

#[test]
fn the_core_names_no_infrastructure() {
    let files = rust_files(&src().join("core"));
    assert!(
        files.len() >= 17,
        "src/core/ should hold the core's files, found {}",
        files.len()
    );
    let mut broken = Vec::new();
    for file in &files {
        let code = code_of(&std::fs::read_to_string(file).expect("reading a core file"));
        for name in core_violations(&code) {
            broken.push(format!("{} names {name}", file.display()));
        }
    }
    assert!(
        broken.is_empty(),
        "the pure core must do no IO and name no infrastructure:\n{}",
        broken.join("\n")
    );
}

#[test]
fn no_module_imports_another_in_a_circle() {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in rust_files(&src()) {
        let Some(node) = node_of(&file) else { continue };
        let code = code_of(&std::fs::read_to_string(&file).expect("reading a source file"));
        let edges = graph.entry(node.clone()).or_default();
        for target in referenced_modules(&code) {
            if target != node && target != "test_support" && target != "core" {
                edges.insert(target);
            }
        }
    }
    assert!(graph.len() > 20, "the module graph looks empty: {graph:?}");
    if let Some(circle) = find_circle(&graph) {
        panic!(
            "modules import each other in a circle: {}",
            circle.join(" -> ")
        );
    }
}

/// The store functions (by their `async fn` line) that run a writing statement straight on a
/// pool (`&self.pool`, `&store.write_pool`, `self.reader(…)`, …) rather than in a transaction.
fn writes_outside_a_transaction(code: &str) -> Vec<String> {
    let lines: Vec<&str> = code.lines().collect();
    let on_a_pool = [
        "(&self.pool)",
        "(&self.read_pool)",
        "(&self.write_pool)",
        "(&store.pool)",
        "(&store.read_pool)",
        "(&store.write_pool)",
        "self.reader(",
        "store.reader(",
    ];
    let mut found = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if !on_a_pool.iter().any(|p| line.contains(p)) {
            continue;
        }
        let Some(start) = (0..=i).rev().find(|&k| lines[k].contains("async fn ")) else {
            continue;
        };
        let body = lines[start..i].join("\n");
        if ["INSERT INTO", "DELETE FROM"]
            .iter()
            .any(|w| body.contains(w))
            || body
                .split("UPDATE ")
                .skip(1)
                .any(|rest| rest.contains(" SET "))
        {
            found.push(lines[start].trim().to_string());
        }
    }
    found
}

#[test]
fn every_write_of_the_store_runs_in_a_transaction() {
    let mut found = Vec::new();
    for file in rust_files(&src().join("store")) {
        let code = code_of(&std::fs::read_to_string(&file).unwrap());
        for f in writes_outside_a_transaction(&code) {
            found.push(format!("{}: {f}", file.display()));
        }
    }
    assert!(
        found.is_empty(),
        "writes straight on a pool:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_checkers_catch_what_they_look_for() {
    let straight = "async fn revoke(&self) {\n sqlx::query(\"UPDATE api_keys SET revoked_at = $1\")\n .execute(&self.pool)\n .await }";
    assert_eq!(
        writes_outside_a_transaction(straight),
        vec!["async fn revoke(&self) {"]
    );
    let on_the_write_pool = "pub(super) async fn record(store: &PgStore) {\n sqlx::query(\"UPDATE outbox SET status = $1\")\n .execute(&store.write_pool)\n .await }";
    assert_eq!(
        writes_outside_a_transaction(on_the_write_pool),
        vec!["pub(super) async fn record(store: &PgStore) {"]
    );
    let in_tx = "async fn revoke(&self) {\n let mut tx = begin_write(self).await?;\n sqlx::query(\"UPDATE api_keys SET revoked_at = $1\")\n .execute(&mut *tx)\n .await }\nasync fn read(&self) {\n sqlx::query(\"SELECT 1\").fetch_one(&self.pool) }";
    assert!(writes_outside_a_transaction(in_tx).is_empty());
    let bad = "use crate::store::Store;\nfn now() { chrono::Utc::now(); }\nuse sqlx::Row;";
    let found = core_violations(bad);
    assert_eq!(found, vec!["crate::store", "sqlx::", "Utc::now"]);
    assert!(core_violations("use crate::core::{money, pricing::quote};").is_empty());
    assert!(
        core_violations(&code_of("// the store writes it: crate::store\nfn x() {}")).is_empty()
    );
    assert!(core_violations("let mysqlx::y = 1;").is_empty());
    assert_eq!(
        referenced_modules("use crate::core::{self, money::Money, lifecycle};"),
        BTreeSet::from(["core::lifecycle".to_string(), "core::money".to_string()])
    );

    let graph: BTreeMap<String, BTreeSet<String>> = [
        ("a", vec!["b"]),
        ("b", vec!["c"]),
        ("c", vec!["a"]),
        ("d", vec![]),
    ]
    .into_iter()
    .map(|(n, e)| (n.to_string(), e.into_iter().map(String::from).collect()))
    .collect();
    assert_eq!(
        find_circle(&graph),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
    let acyclic: BTreeMap<String, BTreeSet<String>> = [("a", vec!["b"]), ("b", vec![])]
        .into_iter()
        .map(|(n, e)| (n.to_string(), e.into_iter().map(String::from).collect()))
        .collect();
    assert_eq!(find_circle(&acyclic), None);
}
