//! Bytes → `npy::decode`: any input must give a tensor or an error, never a
//! panic or an allocation in proportion to a shape the header merely
//! claims. An accepted tensor must survive `encode` → `decode` unchanged.

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use smelt_frontend::Limits;
use smelt_frontend::npy::{decode, encode};

fuzz_target!(|data: &[u8]| {
    let path = Path::new("fuzz.npy");
    let limits = Limits::default();
    if let Ok(t) = decode(data, path, &limits) {
        let again = decode(&encode(&t), path, &limits).expect("an encoded tensor decodes");
        assert_eq!(again.shape(), t.shape());
        assert_eq!(again.dtype(), t.dtype());
        assert_eq!(again.to_le_bytes(), t.to_le_bytes());
    }
});
