//! The crate's modules form layers (ARCHITECTURE.md): a module uses only
//! modules of lower layers, so the import graph has no cycle and a reader
//! can learn the crate bottom-up. This test reads `src/` and fails on any
//! reference (`crate::name`, outside comments) that points sideways or up.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

/// Lowest first. ARCHITECTURE.md's code map shows the same layers
/// (`the_code_map_shows_the_same_layers`).
const LAYERS: &[&[&str]] = &[
    &["sync", "unwind", "rng"],
    &["metrics", "parker", "pin", "queue", "table"],
    &["sleep"],
    &["latch"],
    &["job", "end"],
    &["frames", "bound", "spares"],
    &["publish", "config"],
    &["registry"],
    &["worker"],
    &["install", "start", "task"],
    &["global", "context"],
    &["join", "scope", "spawn", "current", "isolate"],
    &["broadcast"],
    &["pool"],
    &["builder", "shutdown"],
    &["lib", "compile_fail"],
];

/// The source of each top-level module: `src/name.rs` and every file of
/// `src/name/`.
fn modules() -> BTreeMap<String, String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut modules = BTreeMap::new();
    for entry in fs::read_dir(&src).expect("reading src/") {
        let path = entry.expect("an entry of src/").path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let text = if path.is_dir() {
            let mut text = String::new();
            for file in fs::read_dir(&path).expect("reading a module directory") {
                let file = file.expect("a module file").path();
                text += &fs::read_to_string(&file).expect("reading a module file");
            }
            text
        } else {
            fs::read_to_string(&path).expect("reading a module")
        };
        // `src/name.rs` and `src/name/` (its submodules' files) are one
        // module.
        modules
            .entry(name)
            .or_insert_with(String::new)
            .push_str(&text);
    }
    modules
}

/// The top-level modules `text` refers to through `crate::`, outside
/// comments.
fn references(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            if let Some(group) = rest.strip_prefix('{') {
                let end = group.find('}').unwrap_or(group.len());
                for item in group[..end].split(',') {
                    found.push(leading_ident(item.trim()));
                }
            } else {
                found.push(leading_ident(rest));
            }
        }
    }
    found.retain(|name| !name.is_empty());
    found
}

fn leading_ident(text: &str) -> String {
    text.chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect()
}

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

#[test]
fn every_module_has_a_layer() {
    for module in modules().keys() {
        assert!(
            layer_of(module).is_some(),
            "src/{module}: add it to LAYERS here and to ARCHITECTURE.md"
        );
    }
}

#[test]
fn modules_only_use_lower_layers() {
    let modules = modules();
    let mut wrong = Vec::new();
    for (module, text) in &modules {
        let Some(layer) = layer_of(module) else {
            continue;
        };
        for used in references(text) {
            if used == *module || !modules.contains_key(&used) {
                continue;
            }
            match layer_of(&used) {
                Some(used_layer) if used_layer < layer => {}
                _ => wrong.push(format!("{module} uses {used}")),
            }
        }
    }
    wrong.sort();
    wrong.dedup();
    assert!(
        wrong.is_empty(),
        "modules reaching sideways or up the layers:\n{}",
        wrong.join("\n")
    );
}

/// ARCHITECTURE.md's code map: the layer of each `src/` module it names,
/// from rows of the form `| N | `src/name.rs` | ...` (or `src/name/`), with
/// any other `src/name.rs` a row mentions (`compile_fail` in lib's row)
/// at the same layer.
fn code_map() -> BTreeMap<String, usize> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("ARCHITECTURE.md");
    let text = fs::read_to_string(path).expect("reading ARCHITECTURE.md");
    let mut map = BTreeMap::new();
    for line in text.lines() {
        let mut cells = line.split('|').map(str::trim);
        let (Some(""), Some(layer), Some(file)) = (cells.next(), cells.next(), cells.next()) else {
            continue;
        };
        let Ok(layer) = layer.parse::<usize>() else {
            continue;
        };
        let Some(module) = file.strip_prefix("`src/") else {
            continue;
        };
        map.insert(leading_ident(module), layer);
        let mut rest = line;
        while let Some(at) = rest.find("`src/") {
            rest = &rest[at + "`src/".len()..];
            let name = leading_ident(rest);
            if rest[name.len()..].starts_with(".rs`") {
                map.entry(name).or_insert(layer);
            }
        }
    }
    map
}

#[test]
fn the_code_map_shows_the_same_layers() {
    let map = code_map();
    let mut wrong = Vec::new();
    for (layer, modules) in LAYERS.iter().enumerate() {
        for module in *modules {
            match map.get(*module) {
                Some(&listed) if listed == layer => {}
                Some(&listed) => {
                    wrong.push(format!("{module}: layer {listed} there, {layer} here"))
                }
                None => wrong.push(format!("{module}: missing there")),
            }
        }
    }
    for module in map.keys() {
        if layer_of(module).is_none() {
            wrong.push(format!("{module}: listed there, not here"));
        }
    }
    assert!(
        wrong.is_empty(),
        "ARCHITECTURE.md's code map and LAYERS disagree:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn references_are_found() {
    let text =
        "use crate::sync::Arc;\nuse crate::{job, latch::Latch};\n// crate::pool in a comment\n";
    assert_eq!(references(text), ["sync", "job", "latch"]);
}
