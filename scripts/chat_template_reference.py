#!/usr/bin/env python3
"""Reference renderings for tests/chat_template.rs: every recognised
template of tests/chat_template/templates.json rendered by jinja2 the way
Hugging Face transformers' `apply_chat_template` renders it (a sandboxed
environment with trim_blocks, lstrip_blocks and loop controls, a
`raise_exception` global and a `tojson` filter; no `strftime_now`, so
Llama 3.2 takes its template's fixed date), for a fixed set of
conversations.

Usage: chat_template_reference.py TEMPLATES_JSON

Prints a JSON object: `conversations` (system or null, turns as
[role, content] pairs, add_generation_prompt) and, per template name, one
entry per conversation: {"text": the rendering, "merged": bool}.

A template with no place for a system message raises on one (Gemma,
Mistral) or leaves it out (Phi-3-mini): for those, "merged" is true and the
text is the template's rendering of the conversation without the system
message, whose first user message is `system + "\\n\\n" + user` (what
smelt's renderer does for such templates). Message contents have no
leading or trailing whitespace, since several templates strip them.
"""
import json
import sys

import jinja2
import jinja2.ext
import jinja2.sandbox

SYSTEM = "You are a terse assistant. Answer in one line."
TURNS = [
    ("user", "Hello! Who are you?"),
    ("assistant", "I am a small model.\nI run on a board."),
    ("user", "Name three colours, café-style 🦙."),
]
CONVERSATIONS = [
    {"system": None, "turns": TURNS[:1], "add_generation_prompt": True},
    {"system": SYSTEM, "turns": TURNS[:1], "add_generation_prompt": True},
    {"system": None, "turns": TURNS, "add_generation_prompt": True},
    {"system": SYSTEM, "turns": TURNS, "add_generation_prompt": True},
    {"system": None, "turns": TURNS[:2], "add_generation_prompt": False},
    {"system": SYSTEM, "turns": TURNS[:2], "add_generation_prompt": False},
]


def environment():
    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    env = jinja2.sandbox.ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols]
    )
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    return env


def render(tmpl, entry, system, turns, add_generation_prompt):
    messages = ([{"role": "system", "content": system}] if system is not None else []) + [
        {"role": r, "content": c} for r, c in turns
    ]
    return tmpl.render(
        messages=messages,
        bos_token=entry["bos"],
        eos_token=entry["eos"],
        add_generation_prompt=add_generation_prompt,
    )


def main():
    templates = json.load(open(sys.argv[1], encoding="utf-8"))["templates"]
    env = environment()
    out = {"conversations": CONVERSATIONS, "templates": {}}
    for entry in templates:
        if entry["format"] is None:
            continue
        tmpl = env.from_string(entry["template"])
        results = []
        for c in CONVERSATIONS:
            system, turns, agp = c["system"], c["turns"], c["add_generation_prompt"]
            text = None
            if system is not None:
                try:
                    text = render(tmpl, entry, system, turns, agp)
                except jinja2.exceptions.TemplateError:
                    pass
                if text is not None and system not in text:
                    text = None
            merged = system is not None and text is None
            if merged:
                first = [("user", system + "\n\n" + turns[0][1])] + turns[1:]
                text = render(tmpl, entry, None, first, agp)
            elif text is None:
                text = render(tmpl, entry, None, turns, agp)
            results.append({"text": text, "merged": merged})
        out["templates"][entry["name"]] = results
    json.dump(out, sys.stdout, ensure_ascii=False, indent=1)


if __name__ == "__main__":
    main()
