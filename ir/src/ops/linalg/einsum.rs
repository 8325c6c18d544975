//! `Einsum`: the equation parser, a contraction plan that orders pairwise
//! products, and the kernel that runs it on the shared product kernel.

use std::collections::BTreeSet;

use super::kernel::{Acc, NumKernel, eval_numeric};
use super::matmul::{MatmulDims, batched_matmul};
use super::{Linalg, numeric_dtype, ty};
use crate::error::{Error, Result};
use crate::graph::TensorType;
use crate::ops::{InferInput, ParseCtx, req};
use crate::shape::{Shape, numel, strides};
use crate::tensor::Tensor;
use crate::{shape_err, type_err};

/// One subscript of an einsum term.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sub {
    /// A letter.
    Label(u8),
    /// `...`.
    Ellipsis,
}

/// A parsed einsum equation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EinsumEq {
    /// The equation as written (whitespace removed).
    pub text: String,
    /// One term per operand.
    pub inputs: Vec<Vec<Sub>>,
    /// The explicit output term (`None` in implicit mode).
    pub output: Option<Vec<Sub>>,
}

/// Parses an `Einsum` node.
pub(super) fn parse_einsum(ctx: &ParseCtx<'_>) -> Result<Linalg> {
    let text = ctx
        .attrs
        .string_opt("equation")?
        .ok_or_else(|| Error::attr("equation", "is required"))?;
    Ok(Linalg::Einsum(EinsumEq::parse(&text)?))
}

/// Label ids: letters are their ASCII code; ellipsis dims are
/// `ELLIPSIS_BASE + i` for the `i`-th broadcast dim (right-aligned).
const ELLIPSIS_BASE: u32 = 1000;

impl EinsumEq {
    /// Parses an equation such as `"bij,bjk->bik"` or `"...ii"`.
    pub fn parse(text: &str) -> Result<EinsumEq> {
        let bad = |msg: String| Error::attr("equation", msg);
        let text: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        let (lhs, rhs) = match text.split_once("->") {
            Some((l, r)) => (l, Some(r)),
            None => (text.as_str(), None),
        };
        let term = |s: &str| -> Result<Vec<Sub>> {
            let mut out = Vec::new();
            let bytes = s.as_bytes();
            let mut i = 0;
            while i < bytes.len() {
                match bytes[i] {
                    c if c.is_ascii_alphabetic() => {
                        out.push(Sub::Label(c));
                        i += 1;
                    }
                    b'.' if bytes[i..].starts_with(b"...") => {
                        if out.contains(&Sub::Ellipsis) {
                            return Err(bad(format!("term '{s}' has more than one ellipsis")));
                        }
                        out.push(Sub::Ellipsis);
                        i += 3;
                    }
                    _ => {
                        return Err(bad(format!(
                            "'{text}' has an invalid character in term '{s}'"
                        )));
                    }
                }
            }
            Ok(out)
        };
        let inputs = lhs.split(',').map(term).collect::<Result<Vec<_>>>()?;
        let output = rhs.map(term).transpose()?;
        if let Some(out) = &output {
            let mut seen = BTreeSet::new();
            for s in out {
                if let Sub::Label(c) = s
                    && !seen.insert(*c)
                {
                    return Err(bad(format!(
                        "output subscript '{}' appears twice",
                        *c as char
                    )));
                }
            }
        }
        Ok(EinsumEq {
            text,
            inputs,
            output,
        })
    }

    /// Resolves the equation against operand shapes.
    fn plan(&self, shapes: &[&[usize]]) -> Result<EinsumPlan> {
        if shapes.len() != self.inputs.len() {
            shape_err!(
                "equation '{}' has {} terms but {} operands were given",
                self.text,
                self.inputs.len(),
                shapes.len()
            );
        }
        // Broadcast dims covered by each operand's ellipsis.
        let mut ell = Vec::with_capacity(shapes.len());
        for (term, shape) in self.inputs.iter().zip(shapes) {
            let letters = term.iter().filter(|s| matches!(s, Sub::Label(_))).count();
            let has_ell = term.contains(&Sub::Ellipsis);
            if shape.len() < letters || (!has_ell && shape.len() != letters) {
                shape_err!(
                    "operand of shape {shape:?} does not fit einsum term of {letters} subscripts in '{}'",
                    self.text
                );
            }
            ell.push(shape.len() - letters);
        }
        let r = ell.iter().copied().max().unwrap_or(0);
        let mut sizes = std::collections::BTreeMap::<u32, usize>::new();
        let mut counts = std::collections::BTreeMap::<u32, usize>::new();
        let mut operands = Vec::with_capacity(shapes.len());
        for ((term, shape), &e) in self.inputs.iter().zip(shapes).zip(&ell) {
            let mut labels = Vec::with_capacity(shape.len());
            for s in term {
                match s {
                    Sub::Label(c) => labels.push(*c as u32),
                    Sub::Ellipsis => labels.extend((r - e..r).map(|i| ELLIPSIS_BASE + i as u32)),
                }
            }
            for (ax, (&l, &d)) in labels.iter().zip(shape.iter()).enumerate() {
                if labels[..ax].contains(&l) {
                    let first = shape[labels.iter().position(|&x| x == l).unwrap_or(0)];
                    if first != d {
                        shape_err!(
                            "repeated subscript '{}' has sizes {first} and {d} in one operand",
                            label_name(l)
                        );
                    }
                }
                // NumPy's implicit output counts every occurrence, so "ii" is a trace.
                *counts.entry(l).or_insert(0) += 1;
                let s = sizes.entry(l).or_insert(d);
                if *s == 1 {
                    *s = d;
                } else if d != 1 && d != *s {
                    shape_err!("subscript '{}' has sizes {} and {d}", label_name(l), *s);
                }
            }
            operands.push(labels);
        }
        let output: Vec<u32> = match &self.output {
            Some(out) => {
                if r > 0 && !out.contains(&Sub::Ellipsis) {
                    shape_err!(
                        "operands have broadcast dims but the output of '{}' has no ellipsis",
                        self.text
                    );
                }
                let mut v = Vec::new();
                for s in out {
                    match s {
                        Sub::Label(c) => {
                            if !sizes.contains_key(&(*c as u32)) {
                                shape_err!(
                                    "output subscript '{}' appears in no operand",
                                    *c as char
                                );
                            }
                            v.push(*c as u32);
                        }
                        Sub::Ellipsis => v.extend((0..r).map(|i| ELLIPSIS_BASE + i as u32)),
                    }
                }
                v
            }
            None => {
                // NumPy's implicit mode: the broadcast dims, then the letters
                // used exactly once, in ASCII order (upper case first).
                let mut v: Vec<u32> = (0..r).map(|i| ELLIPSIS_BASE + i as u32).collect();
                v.extend(
                    counts
                        .iter()
                        .filter(|&(&l, &c)| l < ELLIPSIS_BASE && c == 1)
                        .map(|(&l, _)| l),
                );
                v
            }
        };
        let out_shape = output.iter().map(|l| sizes[l]).collect();
        Ok(EinsumPlan {
            operands,
            output,
            out_shape,
        })
    }
}

fn label_name(l: u32) -> String {
    if l < ELLIPSIS_BASE {
        (l as u8 as char).to_string()
    } else {
        "...".into()
    }
}

struct EinsumPlan {
    operands: Vec<Vec<u32>>,
    output: Vec<u32>,
    out_shape: Shape,
}

/// A tensor whose axes carry einsum labels.
struct Lt<A> {
    labels: Vec<u32>,
    shape: Shape,
    data: Vec<A>,
}

/// Every flat offset `Σ idx_i * stride_i` over the index space of `dims`
/// (`(size, stride)` pairs), in row-major order.
fn offsets(dims: &[(usize, usize)]) -> Vec<usize> {
    let n: usize = dims.iter().map(|d| d.0).product();
    let mut v = Vec::with_capacity(n);
    if n == 0 {
        return v;
    }
    let mut idx = vec![0usize; dims.len()];
    let mut off = 0usize;
    for _ in 0..n {
        v.push(off);
        for ax in (0..dims.len()).rev() {
            idx[ax] += 1;
            off += dims[ax].1;
            if idx[ax] < dims[ax].0 {
                break;
            }
            off -= dims[ax].1 * idx[ax];
            idx[ax] = 0;
        }
    }
    v
}

impl<A: Acc> Lt<A> {
    /// Size and stride sum of label `l` (the sum takes diagonals of repeated labels).
    fn dim(&self, l: u32, st: &[usize]) -> (usize, usize) {
        let mut size = 1;
        let mut stride = 0;
        for (ax, &x) in self.labels.iter().enumerate() {
            if x == l {
                size = self.shape[ax];
                stride += st[ax];
            }
        }
        (size, stride)
    }

    fn size(&self, l: u32) -> usize {
        self.labels
            .iter()
            .position(|&x| x == l)
            .map(|ax| self.shape[ax])
            .unwrap_or(1)
    }

    fn unique_labels(&self) -> Vec<u32> {
        let mut v: Vec<u32> = Vec::new();
        for &l in &self.labels {
            if !v.contains(&l) {
                v.push(l);
            }
        }
        v
    }

    /// The tensor with axes `keep` (each a label of `self`, in that order),
    /// summing over the other labels and taking diagonals of repeated ones.
    fn reduce_to(self, keep: &[u32]) -> Lt<A> {
        if keep == self.labels.as_slice() {
            return self;
        }
        let st = strides(&self.shape);
        let out: Vec<(usize, usize)> = keep.iter().map(|&l| self.dim(l, &st)).collect();
        let red: Vec<(usize, usize)> = self
            .unique_labels()
            .into_iter()
            .filter(|l| !keep.contains(l))
            .map(|l| self.dim(l, &st))
            .collect();
        let ro = offsets(&red);
        let data = offsets(&out)
            .into_iter()
            .map(|o| {
                ro.iter()
                    .fold(A::ZERO, |acc, &r| acc.plus(self.data[o + r]))
            })
            .collect();
        Lt {
            labels: keep.to_vec(),
            shape: out.iter().map(|d| d.0).collect(),
            data,
        }
    }

    /// Contracts `self` with `y`, keeping the labels in `keep` (needed by the
    /// output or a later operand) and summing over the others.
    fn contract(self, y: Lt<A>, keep: &[u32]) -> Result<Lt<A>> {
        let (xl, yl) = (self.unique_labels(), y.unique_labels());
        // A shared label that is summed away contracts as a matmul dimension
        // when both sides have the same size; when one side broadcasts it
        // (size 1) that side does not depend on it and the other sums it alone.
        let contractable =
            |l: &u32| xl.contains(l) && yl.contains(l) && self.size(*l) == y.size(*l);
        let xk: Vec<u32> = xl
            .iter()
            .copied()
            .filter(|l| keep.contains(l) || contractable(l))
            .collect();
        let yk: Vec<u32> = yl
            .iter()
            .copied()
            .filter(|l| keep.contains(l) || contractable(l))
            .collect();
        let batch: Vec<u32> = xk
            .iter()
            .copied()
            .filter(|l| yk.contains(l) && keep.contains(l))
            .collect();
        let kdim: Vec<u32> = xk
            .iter()
            .copied()
            .filter(|l| yk.contains(l) && !keep.contains(l))
            .collect();
        let xo: Vec<u32> = xk.iter().copied().filter(|l| !yk.contains(l)).collect();
        let yo: Vec<u32> = yk.iter().copied().filter(|l| !xk.contains(l)).collect();
        let cat = |a: &[u32], b: &[u32], c: &[u32]| -> Vec<u32> { [a, b, c].concat() };
        let x = self.reduce_to(&cat(&batch, &xo, &kdim));
        let y = y.reduce_to(&cat(&batch, &kdim, &yo));
        let nb = batch.len();
        let a_batch: Shape = x.shape[..nb].to_vec();
        let b_batch: Shape = y.shape[..nb].to_vec();
        // The plan checked that batch sizes agree or are 1.
        let out_batch: Shape = a_batch
            .iter()
            .zip(&b_batch)
            .map(|(&p, &q)| if p == 1 { q } else { p })
            .collect();
        let m: usize = x.shape[nb..nb + xo.len()].iter().product();
        let k: usize = kdim.iter().map(|&l| x.size(l)).product();
        let n: usize = y.shape[nb + kdim.len()..].iter().product();
        let dims = MatmulDims {
            m,
            k,
            n,
            a_batch,
            b_batch,
            batch: out_batch.clone(),
            out: vec![],
        };
        let mut shape = out_batch;
        shape.extend_from_slice(&x.shape[nb..nb + xo.len()]);
        shape.extend_from_slice(&y.shape[nb + kdim.len()..]);
        // The intermediate can be larger than every operand ("i,j,ik,jk").
        numel(&shape)?;
        let data = batched_matmul(&x.data, &y.data, &dims);
        Ok(Lt {
            labels: cat(&batch, &xo, &yo),
            shape,
            data,
        })
    }
}

struct EinsumKernel<'a> {
    plan: &'a EinsumPlan,
    shapes: Vec<Shape>,
}

impl NumKernel for EinsumKernel<'_> {
    fn run<A: Acc>(&self, ins: &[&[A]]) -> Result<Vec<A>> {
        let p = self.plan;
        let lt = |i: usize| Lt {
            labels: p.operands[i].clone(),
            shape: self.shapes[i].clone(),
            data: ins[i].to_vec(),
        };
        let mut cur = lt(0);
        for i in 1..ins.len() {
            let mut keep: Vec<u32> = p.output.clone();
            for later in &p.operands[i + 1..] {
                keep.extend_from_slice(later);
            }
            cur = cur.contract(lt(i), &keep)?;
        }
        Ok(cur.reduce_to(&p.output).data)
    }
}

/// The shape rule of `Einsum`.
pub(super) fn infer_einsum(
    e: &EinsumEq,
    inputs: &[Option<InferInput<'_>>],
) -> Result<Vec<TensorType>> {
    if inputs.is_empty() {
        shape_err!("Einsum needs at least one operand");
    }
    let tys: Vec<&TensorType> = (0..inputs.len())
        .map(|i| ty(inputs, i, "Inputs"))
        .collect::<Result<_>>()?;
    numeric_dtype(tys[0].dtype, "Einsum")?;
    if let Some(t) = tys.iter().find(|t| t.dtype != tys[0].dtype) {
        type_err!(
            "operands have different dtypes {} and {}",
            tys[0].dtype,
            t.dtype
        );
    }
    let shapes: Vec<&[usize]> = tys.iter().map(|t| t.shape.as_slice()).collect();
    Ok(vec![TensorType::new(
        tys[0].dtype,
        e.plan(&shapes)?.out_shape,
    )])
}

/// Evaluates `Einsum`.
pub(super) fn eval_einsum(e: &EinsumEq, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>> {
    let ins: Vec<&Tensor> = (0..inputs.len())
        .map(|i| req(inputs, i, "Inputs"))
        .collect::<Result<_>>()?;
    let shapes: Vec<&[usize]> = ins.iter().map(|t| t.shape()).collect();
    let plan = e.plan(&shapes)?;
    let kern = EinsumKernel {
        plan: &plan,
        shapes: shapes.iter().map(|s| s.to_vec()).collect(),
    };
    Ok(vec![eval_numeric(&kern, &ins, plan.out_shape.clone())?])
}

/// The multiply-adds of `Einsum`.
pub(super) fn macs_einsum(e: &EinsumEq, inputs: &[Option<&TensorType>]) -> u64 {
    // The size of the full index space: an upper bound of the work.
    let shapes: Vec<&[usize]> = inputs
        .iter()
        .flatten()
        .map(|t| t.shape.as_slice())
        .collect();
    match e.plan(&shapes) {
        Ok(p) => {
            let mut seen = BTreeSet::new();
            let mut n = 1u64;
            for (labels, shape) in p.operands.iter().zip(&shapes) {
                for (&l, &d) in labels.iter().zip(shape.iter()) {
                    if seen.insert(l) {
                        n = n.saturating_mul(d as u64);
                    }
                }
            }
            n
        }
        Err(_) => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::linalg::test_util::*;

    #[test]
    fn einsum_forms() {
        let a = t(&[2, 3], &[1., 2., 3., 4., 5., 6.]);
        let b = t(&[3, 2], &[1., 0., 0., 1., 1., 1.]);
        let ab = t(&[2, 2], &[4., 5., 10., 11.]);
        assert_eq!(einsum("ij,jk->ik", &[&a, &b]), ab);
        assert_eq!(einsum("ij,jk", &[&a, &b]), ab);
        assert_eq!(
            einsum("ij->ji", &[&a]),
            t(&[3, 2], &[1., 4., 2., 5., 3., 6.])
        );
        assert_eq!(einsum("ij->", &[&a]), t(&[], &[21.]));
        assert_eq!(einsum("ij->j", &[&a]), t(&[3], &[5., 7., 9.]));
        let sq = t(&[3, 3], &[1., 2., 3., 4., 5., 6., 7., 8., 9.]);
        assert_eq!(einsum("ii->i", &[&sq]), t(&[3], &[1., 5., 9.]));
        assert_eq!(einsum("ii", &[&sq]), t(&[], &[15.]));
        let v = t(&[3], &[1., 2., 3.]);
        assert_eq!(einsum("i,i", &[&v, &v]), t(&[], &[14.]));
        assert_eq!(
            einsum("i,j->ij", &[&v, &t(&[2], &[1., -1.])]),
            t(&[3, 2], &[1., -1., 2., -2., 3., -3.])
        );
        // Implicit output sorts letters: "ba" on [2,3] gives the transpose "ab".
        assert_eq!(einsum("ba", &[&a]), t(&[3, 2], &[1., 4., 2., 5., 3., 6.]));
        // Ellipsis with broadcasting batch dims.
        let x = t(&[2, 1, 2], &[1., 2., 3., 4.]);
        let y = t(&[2, 1], &[1., 1.]);
        assert_eq!(
            einsum("...ij,jk->...ik", &[&x, &y]),
            t(&[2, 1, 1], &[3., 7.])
        );
        // A size-1 contracted subscript broadcasts against the other operand.
        let c1 = t(&[2, 1], &[1., 2.]);
        assert_eq!(
            einsum("ij,jk->ik", &[&c1, &t(&[3, 1], &[1., 2., 3.])]),
            t(&[2, 1], &[6., 12.])
        );
        // Three operands.
        assert_eq!(einsum("i,i,i->", &[&v, &v, &v]), t(&[], &[36.]));
        // Integers.
        let iv = Tensor::from_vec(vec![2, 2], vec![1i32, 2, 3, 4]).unwrap();
        assert_eq!(
            einsum("ij,jk->ik", &[&iv, &iv]),
            Tensor::from_vec(vec![2, 2], vec![7i32, 10, 15, 22]).unwrap()
        );
    }

    #[test]
    fn einsum_errors() {
        assert!(EinsumEq::parse("ij,jk->ik->i").is_err());
        assert!(EinsumEq::parse("i1").is_err());
        assert!(EinsumEq::parse("ij->ii").is_err());
        let e = EinsumEq::parse("ij,jk->ik").unwrap();
        assert!(e.plan(&[&[2, 3], &[4, 5]]).is_err());
        assert!(e.plan(&[&[2, 3]]).is_err());
        assert!(EinsumEq::parse("ij->k").unwrap().plan(&[&[2, 3]]).is_err());
        assert!(EinsumEq::parse("ii->i").unwrap().plan(&[&[2, 3]]).is_err());
        assert!(
            EinsumEq::parse("...i->i")
                .unwrap()
                .plan(&[&[2, 3]])
                .is_err()
        );
    }
}
