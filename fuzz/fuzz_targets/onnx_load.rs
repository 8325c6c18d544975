//! Bytes → `OnnxModel::from_bytes` → `summary()` → `import()`: any input must
//! give a model or an error, never a panic, a hang or a huge allocation.
//!
//! The model path points into a folder that does not exist, so external data
//! references are resolved (and refused) without touching real files.

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use smelt_frontend::onnx::{ImportOptions, OnnxModel};

fuzz_target!(|data: &[u8]| {
    let opts = ImportOptions::default();
    let path = Path::new("/nonexistent-smelt-fuzz/model.onnx");
    if let Ok(model) = OnnxModel::from_bytes(data, path, &opts.limits) {
        let _ = model.summary();
        if let Ok(graph) = model.import(&opts) {
            // An imported graph must verify and print.
            smelt_ir::verify::verify(&graph).expect("an imported graph verifies");
            let _ = smelt_ir::print::print(&graph);
        }
    }
});
