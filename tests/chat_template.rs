//! Chat templates (`smelt_frontend::tokenizer::chat`) against the real
//! templates of `tests/chat_template/templates.json` (each copied from the
//! source its entry names): the ones of a known format are recognised as
//! that format and render every conversation exactly as jinja2 renders the
//! template (`scripts/chat_template_reference.py`, run with the
//! repository's Python); the others are refused with a message that names
//! the known formats and quotes the template. The blob is checked at its
//! documented offsets.

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use smelt_frontend::tokenizer::{
    ChatFormat, ChatTemplate, Model, PreTokenizer, Prefix, Role, SystemSupport, TokenizerError,
    Vocab,
};

#[path = "common/targets.rs"]
mod targets;
use targets::{root, venv_python};

const TEMPLATES: &str = "tests/chat_template/templates.json";
const SCRIPT: &str = "scripts/chat_template_reference.py";

/// One template of the fixture file.
struct Entry {
    name: String,
    format: Option<ChatFormat>,
    bos: String,
    eos: String,
    template: String,
    /// The template renders a final assistant turn in its own way (Qwen3).
    final_assistant_differs: bool,
}

fn format(name: &str) -> ChatFormat {
    match name {
        "chatml" => ChatFormat::ChatMl,
        "llama2" => ChatFormat::Llama2,
        "llama3" => ChatFormat::Llama3,
        "gemma" => ChatFormat::Gemma,
        "phi3" => ChatFormat::Phi3,
        "zephyr" => ChatFormat::Zephyr,
        other => panic!("{TEMPLATES}: unknown format {other:?}"),
    }
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn entries() -> Vec<Entry> {
    let j = read_json(&root().join(TEMPLATES));
    let s = |v: &Value, k: &str| v[k].as_str().unwrap().to_string();
    j["templates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| Entry {
            name: s(e, "name"),
            format: e["format"].as_str().map(format),
            bos: s(e, "bos"),
            eos: s(e, "eos"),
            template: s(e, "template"),
            final_assistant_differs: e.get("final_assistant_differs").is_some(),
        })
        .collect()
}

fn recognise(e: &Entry) -> Result<ChatTemplate, TokenizerError> {
    ChatTemplate::recognise(&e.template, &e.bos, &e.eos)
}

#[test]
fn known_formats_are_recognised_and_others_refused() {
    let all = entries();
    let known = all.iter().filter(|e| e.format.is_some()).count();
    assert!(known >= 19 && all.len() - known >= 10, "{TEMPLATES} shrank");
    for f in ChatFormat::ALL {
        assert!(
            all.iter().any(|e| e.format == Some(f)),
            "no {} template",
            f.name()
        );
    }
    for e in &all {
        match (e.format, recognise(e)) {
            (Some(want), Ok(c)) => assert_eq!(c.format, want, "{}", e.name),
            (Some(_), Err(err)) => panic!("{}: {err}", e.name),
            (None, Ok(c)) => panic!("{}: recognised as {}", e.name, c.format.name()),
            (None, Err(err)) => {
                let msg = err.to_string();
                let head: String = e.template.chars().take(80).collect();
                assert!(
                    msg.contains(&ChatFormat::known()) && msg.contains(&format!("{head:?}")),
                    "{}: {msg}",
                    e.name
                );
            }
        }
    }
}

#[test]
fn a_made_up_template_is_refused() {
    let made_up = "{% for m in messages %}<<{{ m['role'] | upper }}>> {{ m['content'] }}\n{% endfor %}<<BOT>>";
    let err = ChatTemplate::recognise(made_up, "<s>", "</s>").unwrap_err();
    assert!(matches!(err, TokenizerError::ChatTemplate { .. }));
    assert_eq!(
        err.to_string(),
        format!(
            "unrecognised chat template (no known format's markers): {:?}; smelt knows the \
             ChatML, Llama 2, Llama 3, Gemma, Phi-3, Zephyr formats: run without --chat and \
             write the prompt in the model's format",
            made_up.chars().take(80).collect::<String>()
        )
    );
}

/// Every prefix of every template (unterminated literals and tags
/// included) is recognised or refused without a panic, and renders when
/// recognised.
#[test]
fn truncated_templates_never_panic() {
    let mut recognised = 0;
    for e in entries() {
        let ends: Vec<usize> = e.template.char_indices().map(|(i, _)| i).collect();
        for &cut in ends.iter().step_by(3) {
            if let Ok(c) = ChatTemplate::recognise(&e.template[..cut], &e.bos, &e.eos) {
                c.render(
                    Some("s"),
                    &[(Role::User, "u"), (Role::Assistant, "a")],
                    true,
                );
                assert!(c.blob().len() >= 20 + 11 * 4);
                recognised += 1;
            }
        }
    }
    assert!(recognised > 0);
}

/// The reference renderings, or `None` without the repository's Python.
fn reference() -> Option<Value> {
    let python = venv_python("the chat template tests")?;
    let out = Command::new(python)
        .arg(root().join(SCRIPT))
        .arg(root().join(TEMPLATES))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{SCRIPT}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(serde_json::from_slice(&out.stdout).unwrap())
}

#[test]
fn renderings_equal_jinja2() {
    let Some(reference) = reference() else { return };
    let conversations = reference["conversations"].as_array().unwrap();
    let mut compared = 0;
    for e in entries().iter().filter(|e| e.format.is_some()) {
        let c = recognise(e).unwrap();
        let results = reference["templates"][&e.name].as_array().unwrap();
        assert_eq!(results.len(), conversations.len(), "{}", e.name);
        for (conv, want) in conversations.iter().zip(results) {
            let system = conv["system"].as_str();
            let turns: Vec<(Role, &str)> = conv["turns"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| {
                    let role = match t[0].as_str().unwrap() {
                        "user" => Role::User,
                        _ => Role::Assistant,
                    };
                    (role, t[1].as_str().unwrap())
                })
                .collect();
            let agp = conv["add_generation_prompt"].as_bool().unwrap();
            let text = want["text"].as_str().unwrap();
            // When jinja2 refuses or drops a system prompt, smelt merges it
            // into the first user turn (as it does for Llama 2's <<SYS>>).
            if want["merged"].as_bool().unwrap() {
                assert_eq!(
                    c.system_support,
                    SystemSupport::MergedIntoFirstUser,
                    "{}: system support",
                    e.name
                );
            }
            // The BOS text starts the rendering exactly when the template
            // writes it.
            if !e.bos.is_empty() {
                assert_eq!(text.starts_with(&e.bos), c.bos_in_text, "{}: BOS", e.name);
            }
            if e.final_assistant_differs && !agp {
                continue;
            }
            let got = c.render(system, &turns, agp);
            assert!(
                got == text,
                "{}: system {system:?}, {} turns, generation prompt {agp}:\n got {got:?}\nwant {text:?}",
                e.name,
                turns.len()
            );
            compared += 1;
        }
    }
    assert!(compared >= 100, "only {compared} renderings compared");
}

/// The blob read back at the offsets the module documentation gives.
#[test]
fn blob_layout_is_as_documented() {
    for e in entries().iter().filter(|e| e.format.is_some()) {
        let c = recognise(e).unwrap();
        let b = c.blob();
        let word = |at: usize| u32::from_le_bytes(b[at..at + 4].try_into().unwrap());
        assert_eq!(word(0), 0x5443_4D53, "{}", e.name);
        assert_eq!(&b[..4], b"SMCT");
        assert_eq!(word(4), 1);
        assert_eq!(word(8), c.format.code());
        let flags = word(12);
        assert_eq!(
            flags & 1 != 0,
            c.system_support == SystemSupport::MergedIntoFirstUser
        );
        assert_eq!(flags & 2 != 0, c.default_system.is_some());
        assert_eq!(flags & 4 != 0, c.bos_in_text);
        assert_eq!(flags & !7, 0);
        assert_eq!(word(16), 11);
        let mut at = 20;
        let mut strings = Vec::new();
        for _ in 0..11 {
            let n = word(at) as usize;
            strings.push(std::str::from_utf8(&b[at + 4..at + 4 + n]).unwrap());
            let end = (at + 4 + n).next_multiple_of(4);
            assert!(b[at + 4 + n..end].iter().all(|&x| x == 0), "{}", e.name);
            at = end;
        }
        assert_eq!(at, b.len(), "{}", e.name);
        let default = c.default_system.as_deref().unwrap_or("");
        let want = [
            c.system_prefix.as_str(),
            &c.system_suffix,
            &c.user_prefix,
            &c.user_suffix,
            &c.assistant_prefix,
            &c.assistant_suffix,
            default,
            &c.generation_prompt,
            &c.prefix,
            &c.closing,
            &c.end_of_turn,
        ];
        assert_eq!(strings, want, "{}", e.name);
        assert!(!c.end_of_turn.is_empty(), "{}", e.name);
    }
}

/// The quirks of the families, as the report describes them: default
/// system prompts, merged system prompts, BOS in the text or not.
#[test]
fn family_quirks() {
    let by_name = |n: &str| {
        let e = entries().into_iter().find(|e| e.name == n).unwrap();
        recognise(&e).unwrap()
    };
    let qwen = by_name("qwen2.5-instruct");
    assert_eq!(
        qwen.default_system.as_deref(),
        Some("You are Qwen, created by Alibaba Cloud. You are a helpful assistant.")
    );
    assert_eq!(
        by_name("smollm2-instruct").default_system.as_deref(),
        Some("You are a helpful AI assistant named SmolLM, trained by Hugging Face")
    );
    assert_eq!(by_name("openhermes-2.5-mistral").default_system, None);
    let llama2 = by_name("llama-2-chat");
    assert_eq!(llama2.user_prefix, "<s>[INST] ");
    assert!(llama2.bos_in_text && llama2.prefix.is_empty());
    assert_eq!(llama2.system_support, SystemSupport::MergedIntoFirstUser);
    assert!(by_name("gemma-2-2b-it").bos_in_text);
    assert!(!by_name("gemma-7b-it").bos_in_text);
    let tiny = by_name("tinyllama-1.1b-chat");
    assert!(!tiny.bos_in_text);
    assert_eq!(
        (tiny.user_suffix.as_str(), tiny.end_of_turn.as_str()),
        ("</s>\n", "</s>")
    );
    assert_eq!(
        by_name("llama-3.1-instruct").default_system.as_deref(),
        Some("")
    );
}

/// `Vocab::chat` recognises the template with the vocabulary's own BOS and
/// EOS texts.
#[test]
fn vocab_chat_uses_its_bos_and_eos() {
    let tiny = entries()
        .into_iter()
        .find(|e| e.name == "tinyllama-1.1b-chat")
        .unwrap();
    let mut vocab = Vocab {
        model: Model::SentencePieceBpe,
        pre: PreTokenizer::None,
        tokens: vec![b"<unk>".to_vec(), b"<s>".to_vec(), b"<|eos|>".to_vec()],
        merges: Vec::new(),
        byte_tokens: [None; 256],
        listed: Vec::new(),
        bos: Some(1),
        eos: Some(2),
        unk: Some(0),
        add_bos: true,
        add_eos: false,
        byte_fallback: true,
        ignore_merges: false,
        prefix: Prefix::First,
        fuse_unk: true,
        chat_template: None,
    };
    assert!(vocab.chat().is_none());
    vocab.chat_template = Some(tiny.template);
    let c = vocab.chat().unwrap().unwrap();
    assert_eq!(c.format, ChatFormat::Zephyr);
    assert_eq!(
        c.render(None, &[(Role::User, "Hi")], true),
        "<|user|>\nHi<|eos|>\n<|assistant|>\n"
    );
    vocab.chat_template = Some("{{ messages }}".into());
    assert!(matches!(
        vocab.chat(),
        Some(Err(TokenizerError::ChatTemplate { .. }))
    ));
}
