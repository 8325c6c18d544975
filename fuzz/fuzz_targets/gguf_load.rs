//! Bytes → `GgufFile::from_bytes` → `summary()` → `checkpoint()`: any input
//! must give a file or an error, never a panic, a hang or an allocation in
//! proportion to a size the file merely claims. An accepted file's tensors
//! must be windows inside it, aligned and apart, of the size their type
//! says.

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use smelt_frontend::Limits;
use smelt_frontend::gguf::GgufFile;

fuzz_target!(|data: &[u8]| {
    let Ok(file) = GgufFile::from_bytes(data, Path::new("fuzz.gguf"), &Limits::default()) else {
        return;
    };
    let mut windows = Vec::new();
    for t in file.tensors() {
        let start = file.data_offset(&t.name).expect("every tensor has data");
        let bytes = file.tensor_bytes(&t.name).expect("every window is inside");
        assert_eq!(bytes.len(), t.len);
        assert_eq!(Ok(t.len), t.ty.bytes());
        assert_eq!(bytes.as_slice(), &data[start..start + t.len]);
        assert!((start - file.data_start()).is_multiple_of(file.alignment()));
        windows.push((start, start + t.len));
    }
    windows.sort();
    for w in windows.windows(2) {
        assert!(w[0].1 <= w[1].0, "overlapping tensors accepted");
    }
    let _ = file.summary();
    if let Ok(ck) = file.checkpoint() {
        for (name, w) in &ck.tensors {
            assert_eq!(Ok(w.bytes.len()), w.ty.bytes(), "{name}");
        }
    }
});
