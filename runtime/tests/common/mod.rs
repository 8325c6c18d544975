//! Shared helpers of the runtime's integration tests: building an executable
//! from a hand-written C model and the embedded runtime object, running it
//! natively or under QEMU, and `.npy` images encoded by hand (the tests do
//! not depend on the frontend crate).

#![allow(dead_code)] // each test binary uses a different subset

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use smelt_runtime::firmware::MemoryMap;
use smelt_runtime::{Target, runtime_object, toolchain};

/// The folder of the runtime crate.
pub fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A fresh, empty scratch folder for one test.
pub fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("smelt-runtime")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Prints a line the test harness does not capture (it only captures the
/// `print!` family), so that a skipped check is visible in `cargo test`.
pub fn notice(msg: &str) {
    let _ = writeln!(std::io::stderr(), "note: {msg}");
}

fn found(cmd: &str) -> bool {
    Command::new(cmd)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The linker: `$SMELT_LLD`, `ld.lld-19` or `ld.lld`.
pub fn lld() -> PathBuf {
    if let Some(p) = std::env::var_os("SMELT_LLD") {
        return PathBuf::from(p);
    }
    for cand in ["ld.lld-19", "ld.lld"] {
        if found(cand) {
            return PathBuf::from(cand);
        }
    }
    panic!("ld.lld (package lld-19) was not found; run scripts/setup");
}

/// clang 19, as the build script finds it.
pub fn clang() -> PathBuf {
    toolchain::find_clang().unwrap_or_else(|e| panic!("{e}"))
}

fn run_ok(cmd: &mut Command) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Compiles the C file `src` for `target` (the runtime's own flags: the same
/// float ABI) into `obj`.
pub fn compile_model(src: &Path, target: Target, obj: &Path) {
    run_ok(
        Command::new(clang())
            .args(target.clang_flags())
            .arg("-I")
            .arg(crate_dir().join("include"))
            .arg("-c")
            .arg(src)
            .arg("-o")
            .arg(obj),
    );
}

/// Links `objs` with the embedded runtime object into the executable (or,
/// for a bare-metal target, the firmware image laid out by `memory`) `exe`.
pub fn link(target: Target, objs: &[PathBuf], exe: &Path, memory: &MemoryMap) {
    let dir = exe.parent().unwrap();
    let rt = dir.join("runtime.o");
    std::fs::write(&rt, runtime_object(target)).unwrap();
    let mut cmd = Command::new(lld());
    if target.is_bare_metal() {
        let script = dir.join("link.ld");
        std::fs::write(&script, memory.linker_script()).unwrap();
        cmd.args(["--gc-sections", "-T"]).arg(&script);
    } else {
        cmd.args(["-static", "-e", "_start"]);
    }
    run_ok(cmd.arg("-o").arg(exe).args(objs).arg(&rt));
}

/// Compiles `tests/models/<model>.c` for `target` and links it with the
/// embedded runtime object into `<dir>/<model>`, a static executable or
/// firmware image.
pub fn build_exe(model: &str, target: Target, dir: &Path) -> PathBuf {
    let src = crate_dir().join("tests/models").join(format!("{model}.c"));
    let obj = dir.join(format!("{model}.o"));
    compile_model(&src, target, &obj);
    let exe = dir.join(model);
    link(target, &[obj], &exe, &MemoryMap::default());
    exe
}

/// How executables for a target run on this machine.
#[derive(Clone, Debug)]
pub enum Runner {
    /// The host's own architecture.
    Native,
    /// Under `qemu-<arch>` (user mode).
    Qemu(String),
    /// A Cortex-M4F firmware image under `qemu-system-arm -M mps2-an386`
    /// with semihosting; the arguments go through `-append`.
    Firmware,
}

/// The way to run `target`'s executables here, or `None` (with a printed
/// reason) when this machine cannot.
pub fn runner(target: Target) -> Option<Runner> {
    if target.runs_natively_on(std::env::consts::ARCH) && std::env::consts::OS == "linux" {
        return Some(Runner::Native);
    }
    let qemu = target.qemu_user().unwrap_or("qemu-system-arm");
    if !found(qemu) {
        notice(&format!(
            "skipping the {target} run: {qemu} is not installed (run scripts/setup)"
        ));
        return None;
    }
    Some(match target.qemu_user() {
        Some(q) => Runner::Qemu(q.to_string()),
        None => Runner::Firmware,
    })
}

/// The command that runs `exe` with `args` on `runner`, in `dir`. Firmware
/// gets its arguments through `-append` (words with spaces in double quotes)
/// and a 20 s limit, since a hung firmware never exits.
pub fn command(runner: &Runner, exe: &Path, args: &[&str], dir: &Path) -> Command {
    let mut cmd = match runner {
        Runner::Native => Command::new(exe),
        Runner::Qemu(q) => {
            let mut c = Command::new(q);
            c.arg(exe);
            c
        }
        Runner::Firmware => {
            let mut c = Command::new("timeout");
            c.args([
                "20",
                "qemu-system-arm",
                "-M",
                "mps2-an386",
                "-nographic",
                "-monitor",
                "none",
                "-serial",
                "none",
                "-semihosting-config",
                "enable=on,target=native",
                "-kernel",
            ])
            .arg(exe);
            let words: Vec<String> = args
                .iter()
                .map(|a| {
                    if a.contains(' ') || a.is_empty() {
                        format!("\"{a}\"")
                    } else {
                        a.to_string()
                    }
                })
                .collect();
            if !words.is_empty() {
                c.arg("-append").arg(words.join(" "));
            }
            c.current_dir(dir);
            return c;
        }
    };
    cmd.args(args).current_dir(dir);
    cmd
}

/// An executable built for one target, with the way to run it.
pub struct Exe {
    pub target: Target,
    pub path: PathBuf,
    pub runner: Runner,
    pub dir: PathBuf,
}

impl Exe {
    /// Builds `model` for `target` in a fresh folder, or `None` when this
    /// machine cannot run it.
    pub fn build(model: &str, test: &str, target: Target) -> Option<Exe> {
        let runner = runner(target)?;
        let dir = scratch(&format!("{test}-{}", target.arch()));
        let path = build_exe(model, target, &dir);
        if target.is_bare_metal() {
            // Semihosting cannot create directories; the tests' usual `-o out`
            // must exist for firmware (cli.rs checks the missing-folder error).
            std::fs::create_dir_all(dir.join("out")).unwrap();
        }
        Some(Exe {
            target,
            path,
            runner,
            dir,
        })
    }

    /// Runs the executable with `args` in its folder.
    pub fn run(&self, args: &[&str]) -> Output {
        command(&self.runner, &self.path, args, &self.dir)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.path.display()))
    }

    /// Runs and expects success; returns stdout.
    pub fn run_ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "{} {args:?} failed ({}):\n{}",
            self.target,
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// A file in the executable's folder.
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

/// An `.npy` image (version 1, the data at a multiple of 64 bytes), encoded
/// the way NumPy and `smelt run` write it.
pub fn npy(descr: &str, shape: &[u64], data: &[u8]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape = match dims.len() {
        1 => format!("({},)", dims[0]),
        _ => format!("({})", dims.join(", ")),
    };
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    let total = 6 + 4 + header.len() + 1;
    header.push_str(&" ".repeat((64 - total % 64) % 64));
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out
}

/// The data of an `.npy` image (after its header).
pub fn npy_data(image: &[u8]) -> &[u8] {
    assert_eq!(&image[..6], b"\x93NUMPY", "not an .npy image");
    let start = match image[6] {
        1 => 10 + u16::from_le_bytes([image[8], image[9]]) as usize,
        _ => 12 + u32::from_le_bytes([image[8], image[9], image[10], image[11]]) as usize,
    };
    &image[start..]
}

/// Little-endian bytes of f32s.
pub fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Little-endian bytes of f64s.
pub fn f64_bytes(v: &[f64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Little-endian bytes of i64s.
pub fn i64_bytes(v: &[i64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// A small deterministic generator (xorshift64*), so failures reproduce.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}
