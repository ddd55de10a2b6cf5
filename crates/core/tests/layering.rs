//! The core's modules depend on each other one way: no file of `src/` reaches itself through
//! the items it names. This test reads the sources and builds the module graph from what each
//! file names by path: `use` declarations (groups and renames expanded) and `crate::`,
//! `super::`, `self::` paths in code, including paths through a module imported by name
//! (`use crate::kernels::matmul; matmul::f()`). An item reached through a re-export (`pub use`)
//! counts as a dependency on the module that defines it; a re-export alone is not a dependency
//! of the file that re-exports (a facade such as `lib.rs` or `graph/mod.rs`). Method calls are
//! not paths and are not seen: the graph is of names, as `cargo modules` draws it. Unit-test
//! modules (`#[cfg(test)] mod tests`) are left out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Module = Vec<String>;

struct File {
    /// The code without comments and test modules.
    code: String,
    /// `use` declarations: (path, name bound, is a re-export).
    uses: Vec<(Vec<String>, String, bool)>,
}

fn module_of(root: &Path, file: &Path) -> Module {
    let rel = file.strip_prefix(root).unwrap();
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().unwrap();
    if last != "mod.rs" && last != "lib.rs" {
        parts.push(last.trim_end_matches(".rs").to_string());
    }
    parts
}

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

/// The source without comments, string literals' contents, and `#[cfg(test)]` modules.
fn strip(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while i < b.len() {
        if b[i..].starts_with(b"//") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if b[i..].starts_with(b"/*") {
            i = src[i..].find("*/").map_or(b.len(), |e| i + e + 2);
        } else if b[i] == b'"' {
            out.push('"');
            i += 1;
            while i < b.len() && b[i] != b'"' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            out.push('"');
            i += 1;
        } else if b[i..].starts_with(b"#[cfg(test)]") {
            // Skip the attribute and the item after it (up to its matching brace).
            let open = src[i..].find('{').map_or(b.len(), |o| i + o);
            let mut depth = 0;
            i = open;
            while i < b.len() {
                match b[i] {
                    b'{' => depth += 1,
                    b'}' => {
                        depth -= 1;
                        if depth == 0 {
                            i += 1;
                            break;
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
        } else {
            let c = src[i..].chars().next().unwrap();
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

/// Expands a use tree (`a::{b, c::{d as e}}`) into (path, bound name) pairs.
fn expand(tree: &str, prefix: &[String], out: &mut Vec<(Vec<String>, String)>) {
    let tree = tree.trim();
    if let Some(open) = tree.find('{') {
        let mut base = prefix.to_vec();
        base.extend(
            tree[..open]
                .split("::")
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from),
        );
        let inner = &tree[open + 1..tree.rfind('}').unwrap()];
        let (mut depth, mut start) = (0, 0);
        for (k, c) in inner.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    expand(&inner[start..k], &base, out);
                    start = k + 1;
                }
                _ => {}
            }
        }
        expand(&inner[start..], &base, out);
        return;
    }
    if tree.is_empty() {
        return;
    }
    let (path, alias) = match tree.split_once(" as ") {
        Some((p, a)) => (p.trim(), Some(a.trim().to_string())),
        None => (tree, None),
    };
    let mut full = prefix.to_vec();
    full.extend(path.split("::").map(|s| s.trim().to_string()));
    if full.last().is_some_and(|l| l == "self") {
        full.pop();
    }
    let name = alias.unwrap_or_else(|| full.last().cloned().unwrap_or_default());
    out.push((full, name));
}

fn parse(src: &str) -> File {
    let code = strip(src);
    let mut uses = Vec::new();
    let mut rest = String::new();
    let mut pos = 0;
    let bytes = code.as_bytes();
    while let Some(found) = code[pos..].find("use ") {
        let at = pos + found;
        let boundary = at == 0 || !(bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_');
        if !boundary {
            rest.push_str(&code[pos..at + 4]);
            pos = at + 4;
            continue;
        }
        let end = code[at..].find(';').map_or(code.len(), |e| at + e);
        let head = code[..at].trim_end();
        let reexport = head.ends_with("pub") || head.ends_with(')') && head.contains("pub(");
        let mut expanded = Vec::new();
        expand(&code[at + 4..end], &[], &mut expanded);
        uses.extend(expanded.into_iter().map(|(p, n)| (p, n, reexport)));
        rest.push_str(&code[pos..at]);
        pos = end + 1;
    }
    rest.push_str(&code[pos.min(code.len())..]);
    File { code: rest, uses }
}

struct Crate {
    files: BTreeMap<Module, File>,
}

impl Crate {
    /// The module a path names, relative to `from`, or the module defining the item it names.
    fn resolve(&self, from: &Module, path: &[String], depth: usize) -> Option<Module> {
        if depth > 16 {
            return None;
        }
        let mut segs = path.iter().peekable();
        let mut m: Module = match segs.peek().map(|s| s.as_str()) {
            Some("crate" | "$crate") => {
                segs.next();
                Vec::new()
            }
            Some("self") => {
                segs.next();
                from.clone()
            }
            Some("super") => {
                let mut m = from.clone();
                while segs.peek().is_some_and(|s| *s == "super") {
                    segs.next();
                    m.pop();
                }
                m
            }
            // A path relative to `from` (`pub use tensor::Tensor` in `lib.rs`), or an outside
            // crate.
            Some(first) => {
                let mut child = from.clone();
                child.push(first.to_string());
                if !self.files.contains_key(&child) {
                    return None;
                }
                from.clone()
            }
            None => return None,
        };
        for seg in segs {
            let mut child = m.clone();
            child.push(seg.clone());
            if self.files.contains_key(&child) {
                m = child;
                continue;
            }
            // An item of `m`: follow a re-export to where it is defined.
            let file = self.files.get(&m)?;
            if let Some((p, _, _)) = file.uses.iter().find(|(_, n, re)| *re && n == seg) {
                return self.resolve(&m, p, depth + 1).or(Some(m));
            }
            return Some(m);
        }
        Some(m)
    }

    fn edges(&self) -> BTreeMap<Module, BTreeSet<Module>> {
        let mut edges: BTreeMap<Module, BTreeSet<Module>> = BTreeMap::new();
        for (m, file) in &self.files {
            let mut deps = BTreeSet::new();
            let is_word = |name: &str| {
                file.code.match_indices(name).any(|(k, _)| {
                    let before = file.code[..k].chars().next_back();
                    let after = file.code[k + name.len()..].chars().next();
                    let ident =
                        |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
                    !ident(before) && !ident(after)
                })
            };
            // Prefixes under which code names paths: crate/super/self, and imported modules.
            let mut prefixes: Vec<(String, Module)> = vec![
                ("crate".into(), Vec::new()),
                ("$crate".into(), Vec::new()),
                ("self".into(), m.clone()),
            ];
            if !m.is_empty() {
                prefixes.push(("super".into(), m[..m.len() - 1].to_vec()));
            }
            for (path, name, reexport) in &file.uses {
                let Some(target) = self.resolve(m, path, 0) else {
                    continue;
                };
                let names_module = path.last().is_some_and(|l| target.last() == Some(l))
                    && self.files.contains_key(&target);
                if names_module {
                    prefixes.push((name.clone(), target));
                } else if !*reexport || is_word(name) {
                    deps.insert(target);
                }
            }
            for (prefix, base) in &prefixes {
                for (k, _) in file.code.match_indices(&format!("{prefix}::")) {
                    let before = file.code[..k].chars().next_back();
                    if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                        continue;
                    }
                    let tail: String = file.code[k + prefix.len() + 2..]
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                        .collect();
                    let mut path = vec!["crate".to_string()];
                    path.extend(base.iter().cloned());
                    path.extend(tail.split("::").filter(|s| !s.is_empty()).map(String::from));
                    if let Some(t) = self.resolve(&Vec::new(), &path, 0) {
                        deps.insert(t);
                    }
                }
            }
            deps.remove(m);
            edges.insert(m.clone(), deps);
        }
        edges
    }
}

fn name(m: &Module) -> String {
    if m.is_empty() {
        "lib".into()
    } else {
        m.join("::")
    }
}

/// A cycle through `start`, if there is one.
fn cycle_from(edges: &BTreeMap<Module, BTreeSet<Module>>, start: &Module) -> Option<Vec<Module>> {
    let mut stack = vec![(start.clone(), vec![start.clone()])];
    let mut seen = BTreeSet::new();
    while let Some((m, path)) = stack.pop() {
        for next in edges.get(&m).into_iter().flatten() {
            if next == start {
                let mut cycle = path.clone();
                cycle.push(start.clone());
                return Some(cycle);
            }
            if seen.insert(next.clone()) {
                let mut p = path.clone();
                p.push(next.clone());
                stack.push((next.clone(), p));
            }
        }
    }
    None
}

fn core() -> Crate {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut paths = Vec::new();
    rust_files(&root, &mut paths);
    let files = paths
        .iter()
        .map(|p| {
            (
                module_of(&root, p),
                parse(&std::fs::read_to_string(p).unwrap()),
            )
        })
        .collect();
    Crate { files }
}

#[test]
fn the_core_has_no_module_cycle() {
    let krate = core();
    let edges = krate.edges();
    let cycles: Vec<String> = edges
        .keys()
        .filter_map(|m| cycle_from(&edges, m))
        .map(|c| c.iter().map(name).collect::<Vec<_>>().join(" -> "))
        .collect();
    assert!(cycles.is_empty(), "module cycles:\n{}", cycles.join("\n"));
}

#[test]
fn the_layers_are_seen() {
    // The checker itself: it must see the dependencies that define the layering, or the test
    // above could pass on an empty graph.
    let edges = core().edges();
    let has = |a: &str, b: &str| {
        let m = |s: &str| -> Module { s.split("::").map(String::from).collect() };
        edges.get(&m(a)).is_some_and(|d| d.contains(&m(b)))
    };
    for (a, b) in [
        ("ops", "kernels::matmul"),
        ("ops", "graph::trace"),
        ("kernels::elementwise", "op"),
        ("graph::runtime", "kernels::fused"),
        ("graph::runtime", "graph::planner"),
        ("graph::passes", "graph"),
        ("autograd::rules", "op"),
        ("tensor", "op"),
    ] {
        assert!(has(a, b), "{a} -> {b} not seen");
    }
    assert!(!has("kernels::fused", "graph::ir"));
}

#[test]
fn a_cycle_is_found() {
    let mut krate = core();
    // Make a kernel name the tensor type, which uses the kernels: the checker must report the
    // cycle this closes.
    let kernel = vec!["kernels".to_string(), "elementwise".to_string()];
    krate
        .files
        .get_mut(&kernel)
        .unwrap()
        .code
        .push_str("\nfn f() { crate::Tensor::scalar(1.0); }\n");
    let edges = krate.edges();
    assert!(cycle_from(&edges, &kernel).is_some());
}
