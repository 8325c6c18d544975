//! The golden-file check shared by the golden tests: compare `got` with the
//! file at `path`, or write it there when `UPDATE_GOLDEN` is set.

use std::path::Path;

/// Panics with a line diff when `got` differs from the file at `path`
/// (missing file = empty); with `UPDATE_GOLDEN` set, writes `got` instead.
pub fn assert_golden(path: &Path, got: &str) {
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
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
    let mut diff = String::new();
    let (g, w): (Vec<&str>, Vec<&str>) = (got.lines().collect(), want.lines().collect());
    for i in 0..g.len().max(w.len()) {
        match (w.get(i), g.get(i)) {
            (Some(a), Some(b)) if a == b => {}
            (a, b) => {
                if let Some(a) = a {
                    diff.push_str(&format!("-{a}\n"));
                }
                if let Some(b) = b {
                    diff.push_str(&format!("+{b}\n"));
                }
            }
        }
    }
    panic!(
        "{} differs (UPDATE_GOLDEN=1 to bless):\n{diff}",
        path.display()
    );
}
