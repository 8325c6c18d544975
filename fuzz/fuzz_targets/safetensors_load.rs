//! Bytes → safetensors header validation → binding to a graph whose
//! constants mirror the file's tensors. Any input must give weights or an
//! error, never a panic; accepted files must tile their data section, and a
//! binding must hand out exactly the bytes the header points at.

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use smelt_frontend::Limits;
use smelt_frontend::safetensors::{Weights, bind_weights};
use smelt_ir::{Bytes, Graph, TensorType, ValueDef};

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    let Ok(weights) = Weights::from_bytes(data, Path::new("fuzz.safetensors"), &limits) else {
        return;
    };
    // The tensors tile the data section, in order, up to the end of the file.
    let mut end = None;
    for t in weights.tensors() {
        if let Some(e) = end {
            assert_eq!(
                t.offset, e,
                "tensor '{}' does not start where the previous one ended",
                t.name
            );
        }
        end = Some(t.offset + t.len);
    }
    if let Some(e) = end {
        assert_eq!(e, data.len());
    }
    // A graph with one zero constant per supported tensor: binding succeeds
    // exactly when every tensor has a dtype smelt supports.
    let mut graph = Graph::new();
    let mut all_supported = true;
    for t in weights.tensors() {
        match t.dtype {
            Some(d) => {
                let ty = TensorType::new(d, t.shape.clone());
                graph
                    .add_const_bytes(t.name.clone(), ty, Bytes::from(vec![0u8; t.len]))
                    .expect("sizes agree");
            }
            None => all_supported = false,
        }
    }
    match bind_weights(&mut graph, &weights) {
        Ok(report) => {
            assert!(all_supported);
            for (name, t) in report.bound.iter().zip(weights.tensors()) {
                let id = graph.find(name).expect("bound constant exists");
                let ValueDef::Const(bytes) = &graph.value(id).def else {
                    panic!("not a constant")
                };
                assert_eq!(bytes.as_slice(), &data[t.offset..t.offset + t.len]);
            }
        }
        Err(_) => assert!(!all_supported),
    }
});
