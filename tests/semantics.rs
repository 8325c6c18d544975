//! One semantics for the interpreter and native code: every case of the
//! agreement table in `docs/semantics.md` (out-of-range and NaN float → int
//! casts, of an input and of a folded constant; integer division and
//! remainder by zero and `MIN / -1`; shifts past the width; Round half to
//! even; Pow's special cases with a run-time exponent; signed zeros in
//! Max/Min/Mod/ReduceMax/ReduceMin; Sigmoid of subnormals and large values;
//! Softmax of an all −∞ row; empty reductions) runs through the reference
//! interpreter and through executables from every code generator and target
//! (Cranelift on x86_64 and aarch64; LLVM on x86_64, aarch64, armv7 and the
//! Cortex-M4F firmware; foreign ones under QEMU), and each output must equal
//! the value the table gives bit for bit. The only latitude: any NaN matches
//! any NaN (a generated NaN's sign and payload are the hardware's).
//!
//! The expected values are written here from the table, independently of
//! both implementations: literals, or Rust's own `as` (saturating casts)
//! and `f64::exp` (the subnormal results of Sigmoid) where the table names
//! them. All cases share one model, so each runner compiles once.

use smelt::{Backend, CompileOptions, Emit, LlvmConfig};
use smelt_frontend::Limits;
use smelt_frontend::npy::{read_npy, write_npy};
use smelt_ir::interp::Interpreter;
use smelt_ir::tensor::Elem;
use smelt_ir::{DType, Graph, Tensor};

#[path = "common/targets.rs"]
mod targets;
use targets::{have, ok};

const INF: f32 = f32::INFINITY;
const NAN: f32 = f32::NAN;

/// The values every float → int cast converts.
const CAST_IN: [f32; 14] = [
    INF, -INF, NAN, 1e10, -1e10, 3e9, 300.0, -1.0, 2.7, -2.7, 65536.0, -40000.0, -0.0, 255.9,
];

/// The `(x, y, x^y)` rows of the Pow table (a run-time exponent).
const POW: [(f32, f32, f32); 28] = [
    (-0.0, -1.0, -INF),
    (0.0, -1.0, INF),
    (-0.0, -2.0, INF),
    (-0.0, 3.0, -0.0),
    (-0.0, 0.5, 0.0),
    (-INF, 0.5, INF),
    (-INF, -1.0, -0.0),
    (-INF, 3.0, -INF),
    (-INF, 2.0, INF),
    (INF, -2.0, 0.0),
    (1.0, NAN, 1.0),
    (NAN, 0.0, 1.0),
    (NAN, -0.0, 1.0),
    (-1.0, INF, 1.0),
    (-1.0, -INF, 1.0),
    (0.5, INF, 0.0),
    (0.5, -INF, INF),
    (2.0, INF, INF),
    (-2.0, -INF, 0.0),
    (-2.0, 3.0, -8.0),
    (-2.0, 2.0, 4.0),
    (-2.0, -1.0, -0.5),
    (-3.0, 5.0, -243.0),
    (-2.0, 0.5, NAN),
    (NAN, 1.0, NAN),
    (2.0, NAN, NAN),
    (-1.0, NAN, NAN),
    (2.0, 10.0, 1024.0),
];

/// The `(a, b, max, min)` rows of the Max/Min table.
const MAX_MIN: [(f32, f32, f32, f32); 6] = [
    (-0.0, 0.0, 0.0, -0.0),
    (0.0, -0.0, 0.0, -0.0),
    (-0.0, -0.0, -0.0, -0.0),
    (NAN, 1.0, NAN, NAN),
    (1.0, NAN, NAN, NAN),
    (-INF, INF, INF, -INF),
];

/// The `(a, b, fmod(a, b))` rows (`Mod` with `fmod=1`: the dividend's sign).
const FMOD: [(f32, f32, f32); 9] = [
    (-0.0, 1.0, -0.0),
    (0.0, 1.0, 0.0),
    (-5.0, 5.0, -0.0),
    (5.0, -5.0, 0.0),
    (-5.5, 2.0, -1.5),
    (5.0, 0.0, NAN),
    (5.0, INF, 5.0),
    (-5.0, -INF, -5.0),
    (INF, 2.0, NAN),
];

/// The `(a, b, Div, Mod, fmod)` rows of the i32 table.
const IDIV: [(i32, i32, i32, i32, i32); 8] = [
    (7, 0, 0, 0, 0),
    (-7, 0, 0, 0, 0),
    (0, 0, 0, 0, 0),
    (i32::MIN, -1, i32::MIN, 0, 0),
    (i32::MIN, 0, 0, 0, 0),
    (7, -2, -3, -1, 1),
    (-7, 2, -3, 1, -1),
    (7, 2, 3, 1, 1),
];

/// The `(x, amount, x << amount, x >> amount)` rows of the u32 BitShift table.
const SHIFT: [(u32, u32, u32, u32); 6] = [
    (1, 31, 0x8000_0000, 0),
    (1, 32, 0, 0),
    (0xFFFF_FFFF, 33, 0, 0),
    (0xFFFF_FFFF, u32::MAX, 0, 0),
    (0x8000_0000, 31, 0, 1),
    (3, 1, 6, 1),
];

/// The `(x, Round(x))` rows: half to even, signs and specials kept.
const ROUND: [(f32, f32); 11] = [
    (0.5, 0.0),
    (1.5, 2.0),
    (2.5, 2.0),
    (-0.5, -0.0),
    (-1.5, -2.0),
    (-2.5, -2.0),
    (2.499_999_8, 2.0),
    (-0.0, -0.0),
    (8_388_609.0, 8_388_609.0),
    (INF, INF),
    (NAN, NAN),
];

/// Sigmoid's inputs; the expected values come from [`sigmoid_table`].
const SIGMOID_IN: [f32; 14] = [
    1e-45, -1e-45, 1e-40, 0.0, -0.0, 100.0, 1000.0, INF, -INF, -90.0, -100.0, -103.0, -200.0, NAN,
];

/// Sigmoid as the table gives it: ½ for |x| below 2⁻²⁴ (subnormals
/// included), 1 from 17 up (e^-x vanishes next to 1), e^x rounded once for
/// x below -87.5 (where the result is subnormal, or 0), NaN stays.
fn sigmoid_table(x: f32) -> f32 {
    if x.is_nan() {
        NAN
    } else if x.abs() < 1.0 / 16_777_216.0 {
        0.5
    } else if x >= 17.0 {
        1.0
    } else if x < -87.5 {
        (x as f64).exp() as f32
    } else {
        panic!("{x} is not a Sigmoid case of the table")
    }
}

/// The model: one input per table, one output per case.
const MODEL: &str = "graph(%cx: f32[14], %ia: i32[8], %ib: i32[8], %su: u32[6], %ss: u32[6], \
%pa: f32[28], %pb: f32[28], %ma: f32[6], %mb: f32[6], %fa: f32[9], %fb: f32[9], %r: f32[11], \
%sg: f32[14], %sm: f32[2,3], %e: f32[2,0], %ei: i32[2,0], %rz: f32[2,2]) -> (%c_i8, %c_u8, \
%c_i16, %c_u16, %c_i32, %c_u32, %c_i64, %c_u64, %k_i32, %k_u8, %idiv, %imod, %ifmod, %shl, \
%shr, %pow, %max, %min, %fmod, %round, %sigmoid, %softmax, %sum, %max_e, %min_e, %prod, \
%mean, %isum, %imax, %imin, %iprod, %imean, %rmax, %rmin) {
  %k: f32[14] = const [inf, -inf, NaN, 1e10, -1e10, 3e9, 300.0, -1.0, 2.7, -2.7, 65536.0, -40000.0, -0.0, 255.9]
  %c_i8: i8[14] = Cast<to=i8>(%cx)
  %c_u8: u8[14] = Cast<to=u8>(%cx)
  %c_i16: i16[14] = Cast<to=i16>(%cx)
  %c_u16: u16[14] = Cast<to=u16>(%cx)
  %c_i32: i32[14] = Cast<to=i32>(%cx)
  %c_u32: u32[14] = Cast<to=u32>(%cx)
  %c_i64: i64[14] = Cast<to=i64>(%cx)
  %c_u64: u64[14] = Cast<to=u64>(%cx)
  %k_i32: i32[14] = Cast<to=i32>(%k)
  %k_u8: u8[14] = Cast<to=u8>(%k)
  %idiv: i32[8] = Div(%ia, %ib)
  %imod: i32[8] = Mod<fmod=0>(%ia, %ib)
  %ifmod: i32[8] = Mod<fmod=1>(%ia, %ib)
  %shl: u32[6] = BitShift<direction=LEFT>(%su, %ss)
  %shr: u32[6] = BitShift<direction=RIGHT>(%su, %ss)
  %pow: f32[28] = Pow(%pa, %pb)
  %max: f32[6] = Max(%ma, %mb)
  %min: f32[6] = Min(%ma, %mb)
  %fmod: f32[9] = Mod<fmod=1>(%fa, %fb)
  %round: f32[11] = Round(%r)
  %sigmoid: f32[14] = Sigmoid(%sg)
  %softmax: f32[2,3] = Softmax<axis=1>(%sm)
  %sum: f32[2] = ReduceSum<axes=[1], keepdims=0>(%e)
  %max_e: f32[2] = ReduceMax<axes=[1], keepdims=0>(%e)
  %min_e: f32[2] = ReduceMin<axes=[1], keepdims=0>(%e)
  %prod: f32[2] = ReduceProd<axes=[1], keepdims=0>(%e)
  %mean: f32[2] = ReduceMean<axes=[1], keepdims=0>(%e)
  %isum: i32[2] = ReduceSum<axes=[1], keepdims=0>(%ei)
  %imax: i32[2] = ReduceMax<axes=[1], keepdims=0>(%ei)
  %imin: i32[2] = ReduceMin<axes=[1], keepdims=0>(%ei)
  %iprod: i32[2] = ReduceProd<axes=[1], keepdims=0>(%ei)
  %imean: i32[2] = ReduceMean<axes=[1], keepdims=0>(%ei)
  %rmax: f32[2] = ReduceMax<axes=[1], keepdims=0>(%rz)
  %rmin: f32[2] = ReduceMin<axes=[1], keepdims=0>(%rz)
}
";

fn t<T: Elem>(shape: &[usize], v: Vec<T>) -> Tensor {
    Tensor::from_vec(shape.to_vec(), v).unwrap()
}

fn vec1<T: Elem>(v: Vec<T>) -> Tensor {
    t(&[v.len()], v)
}

/// The model's inputs, by name, in the graph's order.
fn inputs() -> Vec<(&'static str, Tensor)> {
    let col = |k: usize| -> Vec<f32> { POW.iter().map(|r| [r.0, r.1, r.2][k]).collect() };
    vec![
        ("cx", vec1(CAST_IN.to_vec())),
        ("ia", vec1(IDIV.iter().map(|r| r.0).collect())),
        ("ib", vec1(IDIV.iter().map(|r| r.1).collect())),
        ("su", vec1(SHIFT.iter().map(|r| r.0).collect())),
        ("ss", vec1(SHIFT.iter().map(|r| r.1).collect())),
        ("pa", vec1(col(0))),
        ("pb", vec1(col(1))),
        ("ma", vec1(MAX_MIN.iter().map(|r| r.0).collect())),
        ("mb", vec1(MAX_MIN.iter().map(|r| r.1).collect())),
        ("fa", vec1(FMOD.iter().map(|r| r.0).collect())),
        ("fb", vec1(FMOD.iter().map(|r| r.1).collect())),
        ("r", vec1(ROUND.iter().map(|r| r.0).collect())),
        ("sg", vec1(SIGMOID_IN.to_vec())),
        ("sm", t(&[2, 3], vec![-INF, -INF, -INF, 0.0, -INF, 0.0])),
        ("e", t(&[2, 0], Vec::<f32>::new())),
        ("ei", t(&[2, 0], Vec::<i32>::new())),
        ("rz", t(&[2, 2], vec![-0.0f32, 0.0, 0.0, -0.0])),
    ]
}

/// Every output the table gives, by name.
fn expected() -> Vec<(&'static str, Tensor)> {
    // Float → int casts saturate like Rust's `as` (NaN → 0): the table's rule.
    let c = CAST_IN;
    vec![
        ("c_i8", vec1(c.iter().map(|&v| v as i8).collect())),
        ("c_u8", vec1(c.iter().map(|&v| v as u8).collect())),
        ("c_i16", vec1(c.iter().map(|&v| v as i16).collect())),
        ("c_u16", vec1(c.iter().map(|&v| v as u16).collect())),
        ("c_i32", vec1(c.iter().map(|&v| v as i32).collect())),
        ("c_u32", vec1(c.iter().map(|&v| v as u32).collect())),
        ("c_i64", vec1(c.iter().map(|&v| v as i64).collect())),
        ("c_u64", vec1(c.iter().map(|&v| v as u64).collect())),
        // A folded constant casts the same way.
        ("k_i32", vec1(c.iter().map(|&v| v as i32).collect())),
        ("k_u8", vec1(c.iter().map(|&v| v as u8).collect())),
        ("idiv", vec1(IDIV.iter().map(|r| r.2).collect())),
        ("imod", vec1(IDIV.iter().map(|r| r.3).collect())),
        ("ifmod", vec1(IDIV.iter().map(|r| r.4).collect())),
        ("shl", vec1(SHIFT.iter().map(|r| r.2).collect())),
        ("shr", vec1(SHIFT.iter().map(|r| r.3).collect())),
        ("pow", vec1(POW.iter().map(|r| r.2).collect())),
        ("max", vec1(MAX_MIN.iter().map(|r| r.2).collect())),
        ("min", vec1(MAX_MIN.iter().map(|r| r.3).collect())),
        ("fmod", vec1(FMOD.iter().map(|r| r.2).collect())),
        ("round", vec1(ROUND.iter().map(|r| r.1).collect())),
        (
            "sigmoid",
            vec1(SIGMOID_IN.iter().map(|&x| sigmoid_table(x)).collect()),
        ),
        // An all −∞ row is NaN (e^(−∞ − (−∞))); −∞ elsewhere gives 0.
        ("softmax", t(&[2, 3], vec![NAN, NAN, NAN, 0.5, 0.0, 0.5])),
        // Empty reductions give the identity; the mean of nothing is NaN
        // for floats and 0 for integers.
        ("sum", vec1(vec![0.0f32; 2])),
        ("max_e", vec1(vec![-INF; 2])),
        ("min_e", vec1(vec![INF; 2])),
        ("prod", vec1(vec![1.0f32; 2])),
        ("mean", vec1(vec![NAN; 2])),
        ("isum", vec1(vec![0i32; 2])),
        ("imax", vec1(vec![i32::MIN; 2])),
        ("imin", vec1(vec![i32::MAX; 2])),
        ("iprod", vec1(vec![1i32; 2])),
        ("imean", vec1(vec![0i32; 2])),
        ("rmax", vec1(vec![0.0f32; 2])),
        ("rmin", vec1(vec![-0.0f32; 2])),
    ]
}

fn graph() -> Graph {
    smelt_ir::parse(MODEL).unwrap_or_else(|e| panic!("the semantics model: {e}"))
}

/// Panics unless `got` is `want` bit for bit (any NaN matching any NaN),
/// naming the first element that differs.
fn check(got: &Tensor, want: &Tensor, what: &str) {
    assert_eq!(got.dtype(), want.dtype(), "{what}: dtype");
    assert_eq!(got.shape(), want.shape(), "{what}: shape");
    let n = want.shape().iter().product::<usize>();
    let size = want.dtype().elem_bytes();
    let (g, w) = (got.to_le_bytes(), want.to_le_bytes());
    for j in 0..n {
        let (a, b) = (&g[j * size..][..size], &w[j * size..][..size]);
        let nan = |x: &[u8]| f32::from_le_bytes(x.try_into().unwrap()).is_nan();
        let both_nan = want.dtype() == DType::F32 && nan(a) && nan(b);
        assert!(
            a == b || both_nan,
            "{what}: element {j}: got {:?}, the table says {:?}",
            got.to_f64_vec()[j],
            want.to_f64_vec()[j]
        );
    }
}

/// Checks every output of one run (`outs` by name) against the table.
fn check_all(outs: impl Fn(&str) -> Tensor, what: &str) {
    for (name, want) in expected() {
        check(&outs(name), &want, &format!("{what}: {name}"));
    }
}

#[test]
fn the_interpreter_follows_the_table() {
    let g = graph();
    let ins = inputs().into_iter().map(|(_, t)| t).collect();
    let outs = Interpreter::new(&g).run(ins).unwrap();
    let names: Vec<String> = g.outputs.iter().map(|&v| g.value(v).name.clone()).collect();
    check_all(
        |n| outs[names.iter().position(|m| m == n).unwrap()].clone(),
        "the interpreter",
    );
}

/// Compiles the model for `target` with `backend`, runs it (under `runner`;
/// `"firmware"` is the Cortex-M4F under `qemu-system-arm`) and checks every
/// output against the table.
fn check_native(backend: Backend, target: &str, runner: Option<&str>) {
    let name = backend.name();
    let dir = targets::scratch("semantics", &format!("{target}-{name}"));
    let exe = dir.join("model");
    let opts = CompileOptions::new(target, backend, &exe)
        .unwrap()
        .emit(Emit::Exe);
    smelt::compile(&graph(), &opts).unwrap_or_else(|e| panic!("compile for {target}: {e}"));
    let mut args = String::new();
    for (n, t) in inputs() {
        write_npy(&dir.join(format!("{n}.npy")), &t).unwrap();
        args.push_str(&format!("--input {n}={n}.npy "));
    }
    args.push_str("-o out");
    std::fs::create_dir_all(dir.join("out")).unwrap();
    let what = format!("{target} ({name})");
    ok(targets::run_in(&exe, runner, &dir, &args), &what);
    let read = |n: &str| {
        let path = dir.join("out").join(format!("{n}.npy"));
        read_npy(&path, &Limits::default()).unwrap()
    };
    check_all(read, &what);
    let _ = std::fs::remove_dir_all(&dir);
}

fn llvm() -> Backend {
    Backend::Llvm(LlvmConfig::default())
}

#[test]
fn x86_64_follows_the_table() {
    check_native(Backend::Cranelift, "x86_64-unknown-linux-gnu", None);
    check_native(llvm(), "x86_64-unknown-linux-gnu", None);
}

#[test]
fn aarch64_follows_the_table() {
    if have("qemu-aarch64", "the aarch64 semantics test") {
        let t = "aarch64-unknown-linux-gnu";
        check_native(Backend::Cranelift, t, Some("qemu-aarch64"));
        check_native(llvm(), t, Some("qemu-aarch64"));
    }
}

#[test]
fn armv7_follows_the_table() {
    if have("qemu-arm", "the armv7 semantics test") {
        check_native(llvm(), "armv7-unknown-linux-gnueabihf", Some("qemu-arm"));
    }
}

#[test]
fn the_cortex_m4f_follows_the_table() {
    if have("qemu-system-arm", "the Cortex-M4F semantics test") {
        check_native(llvm(), "thumbv7em-none-eabihf", Some("firmware"));
    }
}
