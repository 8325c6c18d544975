//! The firmware memory map of bare-metal targets and the linker script that
//! places a model and the runtime into it.
//!
//! Layout (flash and RAM as given by `--memory`, default QEMU's mps2-an386):
//!
//! ```text
//! FLASH  .vectors     initial SP, reset handler, exception handlers
//!        .text        code (model and runtime), read in place
//!        .rodata      constants: the weights, read in place; the model's tables
//!        (.data image, copied to RAM at reset)
//! RAM    .data        initialised variables (the runtime has almost none)
//!        .bss         zeroed variables
//!        heap         __heap_start .. __heap_end: inputs, outputs, the arena and
//!                     the state buffer of a stateful model (a KV cache, once,
//!                     kept across steps), allocated by the runtime at run time
//!                     (bump allocator)
//!        stack        the top `stack` bytes, growing down from __stack_top
//! ```
//!
//! The runtime's start-up code (`c/semihost/startup.c`) depends on the symbols
//! this script defines, so both live in this crate.

use std::fmt;
use std::str::FromStr;

/// Where flash and RAM are and how large they are, and how much of the RAM
/// is reserved for the stack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryMap {
    /// First address of flash (code and constants).
    pub flash_origin: u64,
    /// Bytes of flash.
    pub flash_bytes: u64,
    /// First address of RAM.
    pub ram_origin: u64,
    /// Bytes of RAM.
    pub ram_bytes: u64,
    /// Bytes at the top of RAM reserved for the stack.
    pub stack_bytes: u64,
}

/// QEMU's `mps2-an386` (Cortex-M4F): 4 MiB of flash at 0, 4 MiB of RAM at
/// 0x2000_0000; a 64 KiB stack.
impl Default for MemoryMap {
    fn default() -> MemoryMap {
        MemoryMap {
            flash_origin: 0,
            flash_bytes: 4 << 20,
            ram_origin: 0x2000_0000,
            ram_bytes: 4 << 20,
            stack_bytes: 64 << 10,
        }
    }
}

/// A `--memory` value that does not parse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemoryMapError(pub String);

impl fmt::Display for MemoryMapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}; --memory takes comma-separated flash=SIZE[@ORIGIN], ram=SIZE[@ORIGIN], stack=SIZE \
             (sizes in bytes with an optional K or M suffix, or 0x hex; e.g. flash=1M@0x08000000,ram=128K@0x20000000)",
            self.0
        )
    }
}

impl std::error::Error for MemoryMapError {}

/// A size or address: decimal or `0x` hex, with an optional `K` or `M`
/// (binary) suffix.
fn parse_quantity(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, scale) = match s.as_bytes().last()? {
        b'K' | b'k' => (&s[..s.len() - 1], 1u64 << 10),
        b'M' | b'm' => (&s[..s.len() - 1], 1 << 20),
        _ => (s, 1),
    };
    let v = match num.strip_prefix("0x").or_else(|| num.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok()?,
        None => num.parse::<u64>().ok()?,
    };
    v.checked_mul(scale)
}

impl FromStr for MemoryMap {
    type Err = MemoryMapError;

    /// Parses `flash=4M,ram=4M`, `flash=1M@0x08000000,ram=192K@0x20000000,stack=16K`;
    /// what is not given keeps the default.
    fn from_str(s: &str) -> Result<MemoryMap, MemoryMapError> {
        let mut m = MemoryMap::default();
        for part in s.split(',').filter(|p| !p.trim().is_empty()) {
            let (key, value) = part
                .split_once('=')
                .ok_or_else(|| MemoryMapError(format!("'{part}' is not KEY=VALUE")))?;
            let (size, origin) = match value.split_once('@') {
                Some((s, o)) => (s, Some(o)),
                None => (value, None),
            };
            let bad = |what: &str| MemoryMapError(format!("'{part}': {what}"));
            let size = parse_quantity(size).ok_or_else(|| bad("the size is not a number"))?;
            let origin = origin
                .map(|o| parse_quantity(o).ok_or_else(|| bad("the origin is not a number")))
                .transpose()?;
            match key.trim() {
                "flash" => {
                    m.flash_bytes = size;
                    m.flash_origin = origin.unwrap_or(m.flash_origin);
                }
                "ram" => {
                    m.ram_bytes = size;
                    m.ram_origin = origin.unwrap_or(m.ram_origin);
                }
                "stack" if origin.is_none() => m.stack_bytes = size,
                "stack" => return Err(bad("the stack has no origin (it is the top of RAM)")),
                other => return Err(bad(&format!("unknown memory '{other}'"))),
            }
        }
        m.check()?;
        Ok(m)
    }
}

impl MemoryMap {
    /// Checks that the regions fit the 32-bit address space, do not overlap,
    /// and leave RAM beside the stack.
    pub fn check(&self) -> Result<(), MemoryMapError> {
        let end = |o: u64, n: u64| o.checked_add(n).filter(|&e| e <= 1 << 32);
        let flash_end = end(self.flash_origin, self.flash_bytes)
            .ok_or_else(|| MemoryMapError("flash ends beyond the 32-bit address space".into()))?;
        let ram_end = end(self.ram_origin, self.ram_bytes)
            .ok_or_else(|| MemoryMapError("RAM ends beyond the 32-bit address space".into()))?;
        if self.flash_bytes == 0 || self.ram_bytes == 0 {
            return Err(MemoryMapError("flash and RAM must not be empty".into()));
        }
        if self.flash_origin < ram_end && self.ram_origin < flash_end {
            return Err(MemoryMapError("flash and RAM overlap".into()));
        }
        if !self.flash_origin.is_multiple_of(4)
            || !self.ram_origin.is_multiple_of(8)
            || !self.ram_bytes.is_multiple_of(8)
        {
            return Err(MemoryMapError(
                "flash must start 4-byte aligned and RAM start and size be multiples of 8".into(),
            ));
        }
        if !self.stack_bytes.is_multiple_of(8) || self.stack_bytes < 8 << 10 {
            return Err(MemoryMapError(
                "the stack must be a multiple of 8 bytes and at least 8K (the runtime uses ~12 KiB)"
                    .into(),
            ));
        }
        if self.stack_bytes >= self.ram_bytes {
            return Err(MemoryMapError(format!(
                "the stack ({} bytes) does not leave any of the {} bytes of RAM",
                self.stack_bytes, self.ram_bytes
            )));
        }
        Ok(())
    }

    /// The map for measuring how much a firmware needs: the same RAM origin
    /// and stack, but regions far larger than any target has.
    pub fn unbounded(&self) -> MemoryMap {
        MemoryMap {
            flash_origin: 0,
            flash_bytes: 0x8000_0000,
            ram_origin: 0x8000_0000,
            ram_bytes: 0x7fff_0000,
            stack_bytes: self.stack_bytes,
        }
    }

    /// The GNU ld / ld.lld linker script of this layout (see the module
    /// documentation).
    pub fn linker_script(&self) -> String {
        format!(
            "/* smelt firmware layout, generated: flash {fb:#x} bytes at {fo:#010x}, \
             RAM {rb:#x} bytes at {ro:#010x}, stack {sb:#x} bytes */\n\
MEMORY
{{
  FLASH (rx) : ORIGIN = {fo:#010x}, LENGTH = {fb:#x}
  RAM (rwx)  : ORIGIN = {ro:#010x}, LENGTH = {rb:#x}
}}
ENTRY(smelt__reset)
SECTIONS
{{
  .vectors : {{ KEEP(*(.vectors)) }} > FLASH
  .text : {{ *(.text .text.*) }} > FLASH
  .rodata : ALIGN(16) {{
    *(.rodata .rodata.* .data.rel.ro .data.rel.ro.* .got .got.*)
  }} > FLASH
  .ARM.exidx : {{ *(.ARM.exidx .ARM.exidx.*) }} > FLASH
  .data : ALIGN(8) {{
    __data_start = .;
    *(.data .data.*)
    . = ALIGN(8);
    __data_end = .;
  }} > RAM AT > FLASH
  __data_load = LOADADDR(.data);
  .bss (NOLOAD) : ALIGN(8) {{
    __bss_start = .;
    *(.bss .bss.* COMMON)
    . = ALIGN(8);
    __bss_end = .;
  }} > RAM
  __heap_start = ALIGN(__bss_end, 16);
  __stack_top = ORIGIN(RAM) + LENGTH(RAM);
  __heap_end = __stack_top - {sb:#x};
  ASSERT(__heap_start <= __heap_end, \"smelt: .data and .bss do not leave room for the stack in RAM\")
  /DISCARD/ : {{ *(.init_array*) *(.fini_array*) *(.comment) }}
}}
",
            fo = self.flash_origin,
            fb = self.flash_bytes,
            ro = self.ram_origin,
            rb = self.ram_bytes,
            sb = self.stack_bytes,
        )
    }
}

/// Heap bytes the runtime needs beyond inputs, outputs and the arena: the
/// argument table, output paths, alignment padding (an upper bound for
/// short command lines; `--bench N` takes 8 more bytes per run).
pub const RUNTIME_HEAP_BYTES: u64 = 4 << 10;

/// The heap bytes one run of a model needs: every input and output rounded
/// up to the allocator's 16-byte alignment, the arena with its alignment
/// slack, and [`RUNTIME_HEAP_BYTES`].
pub fn heap_need(
    io_bytes: impl IntoIterator<Item = u64>,
    arena_bytes: u64,
    arena_align: u64,
) -> u64 {
    let io: u64 = io_bytes.into_iter().map(|b| b.div_ceil(16) * 16).sum();
    io + arena_bytes + arena_align.saturating_sub(16) + RUNTIME_HEAP_BYTES
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sizes_and_origins() {
        assert_eq!("".parse::<MemoryMap>(), Ok(MemoryMap::default()));
        let m: MemoryMap = "flash=1M@0x08000000,ram=192K@0x20000000,stack=16K"
            .parse()
            .unwrap();
        assert_eq!(
            m,
            MemoryMap {
                flash_origin: 0x0800_0000,
                flash_bytes: 1 << 20,
                ram_origin: 0x2000_0000,
                ram_bytes: 192 << 10,
                stack_bytes: 16 << 10,
            }
        );
        let m: MemoryMap = "ram=0x20000".parse().unwrap();
        assert_eq!((m.ram_bytes, m.flash_bytes), (0x20000, 4 << 20));
    }

    #[test]
    fn rejects_bad_maps_with_a_reason() {
        for (s, why) in [
            ("flash", "not KEY=VALUE"),
            ("rom=1M", "unknown memory 'rom'"),
            ("ram=12Q", "not a number"),
            ("flash=1M@0x20000000", "overlap"),
            ("ram=32K,stack=64K", "does not leave"),
            ("ram=1M@0xfff00008", "32-bit"),
            ("stack=1K", "at least 8K"),
        ] {
            let e = s.parse::<MemoryMap>().unwrap_err().to_string();
            assert!(e.contains(why), "{s}: {e}");
            assert!(e.contains("--memory takes"), "{s}: {e}");
        }
    }

    #[test]
    fn script_names_the_symbols_the_start_up_code_uses() {
        let script = MemoryMap::default().linker_script();
        for sym in [
            "__stack_top",
            "__data_load",
            "__data_start",
            "__data_end",
            "__bss_start",
            "__bss_end",
            "__heap_start",
            "__heap_end",
            "ENTRY(smelt__reset)",
            "ORIGIN = 0x20000000, LENGTH = 0x400000",
        ] {
            assert!(script.contains(sym), "{sym} missing:\n{script}");
        }
    }
}
