//! Test-only access to the shared vector files (`../shared/vectors/` next to the project).

use std::path::PathBuf;

/// The vectors folder; panics if it is missing, so a missing checkout fails loudly.
pub(crate) fn dir() -> PathBuf {
    let dir = std::env::var_os("KEYLINE_VECTORS").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/vectors"),
        PathBuf::from,
    );
    assert!(
        dir.is_dir(),
        "test vectors not found at {}; set KEYLINE_VECTORS",
        dir.display()
    );
    dir
}

/// Reads one vector file as text.
pub(crate) fn read(relative: &str) -> String {
    let path = dir().join(relative);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read vector file {}: {e}", path.display()))
}
