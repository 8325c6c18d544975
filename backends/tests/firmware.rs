//! Firmware linking (`artifact::firmware`) with stand-in model objects: a
//! hand-written C model (`runtime/tests/models/simple.c`) compiled for the
//! Cortex-M4F links into an image that runs under qemu-system-arm and gives
//! the right outputs; a model whose weights exceed flash and one whose run
//! exceeds RAM fail with the needed and available sizes.

use std::path::{Path, PathBuf};
use std::process::Command;

use smelt_backends::artifact::{ArtifactError, find_linker, firmware};
use smelt_runtime::firmware::MemoryMap;
use smelt_runtime::{Target, runtime_object, toolchain};

const T: Target = Target::ThumbV7emNone;

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("smelt-firmware")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs `cmd`, panicking with its standard error unless it succeeds.
fn run_ok(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Compiles C source `src` (a file or text) for the M4 into `dir/model.o`
/// and writes the runtime beside it.
fn objects(dir: &Path, src: &Path) -> (PathBuf, PathBuf) {
    let clang = toolchain::find_clang().unwrap();
    let include = Path::new(env!("CARGO_MANIFEST_DIR")).join("../runtime/include");
    let obj = dir.join("model.o");
    run_ok(
        Command::new(clang)
            .args(T.clang_flags())
            .arg("-I")
            .arg(include)
            .arg("-c")
            .arg(src)
            .arg("-o")
            .arg(&obj),
    );
    let rt = dir.join("runtime.o");
    std::fs::write(&rt, runtime_object(T)).unwrap();
    (obj, rt)
}

fn link(
    dir: &Path,
    src: &Path,
    map: &MemoryMap,
    heap: u64,
) -> Result<firmware::Usage, ArtifactError> {
    let (obj, rt) = objects(dir, src);
    let (ld, pre) = find_linker(None).unwrap();
    firmware::link(
        &ld,
        &pre,
        &[&obj, &rt],
        &dir.join("fw.elf"),
        dir,
        map,
        heap,
        &[],
    )
}

fn simple_model() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../runtime/tests/models/simple.c")
}

fn npy_f32(shape: &str, v: &[f32]) -> Vec<u8> {
    let mut h = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}");
    h.push_str(&" ".repeat((64 - (h.len() + 11) % 64) % 64));
    h.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(h.len() as u16).to_le_bytes());
    out.extend_from_slice(h.as_bytes());
    out.extend(v.iter().flat_map(|x| x.to_le_bytes()));
    out
}

#[test]
fn links_runs_and_reports_use() {
    let dir = scratch("simple");
    let usage = link(&dir, &simple_model(), &MemoryMap::default(), 4096).unwrap();
    // The runtime with the soft double helpers is ~20 KiB; the model is tiny.
    assert!((8 << 10..64 << 10).contains(&usage.flash_bytes), "{usage}");
    assert_eq!(
        usage.ram_bytes(),
        usage.ram_static_bytes + 4096 + (64 << 10)
    );
    assert!(usage.to_string().starts_with("flash "), "{usage}");
    let found = Command::new("qemu-system-arm").arg("--version").output();
    if !found.is_ok_and(|o| o.status.success()) {
        eprintln!("note: qemu-system-arm is not installed; the image was not run");
        return;
    }
    let x: [f32; 6] = [1.0, -2.0, 0.5, 3.25, -0.0, 7.0];
    std::fs::write(dir.join("x.npy"), npy_f32("(2, 3)", &x)).unwrap();
    let ids: Vec<u8> = [5i64, 6, 7, 8]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let mut ids_npy = npy_f32("(4,)", &[]);
    // Same header layout with the i64 descr: patch '<f4' to '<i8'.
    let at = ids_npy.windows(3).position(|w| w == b"<f4").unwrap();
    ids_npy[at..at + 3].copy_from_slice(b"<i8");
    ids_npy.extend_from_slice(&ids);
    std::fs::write(dir.join("ids.npy"), ids_npy).unwrap();
    std::fs::create_dir_all(dir.join("out")).unwrap();
    run_ok(
        Command::new("timeout")
            .args(["20", "qemu-system-arm", "-M", "mps2-an386", "-nographic"])
            .args(["-monitor", "none", "-serial", "none"])
            .args([
                "-semihosting-config",
                "enable=on,target=native",
                "-kernel",
                "fw.elf",
            ])
            .args(["-append", "--input x=x.npy --input ids=ids.npy -o out"])
            .current_dir(&dir),
    );
    let y = std::fs::read(dir.join("out/y.npy")).unwrap();
    let want: Vec<u8> = x
        .iter()
        .flat_map(|v| (v * 2.0 + 1.0).to_le_bytes())
        .collect();
    assert_eq!(&y[y.len() - 24..], &want[..]);
}

#[test]
fn weights_beyond_flash_fail_with_sizes() {
    let dir = scratch("big-weights");
    // 256 KiB of constant weights the model reads.
    let src = dir.join("big.c");
    std::fs::write(
        &src,
        "#include \"smelt_model.h\"\n\
         static const float w[65536] = {1.5f};\n\
         static const uint64_t d[1] = {1};\n\
         static const smelt_tensor_info io[1] = {{\"x\", SMELT_DTYPE_F32, 1, d, 4}};\n\
         const smelt_model_info smelt_model = {SMELT_ABI_VERSION, 1, 1, io, io, 0, 1, \"big\", 0, 1, 0, 0};\n\
         void smelt_model_init(void *state) { (void)state; }\n\
         int32_t smelt_model_run(const void *const *in, void *const *out, void *arena, void *state,\n\
             smelt_fault *fault) {\n\
             (void)arena; (void)state; (void)fault; float s = 0; for (int i = 0; i < 65536; i++) s += w[i];\n\
             *(float *)out[0] = *(const float *)in[0] + s; return 0; }\n",
    )
    .unwrap();
    let map: MemoryMap = "flash=128K".parse().unwrap();
    let e = link(&dir, &src, &map, 1024).unwrap_err().to_string();
    assert!(
        e.contains("flash: needs") && e.contains("has 131072") && e.contains("--memory"),
        "{e}"
    );
    let needed: u64 = e
        .split("flash: needs ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!((256 << 10..320 << 10).contains(&needed), "{e}");
    assert!(!dir.join("fw.elf").exists());
    // With enough flash it links.
    let usage = link(&dir, &src, &"flash=512K".parse().unwrap(), 1024).unwrap();
    assert_eq!(usage.flash_bytes, needed);
}

#[test]
fn a_run_beyond_ram_fails_with_sizes() {
    let dir = scratch("big-ram");
    let map: MemoryMap = "ram=256K".parse().unwrap();
    let e = link(&dir, &simple_model(), &map, 300 << 10)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("RAM: needs")
            && e.contains("307200 for inputs, outputs and the arena")
            && e.contains("has 262144"),
        "{e}"
    );
    assert!(!dir.join("fw.elf").exists());
}
