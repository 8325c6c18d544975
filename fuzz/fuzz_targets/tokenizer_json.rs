//! Bytes → JSON → `tokenizer::hf::from_json` → the runtime's tokenizer
//! table and blob: any `tokenizer.json` must give a vocabulary or a typed
//! error, never a panic or an allocation out of proportion to its size.

#![no_main]

use libfuzzer_sys::fuzz_target;
use smelt_frontend::tokenizer::{blob, hf};

fuzz_target!(|data: &[u8]| {
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    if let Ok(vocab) = hf::from_json(&json, None, "tokenizer.json") {
        let _ = blob::write(&vocab);
    }
});
