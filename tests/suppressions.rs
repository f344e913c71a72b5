//! The sanitizers' suppression files (`scripts/tsan.supp`,
//! `scripts/lsan.supp`) name pilfer's code by path: a function
//! (`pilfer::worker::blocking::start_spare`) or a source file
//! (`src/frames.rs`). A rename that leaves them behind silently turns a
//! suppression off, and the sanitizer runs fail far from the change. This
//! test fails at the rename instead: every such name must still exist.

use std::fs;
use std::path::{Path, PathBuf};

const FILES: &[&str] = &["scripts/tsan.supp", "scripts/lsan.supp"];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The suppression patterns of `file` (its lines that are not comments).
fn patterns(file: &str) -> Vec<String> {
    let text = fs::read_to_string(root().join(file)).expect("reading a suppression file");
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

/// Every `pilfer::a::b::f` in `pattern`, as its module path and item.
fn pilfer_paths(pattern: &str) -> Vec<(Vec<String>, String)> {
    let mut found = Vec::new();
    let mut rest = pattern;
    while let Some(at) = rest.find("pilfer::") {
        rest = &rest[at + "pilfer::".len()..];
        let path: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
            .collect();
        let mut segments: Vec<String> = path
            .split("::")
            .filter(|segment| !segment.is_empty())
            .map(str::to_owned)
            .collect();
        if let Some(item) = segments.pop() {
            found.push((segments, item));
        }
    }
    found
}

/// The source file of the module at `path` under `src/`.
fn module_file(path: &[String]) -> Option<PathBuf> {
    let base = path
        .iter()
        .fold(root().join("src"), |dir, segment| dir.join(segment));
    [base.with_extension("rs"), base.join("mod.rs")]
        .into_iter()
        .find(|file| file.is_file())
}

#[test]
fn suppressions_name_code_that_exists() {
    let mut stale = Vec::new();
    for file in FILES {
        for pattern in patterns(file) {
            for (module, item) in pilfer_paths(&pattern) {
                let defined = module_file(&module)
                    .and_then(|source| fs::read_to_string(source).ok())
                    .is_some_and(|text| text.contains(&format!("fn {item}")));
                if !defined {
                    stale.push(format!(
                        "{file}: `pilfer::{}::{item}`: no such function",
                        module.join("::")
                    ));
                }
            }
            let body = pattern.split_once(':').map_or("", |(_, body)| body);
            if body.starts_with("src/") && !root().join(body).is_file() {
                stale.push(format!("{file}: `{body}`: no such file"));
            }
        }
    }
    assert!(
        stale.is_empty(),
        "suppressions that name code no longer there:\n{}",
        stale.join("\n")
    );
}

#[test]
fn paths_are_read_from_patterns() {
    let pattern =
        "leak:std::thread::spawn::{closure_env#1}<pilfer::worker::blocking::start_spare::";
    assert_eq!(
        pilfer_paths(pattern),
        [(
            vec!["worker".to_owned(), "blocking".to_owned()],
            "start_spare".to_owned()
        )]
    );
}
