//! The `.npy` header grammar, the same in both readers: `smelt run`'s
//! (`smelt_frontend::npy`) and the compiled program's (`runtime/c/npy.c`).
//! Headers NumPy accepts (quote styles, key order, a trailing comma,
//! Python 2's `12L`, Fortran order of one dim) are read by both; headers
//! NumPy refuses (`(4,,3)`, `'fortran_order': Tru`, `(12)`, a leading zero, a
//! sign, a missing or extra key, unquoted or trailing text, …) are refused
//! by both, each saying the header is malformed. The lists were checked
//! against `np.load` (NumPy 2.4). And `.npz` archives: every entry's size is
//! checked from the directory before any entry is read.

use std::io::Write;
use std::path::Path;

use smelt::{Backend, CompileOptions, Emit};
use smelt_frontend::Limits;
use smelt_frontend::npy::{decode, read_npz};

#[path = "common/targets.rs"]
mod targets;

/// Headers NumPy reads as an f32 array of shape (12,).
const GOOD: [&str; 5] = [
    "{'descr': '<f4', 'fortran_order': False, 'shape': (12,), }",
    "{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": (12,)}",
    "{'shape': (12,), 'fortran_order': False, 'descr': '<f4'}",
    "{'descr':'<f4','fortran_order':False,'shape':(12L,)}",
    "{'descr': '<f4', 'fortran_order': True, 'shape': (12,)}",
];

/// Headers NumPy refuses.
const BAD: [&str; 14] = [
    "{'descr': '<f4', 'fortran_order': False, 'shape': (4,,3)}",
    "{'descr': '<f4', 'fortran_order': Tru, 'shape': (12,)}",
    "{'descr': '<f4', 'fortran_order': False, 'shape': (12)}",
    "{'descr': '<f4', 'fortran_order': False, 'shape': (012,)}",
    "{'descr': '<f4', 'fortran_order': False, 'shape': (-12,)}",
    "{'descr': '<f4', 'shape': (12,)}",
    "{'descr': '<f4', 'fortran_order': False, 'shape': (12,), 'extra': 1}",
    "{'descr': <f4, 'fortran_order': False, 'shape': (12,)}",
    "{'descr': '<f4', 'fortran_order': False, 'shape': (12,)} x",
    "{'descr': '<f4', 'fortran_order': false, 'shape': (12,)}",
    "['descr', '<f4']",
    "{'descr': '<f4', 'fortran_order': False, 'shape': (12,)",
    "{'descr': '<f4', 'fortran_order': False, 'shape': [12]}",
    "{'descr': '<f4', 'fortran_order': 0, 'shape': (12,)}",
];

/// A version-1 `.npy` image with header `h` (padded as NumPy pads) and the
/// f32 values 0 to 11.
fn npy(h: &str) -> Vec<u8> {
    let total = 10 + h.len() + 1;
    let mut header = h.to_string();
    header.push_str(&" ".repeat((64 - total % 64) % 64));
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for v in 0..12 {
        out.extend_from_slice(&(v as f32).to_le_bytes());
    }
    out
}

/// Compiles `y = Relu(x)` over f32[12] for x86_64 into the executable `exe`.
fn compile_relu(exe: &Path) {
    let g = smelt_ir::parse("graph(%x: f32[12]) -> (%y) {\n  %y: f32[12] = Relu(%x)\n}\n").unwrap();
    let opts = CompileOptions::new("x86_64-unknown-linux-gnu", Backend::Cranelift, exe)
        .unwrap()
        .emit(Emit::Exe);
    smelt::compile(&g, &opts).unwrap();
}

#[test]
fn smelt_run_reads_what_numpy_reads() {
    let path = Path::new("x.npy");
    for h in GOOD {
        let t = decode(&npy(h), path, &Limits::default()).unwrap_or_else(|e| panic!("{h}: {e}"));
        assert_eq!(t.shape(), &[12], "{h}");
        assert_eq!(t.to_f64_vec(), (0..12).map(f64::from).collect::<Vec<_>>());
    }
    for h in BAD {
        let e = decode(&npy(h), path, &Limits::default()).expect_err(h);
        assert!(e.to_string().contains("malformed .npy header"), "{h}: {e}");
    }
}

#[test]
fn a_compiled_program_reads_what_numpy_reads() {
    let dir = targets::scratch("npy_headers", "exe");
    let exe = dir.join("model");
    compile_relu(&exe);
    let run = |h: &str| {
        std::fs::write(dir.join("x.npy"), npy(h)).unwrap();
        let _ = std::fs::remove_dir_all(dir.join("out"));
        std::fs::create_dir_all(dir.join("out")).unwrap();
        std::process::Command::new(&exe)
            .args(["--input", "x=x.npy", "-o", "out"])
            .current_dir(&dir)
            .output()
            .unwrap()
    };
    for h in GOOD {
        targets::ok(run(h), h);
        let y = smelt_frontend::npy::read_npy(&dir.join("out/y.npy"), &Limits::default()).unwrap();
        assert_eq!(y.to_f64_vec(), (0..12).map(f64::from).collect::<Vec<_>>());
    }
    for h in BAD {
        let out = run(h);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains("malformed .npy header"),
            "{h}: {err}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn npz_entry_sizes_are_checked_before_any_entry_is_read() {
    let dir = targets::scratch("npy_headers", "npz");
    let path = dir.join("in.npz");
    let mut z = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
    let stored =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    // The first entry is not a .npy at all; the second claims 2 GiB.
    z.start_file("a.npy", stored).unwrap();
    z.write_all(b"not an array").unwrap();
    z.start_file("b.npy", stored).unwrap();
    z.write_all(&npy(GOOD[0])).unwrap();
    z.finish().unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    let cd = (0..bytes.len() - 4)
        .rev()
        .find(|&i| bytes[i..i + 4] == [0x50, 0x4b, 0x01, 0x02])
        .expect("the last directory entry");
    for field in [20, 24] {
        bytes[cd + field..cd + field + 4].copy_from_slice(&0x7fff_ffffu32.to_le_bytes());
    }
    std::fs::write(&path, bytes).unwrap();
    let mut limits = Limits::default();
    limits.set("max-tensor-bytes", 1024).unwrap();
    let e = read_npz(&path, &limits).expect_err("a 2 GiB entry");
    assert!(
        e.to_string().contains("entry 'b.npy'") && e.to_string().contains("max-tensor-bytes"),
        "{e}"
    );
    // The compiled program's reader checks the directory against the file
    // before reading any entry too.
    let exe = dir.join("model");
    compile_relu(&exe);
    let out = std::process::Command::new(&exe)
        .args(["--input", "in.npz", "-o", "out"])
        .current_dir(&dir)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("entry 'b' is truncated"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
