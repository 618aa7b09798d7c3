"""docs/troubleshooting.md lists every message the collection can stop a run with (tests/unit/messages.py
reads them from the code), and says for each what to do: the message itself, or a section."""

import os
import re

import messages

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PAGE = open(os.path.join(ROOT, "docs", "troubleshooting.md"), encoding="utf-8").read()
SECTIONS = PAGE[:PAGE.index(messages.BEGIN)]


def code():
    text = []
    for top in ("plugins", "roles", "playbooks"):
        for directory, _dirs, names in os.walk(os.path.join(ROOT, top)):
            text += [open(os.path.join(directory, name), encoding="utf-8").read() for name in names if name.endswith((".py", ".yml", ".j2"))]
    return "\n".join(text)


def test_every_fragment_a_section_quotes_is_one_the_code_prints():
    quoted = messages.explained(SECTIONS)
    assert len(quoted) >= 20
    source = code()
    assert [fragment for fragment in quoted if fragment not in source] == []


def test_the_page_lists_every_message_of_the_code():
    assert PAGE == messages.page_with(messages.messages()), "the list is out of date: run python tests/unit/messages.py"


def test_every_message_says_its_fix_or_has_a_section():
    quoted = messages.explained(SECTIONS)
    alone = [text for text in messages.messages() if not messages.names_its_fix(text) and not any(q in text for q in quoted)]
    assert alone == [], "give these a section in docs/troubleshooting.md (or say the fix in the message)"


def test_the_reader_finds_messages_of_every_kind():
    found = messages.messages()
    assert len(found) >= 150
    sources = {source.split()[0] for listed in found.values() for source in listed}
    assert {"module", "filter", "role", "playbook", "plugins/module_utils/pki.py"} <= sources
    assert any("cannot go into nginx's configuration" in text for text in found)  # a problem gathered in a list
    assert any(text.startswith("Nothing to revoke") for text in found)  # a playbook's fail_msg, Jinja as a gap
    assert re.search(r"is busy: … holds …; waited … s", "\n".join(found))  # an f-string's fields as gaps
