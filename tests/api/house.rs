//! The house stays in order, offline: the manual (README.md and `docs/`) matches the code,
//! the crate's imports point one way, and no source module outgrows one reader.
//!
//! - every relative link and anchor of the manual resolves;
//! - every route of the `cargo lambda watch` router (which another test holds equal to the
//!   template and the API document) is in `docs/api.md`'s route table;
//! - every environment variable the functions read (`config::VARIABLES`, which the
//!   configuration checks every read against) is in `docs/deploy.md`'s configuration table;
//! - no two modules of `shared/src` import each other, directly or around a loop, and none
//!   imports from a layer above its own;
//! - no source module is longer than [`MAX_MODULE_LINES`] before its tests.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn workspace_file(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

/// A heading's anchor as GitHub makes it: lower case, spaces to hyphens, and every character
/// but letters, digits, `-` and `_` dropped.
fn anchor_of(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | ' '))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The anchors of a Markdown file's headings, and its links (outside code blocks).
fn anchors_and_links(text: &str) -> (BTreeSet<String>, Vec<String>) {
    let (mut anchors, mut links, mut fenced) = (BTreeSet::new(), Vec::new(), false);
    for line in text.lines() {
        if line.starts_with("```") {
            fenced = !fenced;
        }
        if fenced {
            continue;
        }
        if let Some(heading) = line.strip_prefix('#') {
            anchors.insert(anchor_of(heading.trim_start_matches('#')));
        }
        let mut rest = line;
        while let Some(at) = rest.find("](") {
            rest = &rest[at + 2..];
            let end = rest.find(')').unwrap_or(rest.len());
            links.push(rest[..end].to_owned());
            rest = &rest[end..];
        }
    }
    (anchors, links)
}

/// The manual stays whole: every relative link of README.md and `docs/` names a file that
/// exists, and every anchor a heading of that file.
#[test]
fn every_link_and_anchor_of_the_readme_and_the_manual_resolves() {
    let root = root();
    let mut pages = vec![root.join("README.md")];
    for entry in std::fs::read_dir(root.join("docs")).expect("docs/") {
        let path = entry.expect("an entry").path();
        if path.extension().is_some_and(|e| e == "md") {
            pages.push(path);
        }
    }
    assert!(pages.len() > 1, "the manual is in docs/");
    for page in &pages {
        let text = std::fs::read_to_string(page).expect("a page");
        let (own, links) = anchors_and_links(&text);
        let name = page.strip_prefix(&root).unwrap_or(page).display();
        for link in links {
            if link.starts_with("http://") || link.starts_with("https://") {
                continue;
            }
            let (path, anchor) = link.split_once('#').unwrap_or((&link, ""));
            let anchors = if path.is_empty() {
                own.clone()
            } else {
                let target = page.parent().unwrap().join(path);
                assert!(target.exists(), "{name}: {link} names no file");
                match std::fs::read_to_string(&target) {
                    Ok(text) if path.ends_with(".md") => anchors_and_links(&text).0,
                    _ => BTreeSet::new(),
                }
            };
            assert!(
                anchor.is_empty() || anchors.contains(anchor),
                "{name}: {link} names no heading"
            );
        }
    }
}

/// The first cell of every row of the Markdown tables in `text`, code spans unwrapped.
fn first_cells(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|line| line.strip_prefix('|'))
        .filter_map(|row| row.split('|').next())
        .map(|cell| cell.trim().to_owned())
        .collect()
}

/// Every route the functions serve is in `docs/api.md`'s route table, as `` `METHOD path` ``
/// (path parameters may be named differently), and the table names no other.
#[test]
fn every_route_of_the_router_is_in_the_api_document() {
    let manifest: toml::Table = workspace_file("Cargo.toml").parse().expect("Cargo.toml");
    let router = manifest["workspace"]["metadata"]["lambda"]["watch"]["router"]
        .as_table()
        .expect("the router");
    let shape = |path: &str| {
        let mut out = String::new();
        let mut in_param = false;
        for c in path.chars() {
            match c {
                '{' => {
                    in_param = true;
                    out.push_str("{}");
                }
                '}' => in_param = false,
                _ if in_param => {}
                c => out.push(c),
            }
        }
        out
    };
    let mut served = BTreeSet::new();
    for (path, targets) in router {
        for target in targets.as_array().expect("a list of targets") {
            let method = target["method"].as_str().expect("a method");
            served.insert(format!("`{method} {}`", shape(path)));
        }
    }
    let documented: BTreeSet<String> = first_cells(&workspace_file("docs/api.md"))
        .into_iter()
        .filter(|cell| cell.starts_with('`') && cell.contains(" /"))
        .map(|cell| {
            let (method, path) = cell.trim_matches('`').split_once(' ').expect("METHOD path");
            format!("`{method} {}`", shape(path))
        })
        .collect();
    assert_eq!(
        served, documented,
        "the router's routes vs. docs/api.md's route table"
    );
}

/// Every variable the functions read has its row in the configuration table, and the table
/// documents no variable the code does not read (besides the AWS SDK's own).
#[test]
fn every_environment_variable_read_is_in_the_configuration_table() {
    let rows = first_cells(&workspace_file("docs/deploy.md"));
    let documented: BTreeSet<&str> = rows
        .iter()
        .flat_map(|cell| cell.split(['`', ',', '/', ' ']))
        .filter(|name| {
            name.len() > 2
                && name
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        })
        .filter(|name| !name.starts_with("AWS_ENDPOINT_URL_"))
        .collect();
    let read: BTreeSet<&str> = device_flow::config::VARIABLES.iter().copied().collect();
    assert_eq!(read, documented, "config::VARIABLES vs. docs/deploy.md");
}

/// The longest a source module may be before its tests (`#[cfg(test)]`).
const MAX_MODULE_LINES: usize = 700;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("an entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// A module's source before its tests.
fn before_tests(source: &str) -> &str {
    source
        .find("\n#[cfg(test)]")
        .map_or(source, |at| &source[..at])
}

#[test]
fn no_source_module_is_longer_than_one_reader_holds() {
    let root = root();
    let mut files = Vec::new();
    for dir in [
        "shared/src",
        "functions",
        "xtask/src",
        "examples",
        "tests/src",
    ] {
        rust_files(&root.join(dir), &mut files);
    }
    let long: Vec<String> = files
        .iter()
        .map(|path| path.strip_prefix(&root).unwrap_or(path))
        // Test files and folders are not source modules.
        .filter(|path| !path.components().skip(1).any(|c| c.as_os_str() == "tests"))
        .filter(|path| !path.ends_with("tests.rs"))
        .filter_map(|path| {
            let source = std::fs::read_to_string(root.join(path)).expect("a source file");
            let lines = before_tests(&source).lines().count();
            (lines > MAX_MODULE_LINES).then(|| format!("{}: {lines} lines", path.display()))
        })
        .collect();
    assert!(
        long.is_empty(),
        "longer than {MAX_MODULE_LINES} lines before their tests: {long:?}"
    );
}

/// The module a file of `shared/src` holds, as its path from the crate root (`""` for
/// `lib.rs`, `usecase` for `usecase/mod.rs`); `None` for a sibling `tests.rs`.
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let relative = file.strip_prefix(src).ok()?.with_extension("");
    let mut parts: Vec<String> = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    match parts.last().map(String::as_str) {
        Some("tests") => return None,
        Some("mod" | "lib") => {
            parts.pop();
        }
        _ => {}
    }
    Some(parts.join("::"))
}

/// The paths a `use` tree names, each with its prefix (`a::{b, c::{d}}` gives `a::b` and
/// `a::c::d`).
fn expand_use(tree: &str, prefix: &str, out: &mut Vec<String>) {
    let tree = tree.trim();
    let join = |head: &str| match (prefix.is_empty(), head.is_empty()) {
        (true, _) => head.to_owned(),
        (false, true) => prefix.to_owned(),
        (false, false) => format!("{prefix}::{head}"),
    };
    match tree.find('{') {
        None => out.push(join(tree.split(" as ").next().unwrap_or(tree).trim())),
        Some(open) => {
            let head = tree[..open].trim().trim_end_matches("::");
            let inner = &tree[open + 1..tree.rfind('}').expect("a closing brace")];
            let (mut depth, mut start) = (0, 0);
            for (i, c) in inner.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        expand_use(&inner[start..i], &join(head), out);
                        start = i + 1;
                    }
                    _ => {}
                }
            }
            if !inner[start..].trim().is_empty() {
                expand_use(&inner[start..], &join(head), out);
            }
        }
    }
}

/// Every path a module's code names from `crate::`, `super::` or `self::`, made absolute.
fn named_paths(module: &str, source: &str) -> Vec<String> {
    let code: String = before_tests(source)
        .lines()
        .map(|line| line.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    let segments: Vec<&str> = module.split("::").filter(|s| !s.is_empty()).collect();
    // `super` of `a::b` is `a`, whether it lives in `a/b.rs` or `a/b/mod.rs`.
    let parent = segments[..segments.len().saturating_sub(1)].join("::");
    let absolute = |path: &str| -> Option<String> {
        let path = path.trim();
        let (base, rest) = if let Some(rest) = path.strip_prefix("crate::") {
            (String::new(), rest)
        } else if let Some(rest) = path.strip_prefix("super::") {
            (parent.clone(), rest)
        } else if let Some(rest) = path.strip_prefix("self::") {
            (module.to_owned(), rest)
        } else {
            return None;
        };
        Some(if base.is_empty() {
            rest.to_owned()
        } else {
            format!("{base}::{rest}")
        })
    };
    let mut paths = Vec::new();
    // `use` trees from this crate, grouped ones included.
    let mut rest = code.as_str();
    while let Some(at) = rest.find("use ") {
        let word_starts = !rest[..at]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric() || c == '_');
        rest = &rest[at + 4..];
        let tree = rest.trim_start();
        if word_starts
            && ["crate::", "super::", "self::"]
                .iter()
                .any(|k| tree.starts_with(k))
        {
            let end = tree.find(';').unwrap_or(tree.len());
            let mut expanded = Vec::new();
            expand_use(&tree[..end], "", &mut expanded);
            paths.extend(expanded.iter().filter_map(|p| absolute(p)));
        }
    }
    // Paths written out in the code.
    for keyword in ["crate::", "super::"] {
        let mut rest = code.as_str();
        while let Some(at) = rest.find(keyword) {
            let before = rest[..at].chars().next_back();
            rest = &rest[at..];
            let end = rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .unwrap_or(rest.len());
            if !before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '{') {
                paths.extend(absolute(&rest[..end]));
            }
            rest = &rest[end.max(1)..];
        }
    }
    paths
}

/// The modules' layers, top to bottom: a module imports only from its own layer or below.
fn layer(module: &str) -> u8 {
    match module.split("::").next() {
        Some("http") => 3,
        Some("usecase") => 2,
        Some("store") => 1,
        _ => 0,
    }
}

/// Whether `a` is `b` or one of its ancestors (a module may use the module it is declared
/// in: that is its namespace, not a dependency).
fn is_ancestor(a: &str, b: &str) -> bool {
    a.is_empty() || a == b || b.starts_with(&format!("{a}::"))
}

#[test]
fn the_crate_imports_point_one_way_with_no_circle() {
    let src = root().join("shared/src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let sources: BTreeMap<String, String> = files
        .iter()
        .filter_map(|file| {
            let module = module_of(&src, file)?;
            Some((module, std::fs::read_to_string(file).expect("a file")))
        })
        .collect();
    let resolve = |path: &str| -> Option<String> {
        let segments: Vec<&str> = path.split("::").collect();
        (1..=segments.len())
            .rev()
            .map(|n| segments[..n].join("::"))
            .find(|candidate| sources.contains_key(candidate))
    };
    let mut edges: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    let mut upward = Vec::new();
    for (module, source) in &sources {
        for path in named_paths(module, source) {
            let Some(target) = resolve(&path) else {
                continue;
            };
            if is_ancestor(&target, module) || is_ancestor(module, &target) {
                continue;
            }
            if layer(&target) > layer(module) {
                upward.push(format!("{module} -> {target}"));
            }
            edges.entry(module).or_default().insert(target);
        }
    }
    assert!(upward.is_empty(), "imports from a layer above: {upward:?}");
    // A circle is a path back to where it started: depth-first, with the path on a stack.
    fn visit<'a>(
        module: &'a str,
        edges: &'a BTreeMap<&str, BTreeSet<String>>,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|m| *m == module) {
            let mut circle: Vec<String> = path[at..].iter().map(|m| (*m).to_owned()).collect();
            circle.push(module.to_owned());
            return Some(circle);
        }
        if !done.insert(module) {
            return None;
        }
        path.push(module);
        for next in edges.get(module).into_iter().flatten() {
            if let Some(circle) = visit(next, edges, path, done) {
                return Some(circle);
            }
        }
        path.pop();
        None
    }
    let mut done = BTreeSet::new();
    for module in sources.keys() {
        let circle = visit(module, &edges, &mut Vec::new(), &mut done);
        assert!(circle.is_none(), "modules import each other: {circle:?}");
    }
    assert!(
        edges
            .get("usecase::poll")
            .is_some_and(|t| t.contains("store")),
        "the import graph is read (poll uses the store)"
    );
}

/// The architecture diagram names the functions and what each may do to the table: one
/// node per function, and on its arrow to the table exactly the table actions its
/// `PERMISSIONS` declare (which other tests hold to the template and to the calls made).
#[test]
fn the_architecture_diagram_shows_every_function_with_its_table_actions() {
    let text = workspace_file("docs/architecture.md");
    let mut nodes = BTreeMap::new();
    let mut actions: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in text.lines().map(str::trim) {
        // `DA[device-authorization]`: a function's node.
        for word in line.split_whitespace() {
            if let Some((id, rest)) = word.split_once('[')
                && let Some(name) = rest.strip_suffix(']')
                && id.chars().all(|c| c.is_ascii_uppercase())
                && !id.is_empty()
            {
                nodes.insert(id.to_owned(), name.to_owned());
            }
        }
        // `DA -->|GetItem, PutItem| T...`: its arrow to the table.
        if let Some((id, rest)) = line.split_once(" -->|")
            && let Some((label, target)) = rest.split_once('|')
            && (target == " T" || target.starts_with(" T["))
        {
            let table_part = label.split(';').next().unwrap_or(label);
            actions
                .entry(id.to_owned())
                .or_default()
                .extend(table_part.split(',').map(|a| a.trim().to_owned()));
        }
    }
    let declared = crate::deployment::declared_permissions();
    for (function, permissions) in &declared {
        let id = nodes
            .iter()
            .find(|(_, name)| name == function)
            .map(|(id, _)| id.clone())
            .unwrap_or_else(|| panic!("{function} is not in the diagram"));
        let expected: BTreeSet<String> = permissions
            .table
            .iter()
            .map(|a| a.trim_start_matches("dynamodb:").to_owned())
            .collect();
        assert_eq!(
            actions.get(&id).cloned().unwrap_or_default(),
            expected,
            "{function}'s table actions in docs/architecture.md"
        );
    }
}
