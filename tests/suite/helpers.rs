//! Shared test helpers.

use std::path::PathBuf;

/// The path of an external program the tests need. Outside CI a missing program skips the
/// calling test with a message; with `CI` set it fails the test, so CI never skips silently.
pub fn require_program(name: &str, install_hint: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    });
    match found {
        Some(path) => Some(path),
        None if std::env::var_os("CI").is_some() => {
            panic!("`{name}` is required in CI but is not installed ({install_hint})")
        }
        None => {
            eprintln!("SKIPPED: `{name}` is not installed ({install_hint}); CI runs this test");
            None
        }
    }
}
