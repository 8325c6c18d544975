//! The golden-file check shared by the golden tests and the file tests:
//! compare `got` with the expected text, or write it when blessing
//! (`UPDATE_GOLDEN=1` or `SMELT_BLESS=1`); a mismatch shows a unified diff.

// Each test binary includes this file and uses a part of it.
#![allow(dead_code)]

use std::path::Path;

/// True when the expected outputs are to be rewritten instead of checked.
pub fn blessing() -> bool {
    std::env::var_os("UPDATE_GOLDEN").is_some() || std::env::var_os("SMELT_BLESS").is_some()
}

/// Panics with a unified diff when `got` differs from the file at `path`
/// (missing file = empty); when blessing, writes `got` instead.
pub fn assert_golden(path: &Path, got: &str) {
    if blessing() {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(path, got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(path).unwrap_or_default();
    if got == want {
        return;
    }
    panic!(
        "{} differs (UPDATE_GOLDEN=1 to bless):\n{}",
        path.display(),
        unified_diff(&want, got)
    );
}

/// A unified diff (`-` expected, `+` got) with three lines of context.
pub fn unified_diff(want: &str, got: &str) -> String {
    let (a, b): (Vec<&str>, Vec<&str>) = (want.lines().collect(), got.lines().collect());
    // Longest common subsequence table, from the ends.
    let mut lcs = vec![vec![0u32; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    // The edit script: (' ' | '-' | '+', line in a, line in b).
    let mut ops: Vec<(char, usize, usize)> = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            ops.push((' ', i, j));
            i += 1;
            j += 1;
        } else if j < b.len() && (i == a.len() || lcs[i][j + 1] >= lcs[i + 1][j]) {
            ops.push(('+', i, j));
            j += 1;
        } else {
            ops.push(('-', i, j));
            i += 1;
        }
    }
    const CONTEXT: usize = 3;
    let mut out = String::new();
    let mut k = 0;
    while k < ops.len() {
        if ops[k].0 == ' ' {
            k += 1;
            continue;
        }
        // A hunk: from CONTEXT lines before this change to CONTEXT lines
        // after the last change that is at most 2·CONTEXT lines further.
        let start = k.saturating_sub(CONTEXT);
        let mut end = k;
        let mut last = k;
        while end < ops.len() && end <= last + 2 * CONTEXT {
            if ops[end].0 != ' ' {
                last = end;
            }
            end += 1;
        }
        let end = (last + CONTEXT + 1).min(ops.len());
        let hunk = &ops[start..end];
        let a_len = hunk.iter().filter(|o| o.0 != '+').count();
        let b_len = hunk.iter().filter(|o| o.0 != '-').count();
        out.push_str(&format!(
            "@@ -{},{a_len} +{},{b_len} @@\n",
            hunk[0].1 + 1,
            hunk[0].2 + 1
        ));
        for &(c, i, j) in hunk {
            let line = if c == '+' { b[j] } else { a[i] };
            out.push_str(&format!("{c}{line}\n"));
        }
        k = end;
    }
    out
}
