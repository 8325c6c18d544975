//! A STREAM-like read-bandwidth probe: the roofline the GEMV benchmark
//! (`bench/gemv.py`) compares weight streaming against.
//!
//! For each working-set size given (bytes, K/M/G suffixes) it fills a
//! buffer of `u64`s, then times full passes that sum it (the compiler
//! vectorises the loop with several accumulators, so the sum is bound by
//! the loads) on 1 and on `--threads N` threads, each thread summing its
//! own contiguous slice, and prints one line per size and thread count:
//! `bandwidth: SIZE bytes, T threads: median G GB/s, max G GB/s over R
//! passes`. Sizes up to the last-level cache measure the cache; 1 GiB
//! measures DRAM.
//!
//! Build and run (no Cargo, no dependencies):
//! `rustc -C opt-level=3 -C target-cpu=native bench/bandwidth.rs -o target/bandwidth
//!  && target/bandwidth 1G 16M`.

use std::time::Instant;

fn parse_size(s: &str) -> Option<usize> {
    let (num, mul) = match s.as_bytes().last()? {
        b'K' | b'k' => (&s[..s.len() - 1], 1 << 10),
        b'M' | b'm' => (&s[..s.len() - 1], 1 << 20),
        b'G' | b'g' => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    num.parse::<usize>().ok().map(|n| n * mul)
}

/// The wrapping sum of `a`: integer addition is associative, so the
/// compiler vectorises it with several vector accumulators.
#[inline(never)]
fn sum(a: &[u64]) -> u64 {
    a.iter().fold(0u64, |s, v| s.wrapping_add(*v))
}

/// Seconds for one pass over `a` on `threads` threads.
fn pass(a: &[u64], threads: usize) -> (f64, u64) {
    let t0 = Instant::now();
    let total = if threads <= 1 {
        sum(a)
    } else {
        let per = a.len().div_ceil(threads);
        std::thread::scope(|s| {
            let hs: Vec<_> = a.chunks(per).map(|c| s.spawn(move || sum(c))).collect();
            hs.into_iter()
                .map(|h| h.join().unwrap_or(0))
                .fold(0u64, u64::wrapping_add)
        })
    };
    (t0.elapsed().as_secs_f64(), total)
}

fn main() {
    let mut sizes = Vec::new();
    let mut threads = 2usize;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "--threads" {
            threads = args.next().and_then(|t| t.parse().ok()).unwrap_or(2);
        } else if let Some(n) = parse_size(&a) {
            sizes.push(n);
        } else {
            eprintln!("usage: bandwidth [--threads N] SIZE... (bytes, K/M/G suffixes)");
            std::process::exit(2);
        }
    }
    if sizes.is_empty() {
        sizes.push(1 << 30);
    }
    let mut checksum = 0u64;
    for &bytes in &sizes {
        let a: Vec<u64> = (0..bytes / 8).map(|k| k as u64 * 0x9e37_79b9).collect();
        for t in [1, threads] {
            // At least 2 GB read and 5 passes per measurement, after one warm-up.
            let reps = (2usize << 30).div_ceil(bytes).clamp(5, 2000);
            checksum ^= pass(&a, t).1;
            let mut gbs: Vec<f64> = (0..reps)
                .map(|_| {
                    let (s, c) = pass(&a, t);
                    checksum ^= c;
                    bytes as f64 / s / 1e9
                })
                .collect();
            gbs.sort_by(f64::total_cmp);
            println!(
                "bandwidth: {bytes} bytes, {t} threads: median {:.2} GB/s, max {:.2} GB/s over {reps} passes",
                gbs[gbs.len() / 2],
                gbs[gbs.len() - 1]
            );
            if t == threads {
                break;
            }
        }
    }
    // Printed so the sums cannot be optimised away.
    eprintln!("checksum {checksum:x}");
}
