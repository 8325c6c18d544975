//! Chat templates: a checkpoint's Jinja chat template (`tokenizer_config.json`
//! `chat_template`, GGUF `tokenizer.chat_template`) is recognised as one of
//! a few known formats ([`ChatFormat`]) from its distinctive markers, never
//! interpreted, and becomes a [`ChatTemplate`]: fixed strings around each
//! message, so that a conversation is rendered by concatenation alone, in
//! Rust ([`ChatTemplate::render`]) or by the runtime's C chat driver from
//! [`ChatTemplate::blob`]. A template of any other format, or a variant of a
//! known one whose strings are not known here, is refused with
//! [`TokenizerError::ChatTemplate`] rather than guessed.
//!
//! # Rendering
//!
//! ```text
//! prefix
//! [system_prefix SYSTEM system_suffix]               (Native system support)
//! for each turn:
//!   user:      user_prefix [system_prefix SYSTEM system_suffix] TEXT user_suffix
//!              (the bracket only in the first user turn, MergedIntoFirstUser)
//!   assistant: assistant_prefix TEXT assistant_suffix
//! generation_prompt                                  (when asked)
//! closing           (when not asked and the last turn is the assistant's)
//! ```
//!
//! SYSTEM is the caller's system prompt or else the template's
//! `default_system`; with neither, the bracketed parts are left out.
//! Templates that have no place for a system message (Gemma, Mistral, the
//! first Phi-3-mini) get it merged into the first user message followed by a
//! blank line, as llama.cpp does for Gemma. Message text is written as
//! given: templates that strip or trim it (Llama 2, Llama 3, Gemma) agree
//! when it has no leading or trailing whitespace.
//!
//! The strings hold special-token text (`<|im_start|>`, `</s>`): the runtime
//! encodes the rendered text with `SMELT_TOK_PARSE_SPECIAL` so that they
//! become their tokens.
//!
//! # BOS
//!
//! A conversation starts with exactly one BOS token, or none, as in
//! llama.cpp: when the template writes the BOS text itself (`{{ bos_token }}`
//! first, or Llama 2's `bos_token + '[INST] '` per user turn),
//! [`ChatTemplate::bos_in_text`] is set, the rendering holds that text (as
//! Jinja renders it), and the driver must not add another; otherwise the
//! driver prepends the BOS token exactly when the tokenizer's add-BOS flag is
//! set (TinyLlama's Zephyr template writes none, its tokenizer adds it). The
//! encoder's add-EOS flag is never applied to a chat prompt. Later turns of
//! an interactive conversation are appended without BOS (except the text
//! Llama 2's user prefix holds).
//!
//! # The blob (version [`CHAT_FORMAT_VERSION`], little-endian)
//!
//! ```text
//! u32 magic 0x54434D53 ("SMCT" in memory)
//! u32 version (1)
//! u32 format code (ChatFormat::code: 1 ChatML, 2 Llama 2, 3 Llama 3,
//!     4 Gemma, 5 Phi-3, 6 Zephyr)
//! u32 flags: bit 0 the system prompt is merged into the first user turn;
//!            bit 1 the template has a default system prompt (string 6);
//!            bit 2 the rendered text starts with BOS text (see BOS above)
//! u32 number of strings that follow (11 in version 1)
//! the strings, each a u32 byte length, the UTF-8 bytes, zero padding to a
//! multiple of 4 bytes, in this order:
//!   0 system_prefix      1 system_suffix
//!   2 user_prefix        3 user_suffix
//!   4 assistant_prefix   5 assistant_suffix
//!   6 default_system (empty when flag bit 1 is clear)
//!   7 generation_prompt  8 prefix (once, at the start of the conversation)
//!   9 closing (after a final assistant turn, without generation prompt)
//!  10 end_of_turn: the special-token text the model ends its turn with
//!     (`<|im_end|>`, `<|eot_id|>`, `<end_of_turn>`, `<|end|>`, or EOS):
//!     generation stops there; assistant_suffix starts with it, except for
//!     Llama 2 (" </s>")
//! ```
//!
//! An interactive driver that keeps the model's own tokens in its KV cache
//! renders only what is new each turn: after the model ends its answer with
//! `end_of_turn`, the rest of `assistant_suffix` after `end_of_turn` (`"\n"`
//! for ChatML, Gemma, Phi-3 and Zephyr, nothing for Llama 2 and 3), then the
//! next user turn and the generation prompt.
//!
//! Recognition follows the markers llama.cpp's `llm_chat_detect_template`
//! (`src/llama-chat.cpp`) looks for; the strings are those each format's
//! reference templates render (`tests/chat_template.rs` checks them against
//! jinja2).

use super::TokenizerError;

/// The chat blob format version.
pub const CHAT_FORMAT_VERSION: u32 = 1;

const MAGIC: u32 = 0x5443_4D53;
const FLAG_MERGED: u32 = 1;
const FLAG_DEFAULT_SYSTEM: u32 = 2;
const FLAG_BOS_IN_TEXT: u32 = 4;
/// How many characters of an unrecognised template the error quotes.
const QUOTED: usize = 80;

/// The chat formats smelt recognises.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChatFormat {
    /// `<|im_start|>role\n…<|im_end|>\n` (Qwen, SmolLM2, OpenHermes).
    ChatMl,
    /// `[INST] … [/INST]` with an optional `<<SYS>>` block (Llama 2 chat,
    /// Mistral Instruct v0.1/v0.2).
    Llama2,
    /// `<|start_header_id|>role<|end_header_id|>\n\n…<|eot_id|>` (Llama 3,
    /// 3.1, 3.2).
    Llama3,
    /// `<start_of_turn>user\n…<end_of_turn>\n` (Gemma 1 and 2).
    Gemma,
    /// `<|user|>\n…<|end|>\n` (Phi-3, Phi-3.5).
    Phi3,
    /// `<|user|>\n…</s>\n` with the EOS text ending each turn (Zephyr,
    /// TinyLlama chat).
    Zephyr,
}

impl ChatFormat {
    /// Every format, in code order.
    pub const ALL: [ChatFormat; 6] = [
        ChatFormat::ChatMl,
        ChatFormat::Llama2,
        ChatFormat::Llama3,
        ChatFormat::Gemma,
        ChatFormat::Phi3,
        ChatFormat::Zephyr,
    ];

    /// The code of the blob header.
    pub fn code(self) -> u32 {
        match self {
            ChatFormat::ChatMl => 1,
            ChatFormat::Llama2 => 2,
            ChatFormat::Llama3 => 3,
            ChatFormat::Gemma => 4,
            ChatFormat::Phi3 => 5,
            ChatFormat::Zephyr => 6,
        }
    }

    /// Its usual name.
    pub fn name(self) -> &'static str {
        match self {
            ChatFormat::ChatMl => "ChatML",
            ChatFormat::Llama2 => "Llama 2",
            ChatFormat::Llama3 => "Llama 3",
            ChatFormat::Gemma => "Gemma",
            ChatFormat::Phi3 => "Phi-3",
            ChatFormat::Zephyr => "Zephyr",
        }
    }

    /// The known formats as a list for messages.
    pub fn known() -> String {
        let names: Vec<&str> = ChatFormat::ALL.iter().map(|f| f.name()).collect();
        names.join(", ")
    }
}

/// Where a system prompt goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SystemSupport {
    /// A block of its own before the first turn.
    Native,
    /// Inside the first user turn, after the user prefix (Llama 2's
    /// `<<SYS>>` block; Gemma and Mistral, which have no system role).
    MergedIntoFirstUser,
}

/// Who says a turn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The user.
    User,
    /// The model.
    Assistant,
}

/// A recognised chat template: the fixed strings a conversation is rendered
/// with (the module documentation gives the order).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChatTemplate {
    /// The format.
    pub format: ChatFormat,
    /// Written once, at the start of the conversation (BOS text or empty).
    pub prefix: String,
    /// Before the system prompt.
    pub system_prefix: String,
    /// After the system prompt.
    pub system_suffix: String,
    /// Before a user message.
    pub user_prefix: String,
    /// After a user message.
    pub user_suffix: String,
    /// Before an assistant message.
    pub assistant_prefix: String,
    /// After an assistant message.
    pub assistant_suffix: String,
    /// After the last turn, to have the model answer.
    pub generation_prompt: String,
    /// After a final assistant turn when no answer is asked for.
    pub closing: String,
    /// The special-token text the model ends its turn with.
    pub end_of_turn: String,
    /// The system prompt used when the caller gives none.
    pub default_system: Option<String>,
    /// Where the system prompt goes.
    pub system_support: SystemSupport,
    /// A rendered conversation (one that starts with a user turn) starts
    /// with the BOS text: the template's `{{ bos_token }}`, Llama 2's BOS
    /// before each `[INST]`, or a BOS that is also the turn marker (SmolLM2's
    /// `<|im_start|>`). The driver must not add BOS too.
    pub bos_in_text: bool,
}

impl ChatTemplate {
    /// Recognises `template` (Jinja source) given the model's BOS and EOS
    /// token texts (empty when it has none).
    pub fn recognise(template: &str, bos: &str, eos: &str) -> Result<ChatTemplate, TokenizerError> {
        let t = Source::new(template);
        let refuse = |reason: &str| TokenizerError::ChatTemplate {
            reason: reason.to_string(),
            head: template.chars().take(QUOTED).collect(),
        };
        let mut c = if t.has("<|im_start|>") {
            if t.has("<|im_sep|>") {
                return Err(refuse("Phi-4's <|im_sep|> variant of ChatML"));
            }
            if t.has("<end_of_utterance>") {
                return Err(refuse("SmolVLM's variant of ChatML"));
            }
            if t.has("/no_think") || t.has("## Metadata") {
                return Err(refuse(
                    "a ChatML template that writes metadata into the system prompt",
                ));
            }
            chatml(&t, bos, eos)
        } else if t.has("[INST]") {
            llama2(&t, bos, eos).map_err(refuse)?
        } else if t.has("<|start_header_id|>") && t.has("<|end_header_id|>") {
            llama3(&t, bos).map_err(refuse)?
        } else if t.has("<start_of_turn>") {
            gemma(&t, bos)
        } else if t.has("<|assistant|>")
            && t.has("<|end|>")
            && (t.has("<|user|>") || t.code_has(PHI3_ANY_ROLE))
        {
            phi3(&t, bos, eos)
        } else if t.has("<|user|>") && t.has("<|assistant|>") && t.code_has("eos_token") {
            zephyr(&t, bos, eos).map_err(refuse)?
        } else {
            return Err(refuse("no known format's markers"));
        };
        // Whatever comes first (the prefix, else the system block or the
        // first user turn) starts with the BOS text.
        c.bos_in_text = !bos.is_empty()
            && if c.prefix.is_empty() {
                c.user_prefix.starts_with(bos)
                    && (c.system_support == SystemSupport::MergedIntoFirstUser
                        || c.system_prefix.starts_with(bos))
            } else {
                c.prefix.starts_with(bos)
            };
        Ok(c)
    }

    /// Renders a conversation: an optional system prompt (else the default),
    /// the turns in order, then the generation prompt when asked.
    pub fn render(
        &self,
        system: Option<&str>,
        turns: &[(Role, &str)],
        add_generation_prompt: bool,
    ) -> String {
        let mut out = self.prefix.clone();
        let mut pending = system.or(self.default_system.as_deref());
        if self.system_support == SystemSupport::Native
            && let Some(s) = pending.take()
        {
            self.push_system(&mut out, s);
        }
        for &(role, text) in turns {
            match role {
                Role::User => {
                    out.push_str(&self.user_prefix);
                    if let Some(s) = pending.take() {
                        self.push_system(&mut out, s);
                    }
                    out.push_str(text);
                    out.push_str(&self.user_suffix);
                }
                Role::Assistant => {
                    out.push_str(&self.assistant_prefix);
                    out.push_str(text);
                    out.push_str(&self.assistant_suffix);
                }
            }
        }
        if add_generation_prompt {
            out.push_str(&self.generation_prompt);
        } else if matches!(turns.last(), Some((Role::Assistant, _))) {
            out.push_str(&self.closing);
        }
        out
    }

    fn push_system(&self, out: &mut String, system: &str) {
        out.push_str(&self.system_prefix);
        out.push_str(system);
        out.push_str(&self.system_suffix);
    }

    /// The header flags of the blob.
    pub fn flags(&self) -> u32 {
        let mut f = 0;
        if self.system_support == SystemSupport::MergedIntoFirstUser {
            f |= FLAG_MERGED;
        }
        if self.default_system.is_some() {
            f |= FLAG_DEFAULT_SYSTEM;
        }
        if self.bos_in_text {
            f |= FLAG_BOS_IN_TEXT;
        }
        f
    }

    /// The strings of the blob, in blob order.
    pub fn strings(&self) -> [&str; 11] {
        [
            &self.system_prefix,
            &self.system_suffix,
            &self.user_prefix,
            &self.user_suffix,
            &self.assistant_prefix,
            &self.assistant_suffix,
            self.default_system.as_deref().unwrap_or(""),
            &self.generation_prompt,
            &self.prefix,
            &self.closing,
            &self.end_of_turn,
        ]
    }

    /// The serialisation the runtime's chat driver reads (the module
    /// documentation gives the layout).
    pub fn blob(&self) -> Vec<u8> {
        let strings = self.strings();
        let mut b = Vec::new();
        for word in [
            MAGIC,
            CHAT_FORMAT_VERSION,
            self.format.code(),
            self.flags(),
            strings.len() as u32,
        ] {
            b.extend_from_slice(&word.to_le_bytes());
        }
        for s in strings {
            // A template's strings come from a text file far below 4 GiB.
            b.extend_from_slice(&(s.len() as u32).to_le_bytes());
            b.extend_from_slice(s.as_bytes());
            b.resize(b.len().next_multiple_of(4), 0);
        }
        b
    }
}

/// The parts every format fills the same way.
fn base(format: ChatFormat, end_of_turn: &str) -> ChatTemplate {
    ChatTemplate {
        format,
        prefix: String::new(),
        system_prefix: String::new(),
        system_suffix: String::new(),
        user_prefix: String::new(),
        user_suffix: String::new(),
        assistant_prefix: String::new(),
        assistant_suffix: String::new(),
        generation_prompt: String::new(),
        closing: String::new(),
        end_of_turn: end_of_turn.to_string(),
        default_system: None,
        system_support: SystemSupport::Native,
        bos_in_text: false,
    }
}

/// The BOS text when the template writes `bos_token` (once, at the start:
/// the formats that write it per turn say so themselves).
fn bos_prefix(t: &Source, bos: &str) -> String {
    if t.code_has("bos_token") {
        bos.to_string()
    } else {
        String::new()
    }
}

fn chatml(t: &Source, bos: &str, eos: &str) -> ChatTemplate {
    let mut c = base(ChatFormat::ChatMl, "<|im_end|>");
    c.prefix = bos_prefix(t, bos);
    c.system_prefix = "<|im_start|>system\n".into();
    c.user_prefix = "<|im_start|>user\n".into();
    c.assistant_prefix = "<|im_start|>assistant\n".into();
    c.generation_prompt = c.assistant_prefix.clone();
    for s in [
        &mut c.system_suffix,
        &mut c.user_suffix,
        &mut c.assistant_suffix,
    ] {
        *s = "<|im_end|>\n".into();
    }
    // A system block written as one literal is the default system prompt
    // (Qwen, SmolLM2): `'<|im_start|>system\nYou are …<|im_end|>\n'`.
    c.default_system = t.literals().find_map(|l| {
        let rest = l.strip_prefix("<|im_start|>system\n")?;
        let end = rest.find("<|im_end|>")?;
        Some(rest[..end].to_string())
    });
    // `{{ eos_token }}` alone closes a conversation that ends with the
    // assistant (Zephyr-Gemma).
    if t.code_has("{{eos_token}}") {
        c.closing = eos.to_string();
    }
    c
}

fn llama2(t: &Source, bos: &str, eos: &str) -> Result<ChatTemplate, &'static str> {
    if t.has("[SYSTEM_PROMPT]") || t.has("[AVAILABLE_TOOLS]") || t.code_has("' [INST] '") {
        return Err("a Mistral v1/v3/v7 template, not the Llama 2 format");
    }
    if t.code_has("system_message='") {
        return Err("a Llama 2 template with a built-in system prompt");
    }
    if !t.code_has("' [/INST]'") {
        return Err("a Llama 2 template without ' [/INST]'");
    }
    let mut c = base(ChatFormat::Llama2, eos);
    c.system_support = SystemSupport::MergedIntoFirstUser;
    if t.has("<<SYS>>") {
        c.system_prefix = "<<SYS>>\n".into();
        c.system_suffix = "\n<</SYS>>\n\n".into();
    } else {
        c.system_suffix = "\n\n".into();
    }
    if t.code_has("bos_token+'[INST] '") {
        c.user_prefix = format!("{bos}[INST] ");
    } else {
        c.prefix = bos_prefix(t, bos);
        c.user_prefix = "[INST] ".into();
    }
    c.user_suffix = " [/INST]".into();
    if t.code_has("' '+content.strip()+' '+eos_token") {
        c.assistant_prefix = " ".into();
        c.assistant_suffix = format!(" {eos}");
    } else if t.code_has("message['content']+eos_token+' '") {
        c.assistant_suffix = format!("{eos} ");
    } else if t.code_has("message['content']+eos_token") {
        c.assistant_suffix = eos.to_string();
    } else {
        return Err("a Llama 2 template whose assistant turn is not a known form");
    }
    Ok(c)
}

fn llama3(t: &Source, bos: &str) -> Result<ChatTemplate, &'static str> {
    if !t.has("<|eot_id|>") {
        return Err("a Llama 3 template without <|eot_id|>");
    }
    let header = |role: &str| format!("<|start_header_id|>{role}<|end_header_id|>\n\n");
    let mut c = base(ChatFormat::Llama3, "<|eot_id|>");
    c.prefix = bos_prefix(t, bos);
    c.system_prefix = header("system");
    c.user_prefix = header("user");
    c.assistant_prefix = header("assistant");
    c.generation_prompt = header("assistant");
    for s in [
        &mut c.system_suffix,
        &mut c.user_suffix,
        &mut c.assistant_suffix,
    ] {
        *s = "<|eot_id|>".into();
    }
    // Llama 3.1 and later always write a system block that starts with the
    // knowledge cut-off and a date: the template's fixed `date_string`
    // (Llama 3.2 asks `strftime_now` first; a compiled program has no
    // calendar, so it takes the fixed one too).
    const CUTOFF: &str = "Cutting Knowledge Date: December 2023\n";
    if t.literals().any(|l| l == CUTOFF) {
        let date = t
            .code_after("setdate_string=")
            .ok_or("a Llama 3.1 template without a fixed date_string")?;
        c.system_prefix
            .push_str(&format!("{CUTOFF}Today Date: {date}\n\n"));
        c.default_system = Some(String::new());
    }
    Ok(c)
}

fn gemma(t: &Source, bos: &str) -> ChatTemplate {
    let mut c = base(ChatFormat::Gemma, "<end_of_turn>");
    c.prefix = bos_prefix(t, bos);
    c.system_support = SystemSupport::MergedIntoFirstUser;
    c.system_suffix = "\n\n".into();
    c.user_prefix = "<start_of_turn>user\n".into();
    c.assistant_prefix = "<start_of_turn>model\n".into();
    c.generation_prompt = c.assistant_prefix.clone();
    c.user_suffix = "<end_of_turn>\n".into();
    c.assistant_suffix = "<end_of_turn>\n".into();
    c
}

/// Phi-3-small and -vision write every role the same way.
const PHI3_ANY_ROLE: &str = "'<|'+message['role']+'|>'";

fn phi3(t: &Source, bos: &str, eos: &str) -> ChatTemplate {
    let mut c = base(ChatFormat::Phi3, "<|end|>");
    c.prefix = bos_prefix(t, bos);
    if t.has("<|system|>") || t.code_has(PHI3_ANY_ROLE) {
        c.system_prefix = "<|system|>\n".into();
        c.system_suffix = "<|end|>\n".into();
    } else {
        c.system_support = SystemSupport::MergedIntoFirstUser;
        c.system_suffix = "\n\n".into();
    }
    c.user_prefix = "<|user|>\n".into();
    c.assistant_suffix = "<|end|>\n".into();
    // The first Phi-3-mini template opens the assistant turn inside every
    // user turn, generation prompt or not.
    if t.code_has("'<|end|>'+'\n'+'<|assistant|>'+'\n'") {
        c.user_suffix = "<|end|>\n<|assistant|>\n".into();
    } else {
        c.user_suffix = "<|end|>\n".into();
        c.assistant_prefix = "<|assistant|>\n".into();
        c.generation_prompt = "<|assistant|>\n".into();
    }
    if t.code_has("{%else%}{{eos_token}}") {
        c.closing = eos.to_string();
    }
    c
}

fn zephyr(t: &Source, bos: &str, eos: &str) -> Result<ChatTemplate, &'static str> {
    if !t.code_has("message['content']+eos_token") {
        return Err("a <|user|>/<|assistant|> template that does not end turns with eos_token");
    }
    // The newline after each turn is template text after `}}` (TinyLlama)
    // or part of the expression.
    let newline = if t.code_has("eos_token}}\n") || t.code_has("eos_token+'\n'}}") {
        "\n"
    } else if t.code_has("eos_token}}{%") {
        ""
    } else {
        return Err("a Zephyr template with unknown text after a turn");
    };
    let prompt = if t.code_has("{{'<|assistant|>'}}\n") || t.code_has("{{'<|assistant|>\n'}}") {
        "<|assistant|>\n"
    } else {
        return Err("a Zephyr template with an unknown generation prompt");
    };
    let mut c = base(ChatFormat::Zephyr, eos);
    c.prefix = bos_prefix(t, bos);
    c.system_prefix = "<|system|>\n".into();
    c.user_prefix = "<|user|>\n".into();
    c.assistant_prefix = "<|assistant|>\n".into();
    c.generation_prompt = prompt.into();
    let suffix = format!("{eos}{newline}");
    c.system_suffix = suffix.clone();
    c.user_suffix = suffix.clone();
    c.assistant_suffix = suffix;
    Ok(c)
}

/// A template's source, with a canonical form of its code for matching:
/// comments are dropped; inside `{{ }}` and `{% %}` whitespace outside
/// string literals and `-` whitespace controls are dropped and every string
/// literal is written with single quotes and its escapes decoded (`'\n'`,
/// `"\n"` and a quoted raw newline are all `'` newline `'`); text between
/// tags is kept.
struct Source<'a> {
    raw: &'a str,
    code: String,
    literals: Vec<String>,
}

impl<'a> Source<'a> {
    fn new(raw: &'a str) -> Source<'a> {
        let mut code = String::new();
        let mut literals = Vec::new();
        let mut chars = raw.chars().peekable();
        let mut in_tag = false;
        while let Some(c) = chars.next() {
            if !in_tag {
                match (c, chars.peek()) {
                    // Comments say nothing about the output.
                    ('{', Some('#')) => {
                        let mut last = ' ';
                        for d in chars.by_ref() {
                            if last == '#' && d == '}' {
                                break;
                            }
                            last = d;
                        }
                    }
                    ('{', Some(&open @ ('{' | '%'))) => {
                        chars.next();
                        code.push('{');
                        code.push(open);
                        in_tag = true;
                        if chars.peek() == Some(&'-') {
                            chars.next();
                        }
                    }
                    _ => code.push(c),
                }
                continue;
            }
            match c {
                '\'' | '"' => {
                    let mut lit = String::new();
                    while let Some(d) = chars.next() {
                        if d == c {
                            break;
                        }
                        if d == '\\' {
                            match chars.next() {
                                Some('n') => lit.push('\n'),
                                Some('t') => lit.push('\t'),
                                Some('r') => lit.push('\r'),
                                Some(e) => lit.push(e),
                                None => {}
                            }
                        } else {
                            lit.push(d);
                        }
                    }
                    code.push('\'');
                    code.push_str(&lit.replace('\'', "\\'"));
                    code.push('\'');
                    literals.push(lit);
                }
                '-' if matches!(chars.peek(), Some('}' | '%')) => {}
                '}' | '%' if chars.peek() == Some(&'}') => {
                    code.push(c);
                    chars.next();
                    code.push('}');
                    in_tag = false;
                }
                c if c.is_whitespace() => {}
                c => code.push(c),
            }
        }
        Source {
            raw,
            code,
            literals,
        }
    }

    /// The raw template contains `s` (a marker that is the same however the
    /// template is written: special-token text).
    fn has(&self, s: &str) -> bool {
        self.raw.contains(s)
    }

    /// The canonical code contains `s` (written canonically: no spaces
    /// outside literals, single quotes).
    fn code_has(&self, s: &str) -> bool {
        self.code.contains(s)
    }

    /// The first string literal that follows `s` directly in the canonical
    /// code.
    fn code_after(&self, s: &str) -> Option<String> {
        self.code.match_indices(s).find_map(|(at, _)| {
            let rest = self.code[at + s.len()..].strip_prefix('\'')?;
            let mut lit = String::new();
            let mut chars = rest.chars();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => lit.push(chars.next()?),
                    '\'' => return Some(lit),
                    c => lit.push(c),
                }
            }
            None
        })
    }

    /// The string literals of the code, in order, decoded.
    fn literals(&self) -> impl Iterator<Item = &str> {
        self.literals.iter().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_code_ignores_spacing_quotes_and_escapes() {
        let s = Source::new("a {{- \"x\\n\" +  y -}}\n{# don't #}{% if z %}b{% endif %}");
        assert_eq!(s.code, "a {{'x\n'+y}}\n{%ifz%}b{%endif%}");
        assert_eq!(s.literals, ["x\n"]);
        let s = Source::new("{% set date_string = f() %}{%- set date_string = \"26 Jul 2024\" %}");
        assert_eq!(
            s.code_after("setdate_string=").as_deref(),
            Some("26 Jul 2024")
        );
    }

    #[test]
    fn chatml_default_system_and_blob_layout() {
        let t = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\\nBe kind.<|im_end|>\\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
        let c = ChatTemplate::recognise(t, "", "<|im_end|>").unwrap();
        assert_eq!(c.format, ChatFormat::ChatMl);
        assert_eq!(c.default_system.as_deref(), Some("Be kind."));
        assert_eq!(
            c.render(None, &[(Role::User, "Hi")], true),
            "<|im_start|>system\nBe kind.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        );
        let b = c.blob();
        let word = |i: usize| u32::from_le_bytes(b[4 * i..4 * i + 4].try_into().unwrap());
        assert_eq!(&b[..4], b"SMCT");
        assert_eq!(
            (word(1), word(2), word(3), word(4)),
            (1, 1, FLAG_DEFAULT_SYSTEM, 11)
        );
        assert_eq!(word(5), "<|im_start|>system\n".len() as u32);
        assert_eq!(b.len() % 4, 0);
    }

    #[test]
    fn unknown_template_is_refused_with_its_head() {
        let t = "{% for m in messages %}### {{ m['role'] }}: {{ m['content'] }}\n{% endfor %}### Response:";
        let e = ChatTemplate::recognise(t, "<s>", "</s>")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("ChatML, Llama 2, Llama 3, Gemma, Phi-3, Zephyr"),
            "{e}"
        );
        assert!(
            e.contains("{% for m in messages %}### {{ m['role'] }}"),
            "{e}"
        );
    }
}
