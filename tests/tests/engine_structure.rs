//! The engine's folders are layers, and its modules import each other
//! without cycles: `storage` at the bottom, then `repo`, `query` and `ops`
//! (engine/src/lib.rs shows the map). Read from the source, so that a new
//! `use` against the grain fails here, naming the file.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// The folders, lowest first; modules at the top (errors, progress, host
/// names) sit below them all.
const LAYERS: [&str; 4] = ["storage", "repo", "query", "ops"];

/// Every source file of the engine below `dir`.
fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// A module's layer (0 for the top-level ones) and short name, as the
/// engine's code names it (`crate::backup`): a file directly in a layer's
/// folder, or the folder of a module split into several files.
fn module_of(rel: &Path) -> Option<(usize, String)> {
    let parts: Vec<&str> = rel.iter().map(|p| p.to_str().unwrap()).collect();
    let layer = LAYERS.iter().position(|l| *l == parts[0]);
    let (layer, name) = match layer {
        Some(i) if parts.len() > 1 => (i + 1, parts[1]),
        Some(_) => return None,
        None => (0, parts[0]),
    };
    let name = name.trim_end_matches(".rs");
    (!matches!(name, "lib" | "mod")).then(|| (layer, name.to_string()))
}

/// The modules `source` names through `crate::`, outside comments and its
/// unit tests.
fn imports(source: &str) -> BTreeSet<String> {
    let code = match source.find("#[cfg(test)]\nmod tests") {
        Some(at) => &source[..at],
        None => source,
    };
    let mut found = BTreeSet::new();
    for line in code.lines().map(|l| l.split("//").next().unwrap()) {
        for (at, _) in line.match_indices("crate::") {
            let mut path = line[at + "crate::".len()..].split("::").map(|p| {
                p.chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect::<String>()
            });
            let first = path.next().unwrap_or_default();
            let name = match LAYERS.contains(&first.as_str()) {
                true => path.next().unwrap_or_default(),
                false => first,
            };
            found.insert(match name.as_str() {
                "Repository" | "InitOptions" => "repository".to_string(),
                "Error" | "Result" => "error".to_string(),
                _ => name,
            });
        }
    }
    found
}

#[test]
fn layers_are_only_used_downward_and_no_modules_import_each_other_in_a_cycle() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../engine/src");
    let mut files = Vec::new();
    sources(&root, &mut files);
    let mut layer_of: BTreeMap<String, usize> = BTreeMap::new();
    let mut uses: BTreeMap<String, BTreeMap<String, PathBuf>> = BTreeMap::new();
    for file in &files {
        let rel = file.strip_prefix(&root).unwrap();
        let Some((layer, name)) = module_of(rel) else {
            continue;
        };
        layer_of.insert(name.clone(), layer);
        let entry = uses.entry(name.clone()).or_default();
        for used in imports(&fs::read_to_string(file).unwrap()) {
            if used != name {
                entry.entry(used).or_insert_with(|| rel.to_path_buf());
            }
        }
    }
    assert!(layer_of.len() > 30, "{layer_of:?}");
    assert_eq!(layer_of.get("packer"), Some(&2));

    let mut upward = Vec::new();
    for (name, used) in &uses {
        for (target, file) in used {
            let Some(target_layer) = layer_of.get(target) else {
                continue;
            };
            if *target_layer > layer_of[name] {
                upward.push(format!("{} uses {target}", file.display()));
            }
        }
    }
    assert!(upward.is_empty(), "imports against the layers: {upward:#?}");

    // Depth-first search: a module met again while still on the path
    // closes a cycle.
    fn visit(
        name: &str,
        uses: &BTreeMap<String, BTreeMap<String, PathBuf>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|p| p == name) {
            let mut cycle = path[at..].to_vec();
            cycle.push(name.to_string());
            return Some(cycle);
        }
        if !done.insert(name.to_string()) {
            return None;
        }
        path.push(name.to_string());
        for next in uses.get(name).into_iter().flat_map(|u| u.keys()) {
            if let Some(cycle) = visit(next, uses, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        None
    }
    let mut done = BTreeSet::new();
    for name in uses.keys() {
        let cycle = visit(name, &uses, &mut Vec::new(), &mut done);
        assert!(cycle.is_none(), "modules importing each other: {cycle:?}");
    }
}
