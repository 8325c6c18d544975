//! The C tokenizer of the runtime (`c/tokenizer.c`, `c/tokenizer.h`) for the
//! host, through FFI: the same code the chat executables run, so `smelt run`
//! and the tests tokenize exactly as the compiled program does. The build
//! script compiles `tokenizer.c` for the host into a static library linked
//! into this crate.
//!
//! [`Tokenizer::new`] takes a table ("blob") made by the compiler's table
//! builder (`smelt_frontend::tokenizer`); the C code validates it again, so
//! a bad blob is an error, never undefined behaviour. Memory for the tables
//! and the scratch space of each call is allocated here and handed to C.

// The FFI calls are the only unsafe code of this crate; every pointer passed
// is to memory this module owns and sized as the C header asks.
#![allow(unsafe_code)]

use std::ffi::c_void;
use std::fmt;

/// What the C tokenizer reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenizerError {
    /// The table is malformed (header, section sizes, an id or offset).
    Blob,
    /// A memory or work buffer was too small (an internal error here).
    Memory,
    /// An output buffer was too small (an internal error here).
    Space,
    /// A token id past the vocabulary.
    Token(u32),
}

impl fmt::Display for TokenizerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenizerError::Blob => write!(
                f,
                "the tokenizer table is malformed; rebuild it with the same smelt version"
            ),
            TokenizerError::Memory => write!(f, "internal error: tokenizer memory too small"),
            TokenizerError::Space => write!(f, "internal error: tokenizer output too small"),
            TokenizerError::Token(id) => write!(f, "token id {id} is past the vocabulary"),
        }
    }
}

impl std::error::Error for TokenizerError {}

/// `smelt_tok_stream` of `tokenizer.h`.
#[repr(C)]
#[derive(Default)]
struct Stream {
    pending: [u8; 4],
    n_pending: u32,
    started: u32,
}

unsafe extern "C" {
    fn smelt_tok_memory(blob: *const c_void, len: usize, mem_bytes: *mut usize) -> i32;
    fn smelt_tok_init(
        blob: *const c_void,
        len: usize,
        mem: *mut c_void,
        mem_bytes: usize,
        out: *mut *mut c_void,
    ) -> i32;
    fn smelt_tok_work_bytes(text_len: usize) -> usize;
    fn smelt_tok_max_ids(text_len: usize) -> usize;
    fn smelt_tok_encode(
        tok: *const c_void,
        text: *const u8,
        len: usize,
        options: u32,
        ids: *mut u32,
        cap: usize,
        n_ids: *mut usize,
        work: *mut c_void,
        work_bytes: usize,
    ) -> i32;
    fn smelt_tok_n_tokens(tok: *const c_void) -> u32;
    fn smelt_tok_bos(tok: *const c_void) -> u32;
    fn smelt_tok_eos(tok: *const c_void) -> u32;
    fn smelt_tok_max_piece(tok: *const c_void) -> usize;
    fn smelt_tok_stream_init(s: *mut Stream);
    fn smelt_tok_decode(
        tok: *const c_void,
        s: *mut Stream,
        id: u32,
        options: u32,
        out: *mut u8,
        cap: usize,
        written: *mut usize,
    ) -> i32;
    fn smelt_tok_decode_flush(s: *mut Stream, out: *mut u8, cap: usize, written: *mut usize)
    -> i32;
}

const NONE: u32 = u32::MAX;

fn check(code: i32) -> Result<(), TokenizerError> {
    match code {
        0 => Ok(()),
        -1 => Err(TokenizerError::Blob),
        -3 => Err(TokenizerError::Space),
        -4 => Err(TokenizerError::Token(NONE)),
        _ => Err(TokenizerError::Memory),
    }
}

/// How [`Tokenizer::encode`] treats special tokens.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EncodeOptions {
    /// Put BOS first and EOS last, as the table's flags say.
    pub add_special: bool,
    /// Find the added and special tokens in the text (as Hugging Face
    /// `tokenizers` does for added tokens); otherwise their text is text.
    pub parse_special: bool,
}

/// A tokenizer built from a table, ready to encode and decode.
pub struct Tokenizer {
    // The C tables point into both; neither moves or changes after `new`.
    _blob: Box<[u8]>,
    _mem: Box<[u64]>,
    handle: *const c_void,
    mem_bytes: usize,
}

// The C tokenizer never writes its tables after init and keeps no global
// state; every call gets its own scratch memory.
unsafe impl Send for Tokenizer {}
unsafe impl Sync for Tokenizer {}

impl Tokenizer {
    /// Validates `blob` and builds the tables.
    pub fn new(blob: Vec<u8>) -> Result<Tokenizer, TokenizerError> {
        let blob = blob.into_boxed_slice();
        let mut bytes = 0usize;
        // SAFETY: `blob` is a live slice of the given length; `bytes` is a
        // valid out-pointer.
        check(unsafe { smelt_tok_memory(blob.as_ptr().cast(), blob.len(), &mut bytes) })?;
        let mut mem = vec![0u64; bytes.div_ceil(8)].into_boxed_slice();
        let mut handle: *mut c_void = std::ptr::null_mut();
        // SAFETY: `mem` is 8-byte aligned and at least `bytes` long; both
        // buffers outlive the handle (they are moved into the result).
        check(unsafe {
            smelt_tok_init(
                blob.as_ptr().cast(),
                blob.len(),
                mem.as_mut_ptr().cast(),
                mem.len() * 8,
                &mut handle,
            )
        })?;
        Ok(Tokenizer {
            _blob: blob,
            _mem: mem,
            handle,
            mem_bytes: bytes,
        })
    }

    /// The memory the C tables take (what an executable must provide).
    pub fn memory_bytes(&self) -> usize {
        self.mem_bytes
    }

    /// The work memory encoding a text of `text_len` bytes takes.
    pub fn work_bytes(text_len: usize) -> usize {
        // SAFETY: a pure function of its argument.
        unsafe { smelt_tok_work_bytes(text_len) }
    }

    /// The most ids a text of `text_len` bytes encodes to.
    pub fn max_ids(text_len: usize) -> usize {
        // SAFETY: a pure function of its argument.
        unsafe { smelt_tok_max_ids(text_len) }
    }

    /// Number of tokens.
    pub fn n_tokens(&self) -> u32 {
        // SAFETY: `handle` is a live tokenizer.
        unsafe { smelt_tok_n_tokens(self.handle) }
    }

    /// The beginning-of-sequence token, if any.
    pub fn bos(&self) -> Option<u32> {
        // SAFETY: `handle` is a live tokenizer.
        Some(unsafe { smelt_tok_bos(self.handle) }).filter(|&b| b != NONE)
    }

    /// The end-of-sequence token, if any.
    pub fn eos(&self) -> Option<u32> {
        // SAFETY: `handle` is a live tokenizer.
        Some(unsafe { smelt_tok_eos(self.handle) }).filter(|&b| b != NONE)
    }

    /// The token ids of `text` (any bytes: see `tokenizer.h` for input the
    /// vocabulary cannot represent).
    pub fn encode(&self, text: &[u8], options: EncodeOptions) -> Result<Vec<u32>, TokenizerError> {
        // SAFETY: pure functions of a length.
        let (work_bytes, cap) = unsafe {
            (
                smelt_tok_work_bytes(text.len()),
                smelt_tok_max_ids(text.len()),
            )
        };
        let mut work = vec![0u64; work_bytes.div_ceil(8)];
        let mut ids = vec![0u32; cap];
        let mut n = 0usize;
        let opts = u32::from(options.add_special) | (u32::from(options.parse_special) << 1);
        // SAFETY: every buffer is live and as long as passed; `work` is
        // 8-byte aligned.
        check(unsafe {
            smelt_tok_encode(
                self.handle,
                text.as_ptr(),
                text.len(),
                opts,
                ids.as_mut_ptr(),
                ids.len(),
                &mut n,
                work.as_mut_ptr().cast(),
                work.len() * 8,
            )
        })?;
        ids.truncate(n);
        Ok(ids)
    }

    /// The bytes of `ids`, all at once (special tokens as their text unless
    /// `skip_special`).
    pub fn decode(&self, ids: &[u32], skip_special: bool) -> Result<Vec<u8>, TokenizerError> {
        let mut d = self.decoder(skip_special);
        let mut out = Vec::new();
        for &id in ids {
            out.extend_from_slice(d.step(id)?);
        }
        out.extend_from_slice(d.finish()?);
        Ok(out)
    }

    /// An incremental decoder: each step gives the bytes that are ready,
    /// holding back an incomplete UTF-8 character.
    pub fn decoder(&self, skip_special: bool) -> Decoder<'_> {
        let mut stream = Stream::default();
        // SAFETY: `stream` is a valid smelt_tok_stream.
        unsafe { smelt_tok_stream_init(&mut stream) };
        // SAFETY: `handle` is a live tokenizer.
        let piece = unsafe { smelt_tok_max_piece(self.handle) };
        Decoder {
            tok: self,
            stream,
            buf: vec![0; piece],
            skip_special,
        }
    }
}

/// Decodes one token at a time (see [`Tokenizer::decoder`]).
pub struct Decoder<'a> {
    tok: &'a Tokenizer,
    stream: Stream,
    buf: Vec<u8>,
    skip_special: bool,
}

impl Decoder<'_> {
    /// The bytes token `id` completes.
    pub fn step(&mut self, id: u32) -> Result<&[u8], TokenizerError> {
        let mut n = 0usize;
        // SAFETY: live tokenizer and stream; `buf` is max_piece bytes long.
        let code = unsafe {
            smelt_tok_decode(
                self.tok.handle,
                &mut self.stream,
                id,
                u32::from(self.skip_special),
                self.buf.as_mut_ptr(),
                self.buf.len(),
                &mut n,
            )
        };
        if code == -4 {
            return Err(TokenizerError::Token(id));
        }
        check(code)?;
        Ok(&self.buf[..n])
    }

    /// The bytes still held back (an incomplete character at the end).
    pub fn finish(&mut self) -> Result<&[u8], TokenizerError> {
        let mut n = 0usize;
        // SAFETY: live stream; `buf` is at least 4 bytes long.
        check(unsafe {
            smelt_tok_decode_flush(
                &mut self.stream,
                self.buf.as_mut_ptr(),
                self.buf.len(),
                &mut n,
            )
        })?;
        Ok(&self.buf[..n])
    }
}
