//! Writes the seed inputs of `cairn_fuzz::seeds` into `corpus/<target>/` as
//! starting points for the fuzz targets. Usage: `cargo run --bin make_seeds
//! [CORPUS_DIR]` (default: the `corpus` directory next to this crate's
//! Cargo.toml). Existing files with the same names are overwritten; others
//! are left alone. The files are then read back and checked with
//! `cairn_fuzz::check_seeds`.

use std::path::{Path, PathBuf};

fn main() {
    let root = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus"));
    let seeds = cairn_fuzz::seeds();
    let path = |target: &str, name: &str| root.join(target).join(format!("seed-{name}"));
    for (target, name, bytes) in &seeds {
        let dir = root.join(target);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
        let path = path(target, name);
        std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    }
    // Check what is on disk, not only what was meant to be written.
    let written: Vec<_> = seeds
        .iter()
        .map(|&(target, name, _)| {
            let path = path(target, name);
            let bytes =
                std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
            (target, name, bytes)
        })
        .collect();
    cairn_fuzz::check_seeds(&written);
    println!("wrote {} seed files under {}", seeds.len(), root.display());
}
