//! The runtime's command line on a hand-written model (`models/simple.c`:
//! x f32[2,3], ids i64[4] -> y = x*2+1, z = ids reversed), linked into a
//! static executable for each target and run natively or under QEMU: output
//! files byte for byte, summaries, `.npz` input, usage, `--bench`, and a
//! one-line error with exit status 1 for each kind of bad input.

mod common;

use common::{Exe, f32_bytes, i64_bytes, npy, npy_data};
use smelt_runtime::Target;

const X: [f32; 6] = [-2.5, -1.5, 0.0, 0.25, 1e-8, 3.0e38];
const IDS: [i64; 4] = [1, -2, i64::MAX, i64::MIN];

fn y_expected() -> Vec<f32> {
    X.iter().map(|x| x * 2.0 + 1.0).collect()
}

/// Builds the simple model for every target this machine can run and
/// writes the standard inputs beside it.
fn each_target(test: &str, f: impl Fn(&Exe)) {
    for t in Target::ALL {
        let Some(exe) = Exe::build("simple", test, t) else {
            continue;
        };
        std::fs::write(exe.file("x.npy"), npy("<f4", &[2, 3], &f32_bytes(&X))).unwrap();
        std::fs::write(exe.file("ids.npy"), npy("<i8", &[4], &i64_bytes(&IDS))).unwrap();
        f(&exe);
    }
}

#[test]
fn writes_outputs_byte_for_byte() {
    each_target("outputs", |exe| {
        if exe.target.is_bare_metal() {
            // Semihosting cannot create directories: firmware writes into
            // existing ones (a missing one is a clear error, tested below).
            let err = exe.run(&["-i", "x=x.npy", "-i", "ids=ids.npy", "-o", "missing"]);
            assert_eq!(err.status.code(), Some(1));
            assert_eq!(
                String::from_utf8_lossy(&err.stderr),
                "simple: error: cannot write missing/y.npy: no such file or directory\n"
            );
            std::fs::create_dir_all(exe.file("out/nested")).unwrap();
        }
        let stdout = exe.run_ok(&[
            "--input",
            "x=x.npy",
            "-i",
            "ids=ids.npy",
            "-o",
            "out/nested",
        ]);
        assert_eq!(stdout, "", "{}: nothing printed with -o", exe.target);
        let y = std::fs::read(exe.file("out/nested/y.npy")).unwrap();
        assert_eq!(
            y,
            npy("<f4", &[2, 3], &f32_bytes(&y_expected())),
            "{}",
            exe.target
        );
        assert_eq!(
            y.len() - npy_data(&y).len(),
            128,
            "data starts at a 64-byte boundary"
        );
        let mut rev = IDS;
        rev.reverse();
        let z = std::fs::read(exe.file("out/nested/z.npy")).unwrap();
        assert_eq!(z, npy("<i8", &[4], &i64_bytes(&rev)), "{}", exe.target);
        // An existing directory is fine, and the flag may be spelt with '='.
        exe.run_ok(&[
            "--input=x=x.npy",
            "--input=ids=ids.npy",
            "--output-dir=out/nested",
        ]);
    });
}

#[test]
fn prints_summaries_without_output_dir() {
    each_target("summary", |exe| {
        let stdout = exe.run_ok(&["--input", "x=x.npy", "--input", "ids=ids.npy"]);
        let lines: Vec<&str> = stdout.lines().collect();
        assert_eq!(lines.len(), 2, "{}: {stdout}", exe.target);
        assert_eq!(
            lines[0],
            "y: f32[2, 3] min -4.000000 max inf mean inf \
             [-4.000000, -2.000000, 1.000000, 1.500000, 1.000000, inf]",
            "{}",
            exe.target
        );
        assert_eq!(
            lines[1],
            format!(
                "z: i64[4] min {} max {} mean -0.250000 [{}, {}, -2, 1]",
                i64::MIN,
                i64::MAX,
                i64::MIN,
                i64::MAX
            ),
            "{}",
            exe.target
        );
    });
}

#[test]
fn usage_lists_the_signature() {
    each_target("usage", |exe| {
        for args in [&[][..], &["--help"][..]] {
            let stdout = exe.run_ok(args);
            for want in [
                "usage: simple --input NAME=FILE.npy",
                "the compiled model simple",
                "inputs:\n  x: f32[2, 3]\n  ids: i64[4]\n",
                "outputs:\n  y: f32[2, 3]\n  z: i64[4]\n",
                "--bench N",
                "-o, --output-dir DIR",
            ] {
                assert!(
                    stdout.contains(want),
                    "{}: no '{want}' in:\n{stdout}",
                    exe.target
                );
            }
        }
    });
}

#[test]
fn bench_prints_min_and_median() {
    each_target("bench", |exe| {
        let stdout = exe.run_ok(&["-i", "x=x.npy", "-i", "ids=ids.npy", "--bench", "5"]);
        let line = stdout.lines().next().unwrap();
        assert!(
            line.starts_with("bench: 5 runs after 1 warm-up: min ")
                && line.contains(", median ")
                && line.ends_with(" per run"),
            "{}: {line}",
            exe.target
        );
        // The outputs are still reported after benchmarking.
        assert!(stdout.contains("\ny: f32[2, 3]"), "{stdout}");
    });
}

/// A zip archive of stored (uncompressed) entries, as `np.savez` writes them
/// (minus the zip64 extra fields); `method` lets a test fake a compressed one.
fn zip(entries: &[(&str, Vec<u8>)], method: u16) -> Vec<u8> {
    fn crc32(data: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in data {
            crc ^= b as u32;
            for _ in 0..8 {
                crc = (crc >> 1) ^ (0xedb8_8320 & (crc & 1).wrapping_neg());
            }
        }
        !crc
    }
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data) in entries {
        let offset = out.len() as u32;
        let crc = crc32(data);
        let len = data.len() as u32;
        let fields = |v: &mut Vec<u8>| {
            v.extend_from_slice(&[20, 0, 0, 0]); // version needed, flags
            v.extend_from_slice(&method.to_le_bytes());
            v.extend_from_slice(&[0, 0, 0x21, 0]); // time, date
            v.extend_from_slice(&crc.to_le_bytes());
            v.extend_from_slice(&len.to_le_bytes());
            v.extend_from_slice(&len.to_le_bytes());
            v.extend_from_slice(&(name.len() as u16).to_le_bytes());
            v.extend_from_slice(&[0, 0]); // extra length
        };
        out.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        fields(&mut out);
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(data);
        central.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
        central.extend_from_slice(&[20, 0]); // version made by
        fields(&mut central);
        central.extend_from_slice(&[0; 8]); // comment length, disk, attributes
        central.extend_from_slice(&[0; 2]);
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(name.as_bytes());
    }
    let cd_offset = out.len() as u32;
    out.extend_from_slice(&central);
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    let n = (entries.len() as u16).to_le_bytes();
    out.extend_from_slice(&[n[0], n[1], n[0], n[1]]);
    out.extend_from_slice(&(central.len() as u32).to_le_bytes());
    out.extend_from_slice(&cd_offset.to_le_bytes());
    out.extend_from_slice(&[0, 0]);
    out
}

#[test]
fn reads_uncompressed_npz_and_refuses_compressed() {
    each_target("npz", |exe| {
        let x = npy("<f4", &[2, 3], &f32_bytes(&X));
        let ids = npy("<i8", &[4], &i64_bytes(&IDS));
        let stored = zip(&[("x.npy", x.clone()), ("ids.npy", ids.clone())], 0);
        std::fs::write(exe.file("in.npz"), stored).unwrap();
        std::fs::create_dir_all(exe.file("out")).unwrap(); // for firmware
        exe.run_ok(&["--input", "in.npz", "-o", "out"]);
        let y = std::fs::read(exe.file("out/y.npy")).unwrap();
        assert_eq!(npy_data(&y), f32_bytes(&y_expected()), "{}", exe.target);

        // One input from an archive, the other from a file.
        std::fs::write(exe.file("x.npz"), zip(&[("x.npy", x.clone())], 0)).unwrap();
        exe.run_ok(&["--input", "x.npz", "--input", "ids=ids.npy"]);

        std::fs::write(exe.file("deflated.npz"), zip(&[("x.npy", x)], 8)).unwrap();
        let err = expect_error(exe, &["--input", "deflated.npz", "--input", "ids=ids.npy"]);
        assert!(
            err.contains("deflated.npz: entry 'x' is compressed") && err.contains("np.savez"),
            "{err}"
        );
    });
}

/// Runs expecting exit status 1 and one `simple: error: …` line; returns it.
fn expect_error(exe: &Exe, args: &[&str]) -> String {
    let out = exe.run(args);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{} {args:?}: {stderr}",
        exe.target
    );
    assert!(
        stderr.starts_with("simple: error: ")
            && stderr.ends_with('\n')
            && stderr.lines().count() == 1,
        "{} {args:?}: not one error line: {stderr:?}",
        exe.target
    );
    assert!(out.stdout.is_empty(), "{args:?} printed to stdout");
    stderr.trim_end().to_string()
}

/// `image` with its header's `fortran_order` set to True (same length).
fn fortran(image: &[u8]) -> Vec<u8> {
    let (from, to) = (b"'fortran_order': False", b"'fortran_order': True ");
    let at = image.windows(from.len()).position(|w| w == from).unwrap();
    let mut out = image.to_vec();
    out[at..at + to.len()].copy_from_slice(to);
    out
}

#[test]
fn bad_input_files_fail_with_one_clear_line() {
    let x = f32_bytes(&X);
    // The file given as x=x_bad.npy, and the message after "simple: error: ".
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            npy("<i4", &[2, 3], &[0; 24]),
            "input 'x': x_bad.npy holds i32[2, 3] but the model takes f32[2, 3]",
        ),
        (
            npy("<f4", &[3, 2], &x),
            "input 'x': x_bad.npy holds f32[3, 2] but the model takes f32[2, 3]",
        ),
        (
            npy("<f4", &[6], &x),
            "input 'x': x_bad.npy holds f32[6] but the model takes f32[2, 3]",
        ),
        (
            npy("<f4", &[], &x[..4]),
            "input 'x': x_bad.npy holds f32[] but the model takes f32[2, 3]",
        ),
        (
            npy("<f4", &[2, 3], &x[..20]),
            "input 'x': x_bad.npy holds 20 data bytes but f32[2, 3] needs 24",
        ),
        (
            npy("<f4", &[2, 3], &[x.as_slice(), &[0; 4]].concat()),
            "input 'x': x_bad.npy holds more data than f32[2, 3] needs (24 bytes)",
        ),
        (
            npy(">f4", &[2, 3], &x),
            "input 'x': x_bad.npy is big-endian ('>f4'); save it little-endian (a.astype('<f4'))",
        ),
        (
            npy("<c8", &[2, 3], &[0; 48]),
            "input 'x': x_bad.npy holds dtype '<c8', which smelt does not read; \
             the model takes f32[2, 3] ('<f4')",
        ),
        (
            fortran(&npy("<f4", &[2, 3], &x)),
            "input 'x': x_bad.npy is in Fortran order; save a C-order array (np.ascontiguousarray)",
        ),
        (
            b"PK\x03\x04 not an npy file".to_vec(),
            "input 'x': x_bad.npy is not a .npy file (bad magic)",
        ),
        (
            npy("<f4", &[2, 3], &x)[..40].to_vec(),
            "input 'x': x_bad.npy has a truncated .npy header",
        ),
    ];
    each_target("bad-files", |exe| {
        for (image, want) in &cases {
            std::fs::write(exe.file("x_bad.npy"), image).unwrap();
            let err = expect_error(exe, &["--input", "x=x_bad.npy", "--input", "ids=ids.npy"]);
            assert_eq!(err, format!("simple: error: {want}"), "{}", exe.target);
        }
        // Fortran order is only a different layout with two dims above 1.
        std::fs::write(
            exe.file("ids_f.npy"),
            fortran(&npy("<i8", &[4], &i64_bytes(&IDS))),
        )
        .unwrap();
        exe.run_ok(&["--input", "x=x.npy", "--input", "ids=ids_f.npy"]);
    });
}

#[test]
fn bad_command_lines_fail_with_one_clear_line() {
    // (arguments, message after "simple: error: ")
    let cases: &[(&[&str], &str)] = &[
        (
            &["--input", "x=x.npy"],
            "no value for input(s) ids; give --input NAME=FILE.npy",
        ),
        (
            &["-o", "out"],
            "no value for input(s) x, ids; give --input NAME=FILE.npy",
        ),
        (
            &[
                "--input",
                "x=x.npy",
                "--input",
                "ids=ids.npy",
                "--input",
                "w=x.npy",
            ],
            "the model has no input 'w' (its inputs: x, ids)",
        ),
        (
            &[
                "--input",
                "x=x.npy",
                "--input",
                "x=x.npy",
                "--input",
                "ids=ids.npy",
            ],
            "input 'x' is given twice",
        ),
        (
            &["--input", "x=missing.npy", "--input", "ids=ids.npy"],
            "input 'x': cannot open missing.npy: no such file or directory",
        ),
        (
            &["--input", "x=.", "--input", "ids=ids.npy"],
            "input 'x': cannot read .: is a directory",
        ),
        (
            &["--input", "missing.npz"],
            "cannot open missing.npz: no such file or directory",
        ),
        (
            &[
                "--input",
                "x=x.npy",
                "--input",
                "ids=ids.npy",
                "-o",
                "x.npy/sub",
            ],
            "cannot create the output directory x.npy/sub: not a directory",
        ),
    ];
    each_target("bad-args", |exe| {
        for (args, want) in cases {
            // Semihosting hosts read a directory as an empty file and cannot
            // create directories, so two messages differ on firmware.
            let want = match *want {
                "input 'x': cannot read .: is a directory" if exe.target.is_bare_metal() => {
                    "input 'x': . is not a .npy file (bad magic)"
                }
                "cannot create the output directory x.npy/sub: not a directory"
                    if exe.target.is_bare_metal() =>
                {
                    "cannot write x.npy/sub/y.npy: not a directory"
                }
                w => w,
            };
            let err = expect_error(exe, args);
            assert_eq!(
                err,
                format!("simple: error: {want}"),
                "{} {args:?}",
                exe.target
            );
        }
        // An output path past the formatting buffer is refused, not cut to
        // its tail (which once wrote ./y.npy outside -o). Semihosting's
        // command line is itself 4096 bytes, so firmware cannot be given one.
        if !exe.target.is_bare_metal() {
            let long = "d".repeat(4100);
            let err = expect_error(exe, &["-i", "x=x.npy", "-i", "ids=ids.npy", "-o", &long]);
            assert_eq!(
                err, "simple: error: the output path for 'y' is longer than 4096 bytes",
                "{}",
                exe.target
            );
            for stray in ["y.npy", ".npy", "z.npy"] {
                assert!(!exe.file(stray).exists(), "{}: wrote {stray}", exe.target);
            }
        }
        // Malformed command lines exit with 2, like smelt's own.
        for args in [
            &["--frobnicate"][..],
            &["--input"],
            &["--bench", "0"],
            &["--input", "x.npy"],
        ] {
            let out = exe.run(args);
            assert_eq!(out.status.code(), Some(2), "{} {args:?}", exe.target);
            let stderr = String::from_utf8(out.stderr).unwrap();
            assert!(stderr.starts_with("simple: error: "), "{stderr}");
        }
    });
}
