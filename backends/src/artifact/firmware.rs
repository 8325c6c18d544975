//! Firmware images for bare-metal targets (Cortex-M4F): linking the model
//! and the runtime with the linker script of a [`MemoryMap`], checking that
//! the image fits, and reporting flash and RAM use.
//!
//! The layout is the runtime's ([`smelt_runtime::firmware`]): code and
//! constants (weights) in flash, read in place; `.data`, `.bss`, a heap for
//! the inputs, outputs, arena and state buffer, and the stack in RAM. Flash use is measured
//! from the linked image; RAM use is `.data` + `.bss` (measured) + what one
//! run allocates (known from the model's signature and memory plan) + the
//! stack reserve. When something does not fit, the image is linked again
//! into an unbounded map to measure what it needs, and the error says how
//! much is needed against how much there is.

use std::fmt;
use std::path::Path;
use std::process::Command;

use smelt_runtime::firmware::MemoryMap;

use super::ArtifactError;

/// Flash and RAM use of a firmware image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Usage {
    /// The memory map the image is (or would be) linked for.
    pub map: MemoryMap,
    /// Code, constants (weights), the vector table and the `.data` image.
    pub flash_bytes: u64,
    /// `.data` and `.bss` in RAM.
    pub ram_static_bytes: u64,
    /// What one run allocates from the heap: inputs, outputs, the arena, the
    /// state buffer of a stateful model (allocated once, kept across steps),
    /// the runtime's own buffers.
    pub heap_bytes: u64,
}

impl Usage {
    /// RAM needed: static data, the heap a run needs, and the stack reserve.
    pub fn ram_bytes(&self) -> u64 {
        self.ram_static_bytes + self.heap_bytes + self.map.stack_bytes
    }

    /// The error when the image does not fit `self.map`, if it does not.
    pub fn check(&self) -> Result<(), ArtifactError> {
        let flash = self.flash_bytes > self.map.flash_bytes;
        let ram = self.ram_bytes() > self.map.ram_bytes;
        if !flash && !ram {
            return Ok(());
        }
        let mut parts = Vec::new();
        if flash {
            parts.push(format!(
                "flash: needs {} bytes (code and weights), has {}",
                self.flash_bytes, self.map.flash_bytes
            ));
        }
        if ram {
            parts.push(format!(
                "RAM: needs {} bytes ({} static data, {} for inputs, outputs and the arena, {} stack), has {}",
                self.ram_bytes(),
                self.ram_static_bytes,
                self.heap_bytes,
                self.map.stack_bytes,
                self.map.ram_bytes
            ));
        }
        Err(ArtifactError::Firmware(format!(
            "the firmware does not fit the memory map: {}; give a larger --memory (e.g. --memory flash={}K,ram={}K) or a smaller model",
            parts.join("; "),
            self.flash_bytes.max(self.map.flash_bytes).div_ceil(1024),
            self.ram_bytes().max(self.map.ram_bytes).div_ceil(1024),
        )))
    }
}

fn percent(used: u64, total: u64) -> f64 {
    if total == 0 {
        0.0
    } else {
        used as f64 * 100.0 / total as f64
    }
}

impl fmt::Display for Usage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "flash {} of {} bytes ({:.1} %), RAM {} of {} bytes ({:.1} %: {} static, {} heap, {} stack)",
            self.flash_bytes,
            self.map.flash_bytes,
            percent(self.flash_bytes, self.map.flash_bytes),
            self.ram_bytes(),
            self.map.ram_bytes,
            percent(self.ram_bytes(), self.map.ram_bytes),
            self.ram_static_bytes,
            self.heap_bytes,
            self.map.stack_bytes
        )
    }
}

/// Flash and RAM bytes of a linked 32-bit little-endian ELF image, from its
/// section headers: allocated sections with contents count in flash (a
/// section placed in RAM, `.data`, also has its image in flash), allocated
/// sections in RAM count in RAM.
pub fn measure(elf: &[u8], map: &MemoryMap) -> Result<(u64, u64), String> {
    let bad = || "the linked firmware is not a 32-bit little-endian ELF file".to_string();
    let u16_at = |o: usize| -> Result<u64, String> {
        elf.get(o..o + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]) as u64)
            .ok_or_else(bad)
    };
    let u32_at = |o: usize| -> Result<u64, String> {
        elf.get(o..o + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as u64)
            .ok_or_else(bad)
    };
    if elf.len() < 52 || &elf[..4] != b"\x7fELF" || elf[4] != 1 || elf[5] != 1 {
        return Err(bad());
    }
    let shoff = u32_at(0x20)? as usize;
    let shentsize = u16_at(0x2e)? as usize;
    let shnum = u16_at(0x30)? as usize;
    const SHT_NOBITS: u64 = 8;
    const SHF_ALLOC: u64 = 2;
    let in_ram = |a: u64| a >= map.ram_origin && a < map.ram_origin + map.ram_bytes;
    let (mut flash, mut ram) = (0u64, 0u64);
    for i in 0..shnum {
        let h = shoff + i * shentsize;
        let (ty, flags, addr, size) = (
            u32_at(h + 4)?,
            u32_at(h + 8)?,
            u32_at(h + 12)?,
            u32_at(h + 20)?,
        );
        if flags & SHF_ALLOC == 0 || size == 0 {
            continue;
        }
        if ty != SHT_NOBITS {
            flash += size;
        }
        if in_ram(addr) {
            ram += size;
        }
    }
    Ok((flash, ram))
}

fn run_lld(
    ld: &Path,
    pre: &[String],
    extra: &[&str],
    script: &Path,
    objs: &[&Path],
    out: &Path,
) -> Result<Result<(), String>, ArtifactError> {
    let result = Command::new(ld)
        .args(pre)
        .args(extra)
        .args(["--gc-sections", "--build-id=none", "--no-undefined", "-T"])
        .arg(script)
        .arg("-o")
        .arg(out)
        .args(objs)
        .output()
        .map_err(|e| ArtifactError::Link(format!("{}: {e}", ld.display())))?;
    Ok(if result.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&result.stderr).trim().to_string())
    })
}

/// Links `objs` (the model and the runtime) into the firmware image `out` for
/// `map` in the scratch folder `dir`, with `ld` (`pre`: its leading
/// arguments; `extra`: more flags). `heap_bytes` is what one run allocates.
/// Fails with the needed and available sizes when the image does not fit; on
/// success returns the image's use.
pub fn link(
    ld: &Path,
    pre: &[String],
    objs: &[&Path],
    out: &Path,
    dir: &Path,
    map: &MemoryMap,
    heap_bytes: u64,
    extra: &[&str],
) -> Result<Usage, ArtifactError> {
    let write = |p: &Path, s: String| {
        std::fs::write(p, s).map_err(|e| ArtifactError::Io(p.to_path_buf(), e))
    };
    let script = dir.join("link.ld");
    write(&script, map.linker_script())?;
    let usage_of = |image: &Path, map: &MemoryMap| -> Result<Usage, ArtifactError> {
        let elf = std::fs::read(image).map_err(|e| ArtifactError::Io(image.to_path_buf(), e))?;
        let (flash_bytes, ram_static_bytes) = measure(&elf, map).map_err(ArtifactError::Link)?;
        Ok(Usage {
            map: *map,
            flash_bytes,
            ram_static_bytes,
            heap_bytes,
        })
    };
    match run_lld(ld, pre, extra, &script, objs, out)? {
        Ok(()) => {
            let usage = usage_of(out, map)?;
            if let Err(e) = usage.check() {
                let _ = std::fs::remove_file(out);
                return Err(e);
            }
            Ok(usage)
        }
        Err(stderr) => {
            // Measure what the image needs with regions larger than any
            // device, to say how much is missing.
            let big = map.unbounded();
            let measure_script = dir.join("measure.ld");
            let measure_out = dir.join("measure.elf");
            write(&measure_script, big.linker_script())?;
            if run_lld(ld, pre, extra, &measure_script, objs, &measure_out)?.is_ok() {
                let mut usage = usage_of(&measure_out, &big)?;
                usage.map = *map;
                usage.check()?;
            }
            Err(ArtifactError::Link(format!(
                "{} exited with an error: {stderr}",
                ld.display()
            )))
        }
    }
}

/// Flash and RAM a model will need, before compiling: the weights plus an
/// estimate of the code (the runtime's size plus `code_per_node` bytes per
/// node), and the heap a run allocates.
pub fn estimate(map: &MemoryMap, weight_bytes: u64, nodes: usize, heap_bytes: u64) -> Usage {
    /// The runtime's code, tables and libcalls on the M4 (measured: ~22 KiB
    /// with the soft double-precision helpers), rounded up.
    const RUNTIME_FLASH: u64 = 24 << 10;
    /// A rough average of generated code per graph node.
    const CODE_PER_NODE: u64 = 1 << 10;
    /// The runtime's .data and .bss (the command-line buffer and argv).
    const RUNTIME_STATIC_RAM: u64 = 6 << 10;
    Usage {
        map: *map,
        flash_bytes: weight_bytes + RUNTIME_FLASH + CODE_PER_NODE * nodes as u64,
        ram_static_bytes: RUNTIME_STATIC_RAM,
        heap_bytes,
    }
}
