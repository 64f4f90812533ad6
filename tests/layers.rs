//! The modules' import order, read from the source: each top-level module of `src/` may name
//! (`use crate::x`, `crate::x::...`) only modules on a lower layer, so data flows one way and
//! no import cycle can form between modules. Comments are not read; a module's own unit tests
//! (after `#[cfg(test)]`) may reach anywhere.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Lowest first. A module may import the modules of any layer before its own.
const LAYERS: &[&[&str]] = &[
    // What every module may report.
    &["errors", "logging"],
    // Where state lives and who may read it.
    &["state_dir"],
    // Pure work: decoding, models, transcription, rendering; uploads waiting on disk.
    &["audio", "model", "metrics"],
    &["engine"],
    &["formats", "config"],
    // Uploads waiting on disk, named with the node from the config.
    &["spool"],
    // The queue and its workers.
    &["jobs"],
    // Live transcription: streams on the engine, beside the queue.
    &["live"],
    // Serving: who calls, what they send, the routes, the listening socket.
    &["auth", "upload", "listen"],
    // The control socket serves keys to the `keys` command, as the HTTP routes do to browsers.
    &["http", "control"],
    // The command line on top.
    &["cli"],
    &["commands"],
];

/// The module a name counts as: the OpenAI API and the page are the HTTP layer's routes
/// (and move into `src/http/`).
fn module_of(name: &str) -> &str {
    match name {
        "openai" | "ui" => "http",
        other => other,
    }
}

fn layer(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module_of(module)))
}

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            found.push(path);
        }
    }
}

/// The top-level modules a file names with `crate::`, outside comments and unit tests.
fn named_modules(text: &str) -> BTreeSet<String> {
    let code = text.split("#[cfg(test)]").next().unwrap_or_default();
    let mut named = BTreeSet::new();
    for line in code.lines().map(str::trim).filter(|line| !line.starts_with("//")) {
        let line = line.split(" //").next().unwrap_or_default();
        for (at, _) in line.match_indices("crate::") {
            let rest = &line[at + "crate::".len()..];
            // `use crate::{a, b}` would hide its modules from this reader; the code base writes
            // one `use crate::x` a module, and this keeps it so.
            if rest.starts_with('{') {
                named.insert("{grouped}".to_owned());
            }
            let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            if !name.is_empty() && name.chars().next().is_some_and(char::is_lowercase) {
                named.insert(name);
            }
        }
    }
    named
}

#[test]
fn modules_import_only_lower_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut wrong = Vec::new();
    for file in files {
        let relative = file.strip_prefix(&src).unwrap();
        let first = relative.components().next().unwrap().as_os_str().to_string_lossy().into_owned();
        let module = first.trim_end_matches(".rs").to_owned();
        if module == "lib" || module == "main" {
            continue;
        }
        let Some(own) = layer(&module) else {
            wrong.push(format!("{module} (src/{}) is on no layer; add it to LAYERS", relative.display()));
            continue;
        };
        for named in named_modules(&std::fs::read_to_string(&file).unwrap()) {
            if module_of(&named) == module_of(&module) {
                continue;
            }
            match layer(&named) {
                Some(theirs) if theirs < own => {}
                Some(_) => {
                    wrong.push(format!("src/{} imports {named}, which is not below {module}", relative.display()))
                }
                None => wrong.push(format!("src/{} imports {named}, which is on no layer", relative.display())),
            }
        }
    }
    assert!(wrong.is_empty(), "imports against the layers:\n{}", wrong.join("\n"));
}

#[test]
fn the_reader_sees_imports_and_skips_comments_and_tests() {
    let named = named_modules(
        "use crate::errors::X;\n// use crate::http;\nlet y = crate::jobs::now_ms(); // crate::ui\n\
         #[cfg(test)]\nmod tests { use crate::commands; }",
    );
    assert_eq!(named, BTreeSet::from(["errors".to_owned(), "jobs".to_owned()]));
}
