//! The cursor both text parsers read with (the graph IR's
//! [`crate::parse`] and the kernel IR's in `smelt-backends`): a position in
//! the source, whitespace and `//` comments, tokens, words, integers and
//! quoted strings, and "expected X, found Y" errors that say where.
//!
//! Each parser wraps an [`Expected`] in its own error type, so their
//! messages stay their own while the lexing is written once.

use std::fmt;

/// "Expected X, found Y" at a line and column of the source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    /// 1-based line.
    pub line: usize,
    /// 1-based column (in characters).
    pub col: usize,
    /// What the parser expected (`"a type"`, `"')'"`).
    pub expected: String,
    /// What it found instead (a short excerpt, or `end of input`).
    pub found: String,
}

impl fmt::Display for Expected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}, column {}: expected {}, found {}",
            self.line, self.col, self.expected, self.found
        )
    }
}

impl std::error::Error for Expected {}

/// A position in a source text, and the lexing every parser of it needs.
#[derive(Debug, Clone)]
pub struct Cursor<'a> {
    /// The whole text.
    pub src: &'a str,
    /// The byte offset of the next unread character.
    pub pos: usize,
}

/// Whether `c` may be part of a word (an identifier or a number).
fn word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

impl<'a> Cursor<'a> {
    /// A cursor at the start of `src`.
    pub fn new(src: &'a str) -> Cursor<'a> {
        Cursor { src, pos: 0 }
    }

    /// The text not read yet.
    pub fn rest(&self) -> &'a str {
        &self.src[self.pos..]
    }

    /// The 1-based line and column (in characters) of byte offset `at`.
    pub fn line_col(&self, at: usize) -> (usize, usize) {
        let before = &self.src[..at.min(self.src.len())];
        let line = before.matches('\n').count() + 1;
        let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        (line, col)
    }

    /// What is at the cursor, for an error: up to 24 characters of the
    /// line, `end of line` or `end of input`.
    pub fn found(&self) -> String {
        let rest = self.rest();
        if rest.is_empty() {
            return "end of input".to_string();
        }
        let tok: String = rest.lines().next().unwrap_or("").chars().take(24).collect();
        if tok.is_empty() {
            "end of line".to_string()
        } else {
            format!("'{tok}'")
        }
    }

    /// "Expected `what`" at byte offset `at`, having found `found`.
    pub fn expected_at(&self, at: usize, what: &str, found: String) -> Expected {
        let (line, col) = self.line_col(at);
        Expected {
            line,
            col,
            expected: what.to_string(),
            found,
        }
    }

    /// "Expected `what`" at the cursor.
    pub fn expected(&self, what: &str) -> Expected {
        self.expected_at(self.pos, what, self.found())
    }

    /// Skips whitespace (newlines included) and `//` comments.
    pub fn ws(&mut self) {
        loop {
            let r = self.rest();
            let t = r.trim_start();
            self.pos += r.len() - t.len();
            if t.starts_with("//") {
                self.pos += t.find('\n').unwrap_or(t.len());
            } else {
                return;
            }
        }
    }

    /// Skips spaces and tabs only.
    pub fn blanks(&mut self) {
        let r = self.rest();
        let t = r.trim_start_matches([' ', '\t']);
        self.pos += r.len() - t.len();
    }

    /// Reads `tok` after whitespace, if it is there.
    pub fn eat(&mut self, tok: &str) -> bool {
        self.ws();
        if self.rest().starts_with(tok) {
            self.pos += tok.len();
            true
        } else {
            false
        }
    }

    /// Reads `tok` after whitespace, or says it was expected.
    pub fn expect(&mut self, tok: &str) -> Result<(), Expected> {
        let found = self.eat(tok);
        self.found_or_expected(found, tok)
    }

    /// `Ok` when `tok` was `found`, else the error that it was expected.
    fn found_or_expected(&self, found: bool, tok: &str) -> Result<(), Expected> {
        if found {
            Ok(())
        } else {
            Err(self.expected(&format!("'{tok}'")))
        }
    }

    /// The word (letters, digits, `_`) after whitespace, not consumed; empty
    /// when there is none.
    pub fn peek_word(&mut self) -> &'a str {
        self.ws();
        let r = self.rest();
        let n = r.find(|c: char| !word_char(c)).unwrap_or(r.len());
        &r[..n]
    }

    /// Reads the word `w` (a whole word: `constant` is not `const`), if it
    /// is there.
    pub fn eat_word(&mut self, w: &str) -> bool {
        if self.peek_word() == w {
            self.pos += w.len();
            true
        } else {
            false
        }
    }

    /// Reads the word `w`, or says it was expected.
    pub fn expect_word(&mut self, w: &str) -> Result<(), Expected> {
        let found = self.eat_word(w);
        self.found_or_expected(found, w)
    }

    /// Reads a word (letters, digits, `_`); `what` names it in the error
    /// when there is none.
    pub fn word(&mut self, what: &str) -> Result<&'a str, Expected> {
        let w = self.peek_word();
        if w.is_empty() {
            return Err(self.expected(what));
        }
        self.pos += w.len();
        Ok(w)
    }

    /// Reads the ASCII digits at the cursor (maybe none).
    pub fn digits(&mut self) -> &'a str {
        let r = self.rest();
        let n = r.find(|c: char| !c.is_ascii_digit()).unwrap_or(r.len());
        self.pos += n;
        &r[..n]
    }

    /// Reads a word that is an unsigned integer; the error points at the
    /// word and quotes it.
    pub fn usize(&mut self, what: &str) -> Result<usize, Expected> {
        self.ws();
        let at = self.pos;
        let w = self.word(what)?;
        w.parse()
            .map_err(|_| self.expected_at(at, what, format!("'{w}'")))
    }

    /// Reads an unsuffixed integer, optionally negative; on an error the
    /// cursor stays at its start.
    pub fn int(&mut self, what: &str) -> Result<i64, Expected> {
        self.ws();
        let start = self.pos;
        if self.rest().starts_with('-') {
            self.pos += 1;
        }
        self.digits();
        self.src[start..self.pos].parse().map_err(|_| {
            self.pos = start;
            self.expected(what)
        })
    }

    /// A Rust-`Debug`-quoted string, unescaped.
    pub fn string(&mut self) -> Result<String, Expected> {
        self.ws();
        if !self.rest().starts_with('"') {
            return Err(self.expected("a quoted string"));
        }
        let mut out = String::new();
        let mut chars = self.rest()[1..].char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    self.pos += i + 2;
                    return Ok(out);
                }
                '\\' => {
                    let esc = chars.next().map(|(_, c)| c);
                    match esc {
                        Some('n') => out.push('\n'),
                        Some('r') => out.push('\r'),
                        Some('t') => out.push('\t'),
                        Some('0') => out.push('\0'),
                        Some(c @ ('\\' | '"' | '\'')) => out.push(c),
                        Some('u') => {
                            let hex: String = chars
                                .by_ref()
                                .map(|(_, c)| c)
                                .skip(1) // `{`
                                .take_while(|&c| c != '}')
                                .collect();
                            match u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                                Some(c) => out.push(c),
                                None => {
                                    self.pos += i + 1;
                                    return Err(self.expected("a \\u{…} escape"));
                                }
                            }
                        }
                        _ => {
                            self.pos += i + 1;
                            return Err(self.expected("an escape (\\n \\t \\\" \\\\ \\u{…})"));
                        }
                    }
                }
                c => out.push(c),
            }
        }
        Err(self.expected("a closing '\"'"))
    }
}
