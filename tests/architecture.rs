//! The layers of `docs/architecture.md`, held: a module may use the modules of its own layer
//! and of the layers below, never one above (so there is no import cycle between modules
//! either). Read from the source: every `crate::<module>` outside test code.

use std::collections::BTreeSet;
use std::path::Path;

/// Bottom to top. A new module gets a line here, in the layer it belongs to.
const LAYERS: &[&[&str]] = &[
    &["clock", "config"],
    &["scope", "request", "route"],
    &["principal", "credential"],
    &["token"],
    &["policy"],
    &["answer", "metrics", "otel"],
    &["requestlog"],
    &["authn", "forward"],
    &["decision"],
    &["compile"],
    &["sync"],
    &["generation"],
    &["authz"],
    &["proxy", "admin"],
    &["server"],
    &["dev", "explain"],
];

fn layer(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

/// Files of `dir` (recursively) with their top-level module, test code left out.
fn sources(dir: &Path, top: Option<&str>, out: &mut Vec<(String, String)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        let module = top
            .map(str::to_string)
            .unwrap_or_else(|| name.trim_end_matches(".rs").to_string());
        if path.is_dir() {
            sources(&path, Some(&module), out);
        } else if name.ends_with(".rs") && name != "tests.rs" && name != "testing.rs" {
            let text = std::fs::read_to_string(&path).unwrap();
            let code = text.split("#[cfg(test)]").next().unwrap().to_string();
            out.push((module, code));
        }
    }
}

#[test]
fn no_module_uses_a_module_of_a_higher_layer() {
    let mut files = Vec::new();
    sources(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        None,
        &mut files,
    );
    let mut upward = BTreeSet::new();
    let mut unranked = BTreeSet::new();
    for (module, code) in &files {
        if module == "lib" || module == "main" {
            continue;
        }
        let Some(from) = layer(module) else {
            unranked.insert(module.clone());
            continue;
        };
        for line in code.lines().map(|l| l.split("//").next().unwrap()) {
            for used in line.split("crate::").skip(1) {
                let target: String = used
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                match layer(&target) {
                    Some(to) if to > from => {
                        upward.insert(format!("{module} -> {target}"));
                    }
                    None if !target.is_empty() => {
                        unranked.insert(target);
                    }
                    _ => {}
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
}
