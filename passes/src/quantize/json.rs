//! [`QuantizeReport`] as JSON (`--quantize-report FILE.json`), written by
//! hand: one object with the scheme, the sizes, each stored weight, the
//! nodes kept f32, the int8 nodes with their calibrated ranges and the
//! accuracy against the float model (non-finite numbers become `null`).

use std::fmt::Write;

use super::QuantizeReport;

/// A JSON string literal.
fn string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A JSON number (`null` when not finite); `{:e}` round-trips an f64.
fn number(x: f64) -> String {
    if x.is_finite() {
        format!("{x:e}")
    } else {
        "null".into()
    }
}

fn array(items: impl IntoIterator<Item = String>) -> String {
    format!("[{}]", items.into_iter().collect::<Vec<_>>().join(", "))
}

fn object(fields: &[(&str, String)]) -> String {
    let f: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("{}: {v}", string(k)))
        .collect();
    format!("{{{}}}", f.join(", "))
}

/// The report as one JSON object.
pub fn to_json(r: &QuantizeReport) -> String {
    let weights = r.weights.iter().map(|w| {
        object(&[
            ("node", string(&w.node)),
            ("weight", string(&w.weight)),
            ("shape", array(w.shape.iter().map(usize::to_string))),
            ("bytes_before", w.before.to_string()),
            ("bytes_after", w.after.to_string()),
            ("encoding", string(&w.encoding)),
            (
                "fallback",
                w.fallback.as_deref().map_or("null".into(), string),
            ),
        ])
    });
    let kept = r
        .kept
        .iter()
        .map(|(n, why)| object(&[("node", string(n)), ("reason", string(why))]));
    let range = |((lo, hi), s, z): ((f32, f32), f32, u8)| {
        object(&[
            ("min", number(lo as f64)),
            ("max", number(hi as f64)),
            ("scale", number(s as f64)),
            ("zero_point", z.to_string()),
        ])
    };
    let int8 = r.int8.iter().map(|n| {
        object(&[
            ("node", string(&n.node)),
            ("op", string(n.op)),
            ("input", range(n.input)),
            ("output", n.output.map_or("null".into(), range)),
        ])
    });
    let accuracy = r.accuracy.iter().map(|a| {
        let outs = a.outputs.iter().map(|o| {
            object(&[
                ("output", string(&o.output)),
                ("nmse", number(o.nmse)),
                ("cosine", number(o.cosine)),
                ("max_abs", number(o.max_abs)),
                ("top1", o.top1.map_or("null".into(), number)),
            ])
        });
        object(&[
            ("set", string(&a.set)),
            ("samples", a.samples.to_string()),
            ("outputs", array(outs)),
        ])
    });
    object(&[
        ("scheme", string(&r.scheme)),
        ("calib", r.calib.as_deref().map_or("null".into(), string)),
        ("bytes_before", r.before().to_string()),
        ("bytes_after", r.after().to_string()),
        ("weights", array(weights)),
        ("kept", array(kept)),
        ("int8", array(int8)),
        ("accuracy", array(accuracy)),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_numbers() {
        assert_eq!(string("a\"b\\c\n\u{1}"), "\"a\\\"b\\\\c\\n\\u0001\"");
        assert_eq!(number(0.25), "2.5e-1");
        assert_eq!(number(f64::NAN), "null");
        let r = QuantizeReport {
            scheme: "int8".into(),
            ..QuantizeReport::default()
        };
        assert_eq!(
            to_json(&r),
            "{\"scheme\": \"int8\", \"calib\": null, \"bytes_before\": 0, \"bytes_after\": 0, \"weights\": [], \"kept\": [], \"int8\": [], \"accuracy\": []}"
        );
    }
}
