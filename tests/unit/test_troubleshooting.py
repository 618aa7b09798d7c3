"""docs/troubleshooting.md quotes messages the collection prints: each one still stands in the code."""

import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def code():
    text = []
    for top in ("plugins", "roles", "playbooks"):
        for directory, _dirs, names in os.walk(os.path.join(ROOT, top)):
            text += [open(os.path.join(directory, name), encoding="utf-8").read() for name in names if name.endswith((".py", ".yml", ".j2"))]
    return "\n".join(text)


def test_every_message_the_page_quotes_is_one_the_code_prints():
    page = open(os.path.join(ROOT, "docs", "troubleshooting.md"), encoding="utf-8").read()
    quoted = re.findall(r"^### `(.+)`$", page, re.M)
    assert len(quoted) >= 20
    source = code()
    assert [message for message in quoted if message not in source] == []
