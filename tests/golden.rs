//! Golden tests for the IR printer: the imported IR of each example model is
//! compared with `tests/golden/<name>.ir`. Refresh after an intended change
//! with `UPDATE_GOLDEN=1 cargo test --test golden` and review the diff.

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
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_default();
    if got != want {
        let mut diff = String::new();
        let (g, w): (Vec<&str>, Vec<&str>) = (got.lines().collect(), want.lines().collect());
        for i in 0..g.len().max(w.len()) {
            match (w.get(i), g.get(i)) {
                (Some(a), Some(b)) if a == b => {}
                (a, b) => {
                    if let Some(a) = a {
                        diff.push_str(&format!("-{a}\n"));
                    }
                    if let Some(b) = b {
                        diff.push_str(&format!("+{b}\n"));
                    }
                }
            }
        }
        panic!(
            "{} differs from the printed IR (UPDATE_GOLDEN=1 to bless):\n{diff}",
            path.display()
        );
    }
}

#[test]
fn mlp_ir() {
    check("mlp", &[("batch", 2)]);
}

#[test]
fn transformer_ir() {
    check("transformer", &[("batch", 1), ("seq", 16)]);
}
