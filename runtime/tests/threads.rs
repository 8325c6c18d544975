//! The thread pool (`c/linux/threads.c`) on a hand-written model
//! (`models/parallel.c`: y = x*2+1 over 4096 elements in a
//! `smelt_parallel_for` with 3 threads, recording each chunk's stack),
//! linked into a static executable for each Linux target and run natively or
//! under QEMU: the result, that the chunks run on distinct stacks (threads),
//! the executable's `--threads` cap, and many runs in a row (`--bench`).

mod common;

use common::{Exe, f32_bytes, npy, npy_data};
use smelt_runtime::Target;

const N: usize = 4096;

fn x() -> Vec<f32> {
    (0..N).map(|i| i as f32 * 0.37 - 500.0).collect()
}

/// The stack addresses the chunks recorded (0: the chunk did not start a call).
fn stacks(exe: &Exe) -> Vec<u64> {
    let image = std::fs::read(exe.file("out/stacks.npy")).unwrap();
    npy_data(&image)
        .chunks(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

fn check_y(exe: &Exe) {
    let want: Vec<f32> = x().iter().map(|v| v * 2.0 + 1.0).collect();
    let y = std::fs::read(exe.file("out/y.npy")).unwrap();
    assert_eq!(
        y,
        npy("<f4", &[N as u64], &f32_bytes(&want)),
        "{}",
        exe.target
    );
}

/// Distinct threads have stacks at least 64 KiB apart (each worker stack is
/// a 1 MiB mapping of its own).
fn distinct(a: u64, b: u64) -> bool {
    a.abs_diff(b) >= 65536
}

#[test]
fn parallel_for_splits_over_threads_on_every_linux_target() {
    for t in [
        Target::X86_64Linux,
        Target::Aarch64Linux,
        Target::Armv7Linux,
    ] {
        let Some(exe) = Exe::build("parallel", "threads", t) else {
            continue;
        };
        std::fs::write(exe.file("x.npy"), npy("<f4", &[N as u64], &f32_bytes(&x()))).unwrap();

        exe.run_ok(&["-i", "x=x.npy", "-o", "out"]);
        check_y(&exe);
        let s = stacks(&exe);
        assert!(s.iter().all(|&a| a != 0), "{t}: every chunk ran: {s:x?}");
        // Chunks go to whichever thread claims them first; the model's
        // first call waits for a second one, so at least one goes to a
        // worker.
        assert!(
            distinct(s[0], s[1]) || distinct(s[0], s[2]) || distinct(s[1], s[2]),
            "{t}: the chunks ran on more than one stack: {s:x?}"
        );

        // --threads 2: chunks [0, 2048) and [2048, 4096), recorded in slots 0 and 2.
        exe.run_ok(&["-i", "x=x.npy", "-o", "out", "--threads", "2"]);
        check_y(&exe);
        let s = stacks(&exe);
        assert!(
            s[0] != 0 && s[1] == 0 && s[2] != 0,
            "{t}: two chunks: {s:x?}"
        );

        // --threads 1: one call on the main thread.
        exe.run_ok(&["-i", "x=x.npy", "-o", "out", "--threads", "1"]);
        check_y(&exe);
        let s = stacks(&exe);
        assert!(
            s[0] != 0 && s[1] == 0 && s[2] == 0,
            "{t}: one chunk: {s:x?}"
        );

        // Many jobs in a row through the same workers (dispatch and the
        // completion barrier), then the outputs of the last one.
        let out = exe.run_ok(&["-i", "x=x.npy", "-o", "out", "--bench", "50"]);
        assert!(out.contains("median"), "{t}: {out}");
        check_y(&exe);

        let bad = exe.run(&["-i", "x=x.npy", "--threads", "0"]);
        assert_eq!(bad.status.code(), Some(2), "{t}");
        assert_eq!(
            String::from_utf8_lossy(&bad.stderr),
            "parallel: error: --threads takes a thread count from 1 to 256, got '0'\n"
        );
    }
}
