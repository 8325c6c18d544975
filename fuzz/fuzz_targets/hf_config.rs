//! Bytes → JSON → `hf::parse_config`: any `config.json` must give the
//! hyper-parameters or an error naming the key, never a panic; accepted
//! hyper-parameters must give the checkpoint's expected tensor shapes or an
//! error (sizes are checked, so no product overflows).

#![no_main]

use libfuzzer_sys::fuzz_target;
use smelt_frontend::hf::parse_config;
use smelt_frontend::llm::expected_shapes;

fuzz_target!(|data: &[u8]| {
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    if let Ok(config) = parse_config(&json) {
        let _ = expected_shapes(&config);
    }
});
