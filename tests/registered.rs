//! Every test and example file of the repository is a target: the tests
//! and the examples are workspace members with `autotests`/`autoexamples`
//! off (so that the published crate leaves them out without a warning), and
//! a file that is not listed in its `Cargo.toml` would silently never build
//! or run.

use std::fs;
use std::path::Path;

/// The `path = "..."` values of a manifest.
fn listed_paths(manifest: &Path) -> Vec<String> {
    let text = fs::read_to_string(manifest).expect("read the manifest");
    text.lines()
        .filter_map(|line| line.trim().strip_prefix("path = \""))
        .filter_map(|rest| rest.strip_suffix('"'))
        .map(str::to_owned)
        .collect()
}

/// The `.rs` files directly in `dir`.
fn rust_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .expect("read the directory")
        .map(|entry| entry.expect("a directory entry").file_name())
        .map(|name| name.into_string().expect("a UTF-8 file name"))
        .filter(|name| name.ends_with(".rs"))
        .collect();
    names.sort();
    names
}

fn check(dir: &Path) {
    let listed = listed_paths(&dir.join("Cargo.toml"));
    let files = rust_files(dir);
    assert!(!files.is_empty(), "no .rs files found in {}", dir.display());
    let missing: Vec<&String> = files.iter().filter(|f| !listed.contains(f)).collect();
    assert!(
        missing.is_empty(),
        "{} lists no target for {missing:?}: add a [[test]]/[[example]] entry",
        dir.join("Cargo.toml").display()
    );
    let stale: Vec<&String> = listed.iter().filter(|p| !files.contains(p)).collect();
    assert!(
        stale.is_empty(),
        "{} lists missing files {stale:?}",
        dir.display()
    );
}

#[test]
fn every_test_file_is_a_target() {
    check(Path::new(env!("CARGO_MANIFEST_DIR")));
}

#[test]
fn every_example_file_is_a_target() {
    check(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples"));
}
