// Replays a fuzz target's committed seeds (fuzz/corpus/TARGET) and every kept crash
// (fuzz/regressions/TARGET) through the target's check, so that `cargo test` covers them
// without cargo-fuzz. Included (`include!`) by the `fuzzing::tests` module of each crate that
// owns a target; `CARGO_MANIFEST_DIR` is that crate's (crates/NAME).

fn replay(target: &str, check: fn(&[u8])) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let mut seen = 0;
    for kind in ["corpus", "regressions"] {
        let Ok(dir) = std::fs::read_dir(root.join(kind).join(target)) else {
            continue;
        };
        for entry in dir.flatten() {
            if let Ok(bytes) = std::fs::read(entry.path()) {
                // Printed before the check, so a failing input is named by the test's output.
                eprintln!("{}", entry.path().display());
                check(&bytes);
                seen += 1;
            }
        }
    }
    assert!(seen > 0, "no seeds for {target}");
}
