//! Golden tests for the IR printer: the imported IR of each example model is
//! compared with `tests/golden/<name>.ir`. Refresh after an intended change
//! with `UPDATE_GOLDEN=1 cargo test --test golden` and review the diff.

#[path = "common/golden.rs"]
mod golden_file;

use std::path::Path;

use smelt_frontend::onnx::{ImportOptions, load};

fn check(name: &str, dims: &[(&str, usize)]) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut opts = ImportOptions::default();
    for (k, v) in dims {
        opts.dims.insert(k.to_string(), *v);
    }
    let graph = load(&root.join("examples").join(name).join("model.onnx"), &opts).unwrap();
    let got = smelt_ir::print::print(&graph);
    let path = root.join("tests/golden").join(format!("{name}.ir"));
    golden_file::assert_golden(&path, &got);
}

#[test]
fn mlp_ir() {
    check("mlp", &[("batch", 2)]);
}

#[test]
fn transformer_ir() {
    check("transformer", &[("batch", 1), ("seq", 16)]);
}
