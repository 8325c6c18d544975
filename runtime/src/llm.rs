//! The descriptor (`smelt_llm_descriptor`) of a chat executable (`c/llm.h`): what the
//! chat runtime knows of its model beyond the step functions, written by
//! the compiler as read-only data. The layout is `c/llm.h`'s, version
//! [`VERSION`]; this is its one writer.

/// `SMELT_LLM_MAGIC`: "SMLM".
pub const MAGIC: u32 = 0x4D4C_4D53;
/// `SMELT_LLM_VERSION`.
pub const VERSION: u32 = 1;
/// `SMELT_LLM_WORDS`: the header's u32 count.
pub const WORDS: usize = 20;
/// `SMELT_LLM_MAX_EOS`: end-of-generation ids the descriptor holds.
pub const MAX_EOS: usize = 8;

/// What the descriptor says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Descriptor<'a> {
    /// Vocabulary size (the logits' width).
    pub vocab: u32,
    /// KV cache capacity in tokens.
    pub ctx: u32,
    /// Tokens per prefill step; 0 when there is no prefill model.
    pub chunk: u32,
    /// Tokens that end generation (at most [`MAX_EOS`]).
    pub eos: Vec<u32>,
    /// The tokenizer table (`c/tokenizer.h`).
    pub tokenizer: &'a [u8],
    /// The chat template blob, empty when the model has none.
    pub chat_template: &'a [u8],
}

/// Why a descriptor cannot be written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DescriptorError(pub String);

impl std::fmt::Display for DescriptorError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DescriptorError {}

impl Descriptor<'_> {
    /// The descriptor's bytes: the header, then the tokenizer table and the
    /// chat template, each at a multiple of 8.
    pub fn to_bytes(&self) -> Result<Vec<u8>, DescriptorError> {
        if self.eos.len() > MAX_EOS {
            return Err(DescriptorError(format!(
                "{} end-of-generation tokens; a chat program holds at most {MAX_EOS}",
                self.eos.len()
            )));
        }
        let pad8 = |n: usize| n.div_ceil(8) * 8;
        let tok_off = pad8(WORDS * 4);
        let chat_off = pad8(tok_off + self.tokenizer.len());
        let total = chat_off + self.chat_template.len();
        let u32_of = |n: usize, what: &str| {
            u32::try_from(n)
                .map_err(|_| DescriptorError(format!("the {what} ({n} bytes) is over 4 GiB")))
        };
        let mut h = [0u32; WORDS];
        h[0] = MAGIC;
        h[1] = VERSION;
        h[2] = self.vocab;
        h[3] = self.ctx;
        h[4] = self.chunk;
        h[5] = self.eos.len() as u32;
        h[6..6 + self.eos.len()].copy_from_slice(&self.eos);
        h[14] = u32_of(tok_off, "descriptor")?;
        h[15] = u32_of(self.tokenizer.len(), "tokenizer table")?;
        h[16] = u32_of(chat_off, "descriptor")?;
        h[17] = u32_of(self.chat_template.len(), "chat template")?;
        u32_of(total, "descriptor")?;
        let mut out = Vec::with_capacity(total);
        for w in h {
            out.extend_from_slice(&w.to_le_bytes());
        }
        out.resize(tok_off, 0);
        out.extend_from_slice(self.tokenizer);
        out.resize(chat_off, 0);
        out.extend_from_slice(self.chat_template);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_llm_h() {
        let d = Descriptor {
            vocab: 32000,
            ctx: 256,
            chunk: 16,
            eos: vec![2, 7],
            tokenizer: &[1, 2, 3],
            chat_template: &[9; 5],
        };
        let b = d.to_bytes().unwrap();
        let w = |i: usize| u32::from_le_bytes(b[4 * i..4 * i + 4].try_into().unwrap());
        assert_eq!(&b[..4], b"SMLM");
        assert_eq!((w(1), w(2), w(3), w(4), w(5)), (1, 32000, 256, 16, 2));
        assert_eq!((w(6), w(7)), (2, 7));
        let (to, tl, co, cl) = (
            w(14) as usize,
            w(15) as usize,
            w(16) as usize,
            w(17) as usize,
        );
        assert_eq!((to % 8, co % 8), (0, 0));
        assert_eq!(&b[to..to + tl], &[1, 2, 3]);
        assert_eq!(&b[co..co + cl], &[9; 5]);
        assert_eq!(b.len(), co + cl);
        let too_many = Descriptor {
            eos: vec![0; 9],
            ..d
        };
        assert!(too_many.to_bytes().is_err());
    }
}
