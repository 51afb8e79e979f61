//! The layers of `docs/architecture.md`, held: a module may use the modules of its own layer
//! and of the layers below, never one above; and inside a module, its files do not import
//! each other in a cycle. Read from the source with a Rust parser (`syn`): every path in
//! every item that is not test code, grouped imports (`use crate::{a, b}`) expanded, and a
//! name a module re-exports (`pub use child::Name`) counted as its child's.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use syn::visit::Visit;

/// Bottom to top. A new module gets a line here, in the layer it belongs to.
const LAYERS: &[&[&str]] = &[
    &["bits", "clock", "config", "dns", "scan"],
    &[
        "scope",
        "claim",
        "cors",
        "websocket",
        "request",
        "route",
        "resource",
    ],
    &["principal", "credential"],
    &["token"],
    &["policy"],
    &["answer", "metrics", "otel", "balance"],
    &["requestlog"],
    &["authn", "forward"],
    &["decision"],
    &["compile"],
    &["sync"],
    &["generation"],
    &["front"],
    &["admin"],
    &["server"],
    &["dev", "explain", "openapi"],
];

fn layer(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

/// One source file: its module path (`["sync", "cluster"]`; `mod.rs` is its directory's)
/// and its syntax tree with test code removed.
struct Source {
    module: Vec<String>,
    file: syn::File,
}

fn is_test_only(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|a| {
        a.path().is_ident("cfg")
            && a.parse_args::<syn::Meta>()
                .is_ok_and(|m| m.path().is_ident("test"))
    })
}

/// Drops `#[cfg(test)]` items, also inside inline modules.
fn without_tests(items: Vec<syn::Item>) -> Vec<syn::Item> {
    items
        .into_iter()
        .filter(|item| {
            let attrs = match item {
                syn::Item::Mod(m) => &m.attrs,
                syn::Item::Fn(f) => &f.attrs,
                syn::Item::Use(u) => &u.attrs,
                syn::Item::Impl(i) => &i.attrs,
                syn::Item::Struct(s) => &s.attrs,
                syn::Item::Const(c) => &c.attrs,
                _ => return true,
            };
            !is_test_only(attrs)
        })
        .map(|item| match item {
            syn::Item::Mod(mut m) => {
                if let Some((brace, items)) = m.content.take() {
                    m.content = Some((brace, without_tests(items)));
                }
                syn::Item::Mod(m)
            }
            other => other,
        })
        .collect()
}

fn sources(dir: &Path, module: &[String], out: &mut Vec<Source>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        if path.is_dir() {
            let mut m = module.to_vec();
            m.push(name);
            sources(&path, &m, out);
            continue;
        }
        let Some(stem) = name.strip_suffix(".rs") else {
            continue;
        };
        // Files that are only ever compiled for tests.
        if stem == "tests" || stem.ends_with("_tests") || stem == "testing" {
            continue;
        }
        let mut m = module.to_vec();
        if stem != "mod" && stem != "lib" && stem != "main" {
            m.push(stem.to_string());
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let mut file = syn::parse_file(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        file.items = without_tests(std::mem::take(&mut file.items));
        out.push(Source { module: m, file });
    }
}

/// Every path a file names: `use` trees expanded, and every path in types and expressions.
#[derive(Default)]
struct Paths(Vec<Vec<String>>);

impl Paths {
    fn tree(&mut self, prefix: &mut Vec<String>, tree: &syn::UseTree) {
        match tree {
            syn::UseTree::Path(p) => {
                prefix.push(p.ident.to_string());
                self.tree(prefix, &p.tree);
                prefix.pop();
            }
            syn::UseTree::Name(n) => {
                let mut p = prefix.clone();
                p.push(n.ident.to_string());
                self.0.push(p);
            }
            syn::UseTree::Rename(r) => {
                let mut p = prefix.clone();
                p.push(r.ident.to_string());
                self.0.push(p);
            }
            syn::UseTree::Glob(_) => self.0.push(prefix.clone()),
            syn::UseTree::Group(g) => g.items.iter().for_each(|t| self.tree(prefix, t)),
        }
    }
}

impl<'ast> Visit<'ast> for Paths {
    fn visit_item_use(&mut self, u: &'ast syn::ItemUse) {
        self.tree(&mut Vec::new(), &u.tree);
    }
    fn visit_path(&mut self, p: &'ast syn::Path) {
        self.0
            .push(p.segments.iter().map(|s| s.ident.to_string()).collect());
        syn::visit::visit_path(self, p);
    }
}

/// A path made absolute from the crate root, from where `module` names it (`None` for a
/// path that does not start at the crate, `self` or `super`).
fn absolute(module: &[String], path: &[String]) -> Option<Vec<String>> {
    let mut base: Vec<String> = module.to_vec();
    let mut rest = path;
    match rest.first()?.as_str() {
        "crate" => {
            base.clear();
            rest = &rest[1..];
        }
        "self" => rest = &rest[1..],
        "super" => {
            while rest.first().is_some_and(|s| s == "super") {
                base.pop();
                rest = &rest[1..];
            }
        }
        _ => return None,
    }
    base.extend(rest.iter().cloned());
    Some(base)
}

#[test]
fn no_module_uses_a_module_of_a_higher_layer_nor_its_siblings_in_a_cycle() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&root, &[], &mut files);
    assert!(files.len() > 50, "the sources were found");

    // What each module re-exports from a child: `token::Principals` is `token::claims`'s.
    let mut reexports: BTreeMap<(String, String), String> = BTreeMap::new();
    for f in &files {
        for item in &f.file.items {
            if let syn::Item::Use(u) = item
                && matches!(u.vis, syn::Visibility::Public(_))
            {
                let mut paths = Paths::default();
                paths.tree(&mut Vec::new(), &u.tree);
                for p in paths.0 {
                    if p.len() >= 2 && f.module.len() == 1 {
                        let child = p[0].clone();
                        reexports.insert((f.module[0].clone(), p[p.len() - 1].clone()), child);
                    }
                }
            }
        }
    }

    let mut upward = BTreeSet::new();
    let mut unranked = BTreeSet::new();
    // Within each top-level module: child file → children it imports.
    let mut edges: BTreeMap<String, BTreeSet<(String, String)>> = BTreeMap::new();
    for f in &files {
        let Some(top) = f.module.first() else {
            continue; // lib.rs, main.rs
        };
        let Some(from) = layer(top) else {
            unranked.insert(top.clone());
            continue;
        };
        let mut paths = Paths::default();
        paths.visit_file(&f.file);
        for p in &paths.0 {
            let Some(abs) = absolute(&f.module, p) else {
                continue;
            };
            let Some(target) = abs.first() else { continue };
            match layer(target) {
                Some(to) if to > from => {
                    upward.insert(format!("{} -> {target}", f.module.join("::")));
                }
                None if target != "crate" && !target.is_empty() => {
                    unranked.insert(target.clone());
                }
                _ => {}
            }
            // A sibling inside the same top-level module.
            if target == top && f.module.len() >= 2 && abs.len() >= 2 {
                let child = match reexports.get(&(top.clone(), abs[1].clone())) {
                    Some(c) => c.clone(),
                    None => abs[1].clone(),
                };
                if child != f.module[1] {
                    edges
                        .entry(top.clone())
                        .or_default()
                        .insert((f.module[1].clone(), child));
                }
            }
        }
    }
    assert!(
        unranked.is_empty(),
        "modules without a layer in LAYERS: {unranked:?}"
    );
    assert!(
        upward.is_empty(),
        "imports that point up the layers: {upward:?}"
    );
    let mut cycles = Vec::new();
    for (top, edges) in &edges {
        if let Some(cycle) = find_cycle(edges) {
            cycles.push(format!("{top}: {}", cycle.join(" -> ")));
        }
    }
    assert!(
        cycles.is_empty(),
        "import cycles inside modules: {cycles:?}"
    );
}

/// A cycle in a directed graph, as the nodes along it, if there is one.
fn find_cycle(edges: &BTreeSet<(String, String)>) -> Option<Vec<String>> {
    let nodes: BTreeSet<&String> = edges.iter().flat_map(|(a, b)| [a, b]).collect();
    fn walk<'a>(
        node: &'a String,
        edges: &'a BTreeSet<(String, String)>,
        path: &mut Vec<&'a String>,
        done: &mut BTreeSet<&'a String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|n| *n == node) {
            let mut cycle: Vec<String> = path[i..].iter().map(|s| s.to_string()).collect();
            cycle.push(node.clone());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node);
        for (_, next) in edges.iter().filter(|(a, _)| a == node) {
            if let Some(c) = walk(next, edges, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(node);
        None
    }
    let mut done = BTreeSet::new();
    for n in nodes {
        if let Some(c) = walk(n, edges, &mut Vec::new(), &mut done) {
            return Some(c);
        }
    }
    None
}
