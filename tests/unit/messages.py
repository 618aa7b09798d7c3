"""Every message the collection can stop a run with, read from its code: the messages that modules,
filters and action plugins raise or fail with, and the fail_msg of roles and playbooks.

    python tests/unit/messages.py      rewrites the list at the end of docs/troubleshooting.md

tests/unit/test_troubleshooting.py fails when the list there is not this one.
"""

import ast
import os
import re
import sys

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PAGE = os.path.join(ROOT, "docs", "troubleshooting.md")
BEGIN = "<!-- every message: written by python tests/unit/messages.py; do not edit by hand -->"
END = "<!-- end of every message -->"
GAP = "…"  # what the message fills in at run time (a host, a path, a value)


def python_messages(path):
    """Messages of raise X("...") and fail_json(msg="..."), or failed=True with msg=, in a Python file."""
    found = []
    for node in ast.walk(ast.parse(open(path, encoding="utf-8").read())):
        text = None
        if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) and node.exc.args and not _handled(node.exc.func):
            text = _literal(node.exc.args[0])
        elif isinstance(node, ast.Call):
            keywords = {keyword.arg: keyword.value for keyword in node.keywords}
            failing = (isinstance(node.func, ast.Attribute) and node.func.attr == "fail_json") or (
                isinstance(keywords.get("failed"), ast.Constant) and keywords["failed"].value is True)
            if failing and "msg" in keywords:
                text = _literal(keywords["msg"])
            elif isinstance(node.func, ast.Attribute) and node.func.attr == "append" and _named_problems(node.func.value) and node.args:
                text = _literal(node.args[0])
        elif isinstance(node, ast.Return) and isinstance(node.value, (ast.List, ast.IfExp)):
            listed = node.value.body if isinstance(node.value, ast.IfExp) else node.value
            found += [text for text in map(_literal, getattr(listed, "elts", [])) if text]
        if text:
            found.append(text)
    return found


def _handled(exception):
    """An exception the collection catches itself (certificate_info's action then runs the module)."""
    return isinstance(exception, ast.Name) and exception.id == "Undecided"


def _named_problems(node):
    """A list the code gathers problems in: every function that checks input names it so."""
    return isinstance(node, ast.Name) and node.id in ("problems", "errors", "found")


def _literal(node):
    """The message's text with GAP for each part filled in at run time; None when none of it is literal."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(part.value if isinstance(part, ast.Constant) else GAP for part in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _literal(node.left), _literal(node.right)
        return None if left is None and right is None else (left or GAP) + (right or GAP)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod):
        left = _literal(node.left)
        return None if left is None else re.sub(r"%(\([^)]*\))?[-#0 +]*\d*(\.\d+)?[sdrifxX]", GAP, left)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format":
        left = _literal(node.func.value)
        return None if left is None else re.sub(r"\{[^}]*\}", GAP, left)
    return None


def yaml_messages(path):
    """fail_msg of assert tasks and msg of fail tasks, their Jinja as GAP."""
    found = []

    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "ansible.builtin.assert" and isinstance(value, dict) and isinstance(value.get("fail_msg"), str):
                    found.append(value["fail_msg"])
                elif key == "ansible.builtin.fail" and isinstance(value, dict) and isinstance(value.get("msg"), str):
                    found.append(value["msg"])
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(yaml.safe_load(open(path, encoding="utf-8")))
    return [re.sub(r"\{\{.*?\}\}|\{%.*?%\}", GAP, text, flags=re.S) for text in found]


def messages():
    """{message: sorted sources}, for every message with words of its own (not only a wrapper such as 'CA …: …')."""
    found = {}
    for top in ("plugins", "roles", "playbooks"):
        for directory, dirs, names in os.walk(os.path.join(ROOT, top)):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__")
            for name in sorted(names):
                path = os.path.join(directory, name)
                if name.endswith(".py"):
                    texts = python_messages(path)
                elif name.endswith(".yml") and os.sep + "tasks" + os.sep in path or top == "playbooks" and name.endswith(".yml"):
                    texts = yaml_messages(path)
                else:
                    continue
                for text in texts:
                    text = re.sub(r"\s+", " ", text).strip()
                    text = re.sub(GAP + r"(\s*" + GAP + r")+", GAP, text)
                    if len(re.findall(r"[A-Za-z]{2,}", text)) >= 3:
                        found.setdefault(text, set()).add(_source(os.path.relpath(path, ROOT)))
    return {text: sorted(sources) for text, sources in found.items()}


def _source(path):
    """How a user knows a source: module mtls.fleet.ca, role mtls_certs, playbook rotate."""
    parts = path[:-len(".py")].split(os.sep) if path.endswith(".py") else path.split(os.sep)
    if parts[1] == "module_utils":
        return path
    if parts[0] == "roles":
        return f"role {parts[1]}"
    if parts[0] == "playbooks":
        return f"playbook {parts[-1][:-len('.yml')]}" if parts[1] != "tasks" else "playbooks"
    kind = {"modules": "module", "action": "module", "filter": "filter", "test": "test", "module_utils": "modules",
            "doc_fragments": "modules", "plugin_utils": "modules"}[parts[1]]
    return f"{kind} mtls.fleet.{parts[-1]}" if kind in ("module", "filter", "test") else "modules"


def explained(page):
    """The fragments the page's sections quote in their headings (### `fragment` · `another`)."""
    return [fragment for heading in re.findall(r"^### (.+)$", page, re.M) for fragment in re.findall(r"`([^`]+)`", heading)]


def names_its_fix(text):
    """Whether a message says what to do itself: a clause after '; ', or a sentence after the first."""
    text = re.sub(r"^(%s[:.]? )+" % GAP, "", text)
    return "; " in text or re.search(r"\. [A-Z]", text) is not None or "(run " in text


def section(found, fragments):
    lines = [BEGIN, ""]
    for text, sources in sorted(found.items(), key=lambda item: (item[1][0], item[0].lower())):
        see = [fragment for fragment in fragments if fragment in text]
        lines.append("- `%s` (%s)%s" % (text.replace("`", "'"), ", ".join(sources), " (above: `%s`)" % see[0] if see else ""))
    return "\n".join(lines + ["", END])


def page_with(found):
    page = open(PAGE, encoding="utf-8").read()
    start, end = page.index(BEGIN), page.index(END) + len(END)
    return page[:start] + section(found, explained(page[:start])) + page[end:]


if __name__ == "__main__":
    text = page_with(messages())
    with open(PAGE, "w", encoding="utf-8") as handle:
        handle.write(text)
    sys.exit(0)
