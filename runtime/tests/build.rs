//! The build itself: compiling the runtime twice, from two different source
//! paths, gives the bytes embedded in the crate (reproducible builds); and
//! the ABI header is clean C99 (and usable from C++).

mod common;

use std::path::Path;
use std::process::Command;

use common::{clang, crate_dir, scratch};
use smelt_runtime::{HEADER, Target, libcall_symbols, libcalls_object, runtime_object, toolchain};

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

#[test]
fn runtime_builds_are_byte_identical() {
    let dir = scratch("reproducible");
    // A copy of the sources at another path: no path may leak into the object.
    let copy = dir.join("elsewhere/smelt-runtime-copy");
    copy_dir(&crate_dir().join("c"), &copy.join("c"));
    copy_dir(&crate_dir().join("include"), &copy.join("include"));
    let clang = clang();
    for t in Target::ALL {
        type Compile = fn(&Path, &Path, Target, &Path) -> Result<(), String>;
        type Embedded = fn(Target) -> &'static [u8];
        let objects: [(&str, Compile, Embedded); 2] = [
            ("runtime", toolchain::compile_runtime, runtime_object),
            ("libcalls", toolchain::compile_libcalls, libcalls_object),
        ];
        for (what, compile, embedded) in objects {
            let first = dir.join(format!("first-{what}-{}.o", t.arch()));
            let second = dir.join(format!("second-{what}-{}.o", t.arch()));
            compile(&clang, &crate_dir(), t, &first).unwrap();
            compile(&clang, &copy, t, &second).unwrap();
            let first = std::fs::read(first).unwrap();
            assert!(
                first == std::fs::read(second).unwrap(),
                "{t}: two compilations of the {what} object differ"
            );
            assert!(
                first == embedded(t),
                "{t}: a fresh compilation of the {what} object differs from the embedded object"
            );
        }
    }
}

/// The libcalls object of static libraries defines exactly the libcalls, all
/// weak (the program's C library wins without a clash) and hidden (never
/// exported from what links it), and needs nothing: no `_start`, no I/O.
#[test]
fn libcalls_object_is_weak_hidden_and_self_contained() {
    use object::{Object, ObjectSymbol, SymbolScope};
    for t in Target::ALL {
        let file = object::File::parse(libcalls_object(t)).unwrap();
        let mut defined = Vec::new();
        for sym in file.symbols() {
            let name = sym.name().unwrap();
            if sym.is_undefined() {
                assert!(name.is_empty(), "{t}: the libcalls object needs '{name}'");
                continue;
            }
            if !sym.is_global() {
                continue;
            }
            assert!(sym.is_weak(), "{t}: '{name}' is not weak");
            // ELF symbols of hidden visibility have linkage scope.
            assert_eq!(
                sym.scope(),
                SymbolScope::Linkage,
                "{t}: '{name}' is not hidden"
            );
            defined.push(name.to_string());
        }
        defined.sort();
        let mut want: Vec<String> = libcall_symbols(t).iter().map(|s| s.to_string()).collect();
        want.sort();
        assert_eq!(defined, want, "{t}: the libcalls object's global symbols");
    }
}

#[test]
fn header_is_clean_c99_and_cxx() {
    let dir = scratch("header");
    std::fs::write(dir.join("smelt_model.h"), HEADER).unwrap();
    let use_it = "#include \"smelt_model.h\"\n\
        uint64_t total_bytes(void);\n\
        uint64_t total_bytes(void) {\n\
            uint64_t n = smelt_model.arena_bytes;\n\
            uint32_t i;\n\
            for (i = 0; i < smelt_model.num_inputs; i++) n += smelt_model.inputs[i].bytes;\n\
            return n + (SMELT_ABI_VERSION == 1 ? 0 : 1) + SMELT_DTYPE_BF16;\n\
        }\n";
    std::fs::write(dir.join("use.c"), use_it).unwrap();
    for (lang, std) in [("c", "-std=c99"), ("c++", "-std=c++11")] {
        let out = Command::new(clang())
            .current_dir(&dir)
            .args([
                "-x",
                lang,
                std,
                "-pedantic",
                "-Wall",
                "-Wextra",
                "-Werror",
                "-fsyntax-only",
                "use.c",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "the header does not compile as {lang} ({std}):\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The tokenizer is part of the runtime object of every target (compiled
/// freestanding with the runtime's flags) and needs nothing but the
/// runtime's own symbols.
#[test]
fn tokenizer_is_in_every_runtime_object() {
    use object::{Object, ObjectSymbol};
    let api = [
        "smelt_tok_memory",
        "smelt_tok_init",
        "smelt_tok_encode",
        "smelt_tok_decode",
        "smelt_tok_decode_flush",
    ];
    for t in Target::ALL {
        let file = object::File::parse(runtime_object(t)).unwrap();
        let defined: Vec<&str> = file
            .symbols()
            .filter(|s| s.is_global() && !s.is_undefined())
            .filter_map(|s| s.name().ok())
            .collect();
        for name in api {
            assert!(defined.contains(&name), "{t}: the runtime lacks {name}");
        }
        // Compiled alone, the tokenizer calls nothing outside itself.
        let dir = scratch(&format!("tokenizer-{}", t.arch()));
        let obj = dir.join("tokenizer.o");
        toolchain::compile_tokenizer(&clang(), &crate_dir(), &t.clang_flags(), &obj).unwrap();
        let bytes = std::fs::read(&obj).unwrap();
        let file = object::File::parse(&*bytes).unwrap();
        let needed: Vec<&str> = file
            .symbols()
            .filter(|s| s.is_undefined())
            .filter_map(|s| s.name().ok())
            .filter(|n| !n.is_empty())
            .collect();
        assert!(needed.is_empty(), "{t}: the tokenizer needs {needed:?}");
    }
}
