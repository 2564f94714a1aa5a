//! The server's module layers, read from its own sources: no import cycle among its top-level
//! modules (a module that names `crate::x` depends on `x`), and only the HTTP layer (`http/`)
//! knows the application state. A change that makes a lower module reach up fails here, with
//! the cycle it made.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("server/src is readable") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of a file without its comments (doc and line comments mention modules freely).
fn code(text: &str) -> String {
    text.lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Each top-level module and the modules it names.
type Edges = BTreeMap<String, BTreeSet<String>>;

/// The import graph, and the (module, file) pairs outside `http/` that name `AppState`.
fn graph() -> (Edges, Vec<(String, String)>) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = vec![];
    sources(&src, &mut files);
    let module = |p: &Path| -> String {
        let rel = p.strip_prefix(&src).unwrap();
        let first = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        first.trim_end_matches(".rs").to_owned()
    };
    let modules: BTreeSet<String> = files.iter().map(|p| module(p)).collect();
    let mut edges: Edges = BTreeMap::new();
    let mut state_users = vec![];
    for path in &files {
        let from = module(path);
        if from == "main" || from == "bin" {
            continue;
        }
        let text = code(&std::fs::read_to_string(path).unwrap());
        for (i, _) in text.match_indices("crate::") {
            let name: String = text[i + 7..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if name != from && modules.contains(&name) {
                edges.entry(from.clone()).or_default().insert(name);
            }
        }
        if from != "http" && from != "lib" && text.contains("AppState") {
            state_users.push((from.clone(), path.display().to_string()));
        }
        edges.entry(from).or_default();
    }
    (edges, state_users)
}

/// A cycle through `start`, if there is one (depth-first search).
fn cycle_from(edges: &Edges, start: &str, at: &str, path: &mut Vec<String>) -> Option<Vec<String>> {
    for next in edges.get(at).into_iter().flatten() {
        if next == start {
            let mut cycle = path.clone();
            cycle.push(start.to_owned());
            return Some(cycle);
        }
        if !path.contains(next) {
            path.push(next.clone());
            if let Some(c) = cycle_from(edges, start, next, path) {
                return Some(c);
            }
            path.pop();
        }
    }
    None
}

#[test]
fn the_server_modules_have_no_import_cycle() {
    let (edges, _) = graph();
    assert!(edges.len() > 10, "the sources were found: {edges:?}");
    assert!(
        edges["http"].contains("relay") && edges["relay"].contains("job"),
        "the graph reads real imports: {edges:?}"
    );
    for start in edges.keys() {
        let mut path = vec![start.clone()];
        if let Some(cycle) = cycle_from(&edges, start, start, &mut path) {
            panic!("import cycle: {}", cycle.join(" -> "));
        }
    }
}

#[test]
fn only_the_http_layer_knows_the_application_state() {
    let (_, users) = graph();
    assert!(users.is_empty(), "outside http/: {users:?}");
}

#[test]
fn the_scheduler_crate_depends_on_nothing_of_the_web() {
    no_web_dependencies("scheduler");
}

#[test]
fn the_shared_queue_crate_depends_on_nothing_of_the_web() {
    no_web_dependencies("cluster");
}

/// Fails if `crate_dir`'s manifest names a web or application crate among its dependencies.
fn no_web_dependencies(crate_dir: &str) {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../{crate_dir}/Cargo.toml"));
    let text = std::fs::read_to_string(&manifest).expect("the crate's Cargo.toml");
    let deps = text
        .split("[dependencies]")
        .nth(1)
        .expect("a [dependencies] table")
        .split("\n[")
        .next()
        .unwrap();
    let names: Vec<&str> = deps
        .lines()
        .filter_map(|l| l.split(['=', '.']).next())
        .map(str::trim)
        .filter(|n| !n.is_empty() && !n.starts_with('#'))
        .collect();
    assert!(names.contains(&"tokio"), "the table was read: {names:?}");
    for web in [
        "axum",
        "leptos",
        "leptos_axum",
        "serde_json",
        "app",
        "server",
        "hyper",
    ] {
        assert!(!names.contains(&web), "{crate_dir} depends on {web}");
    }
}
