# Copyright (c) mtls.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Test a new version of one nginx configuration file before it takes its place. No Ansible imports.

nginx -t checks the configuration nginx would load, so a file checked in place is live (for a
reload by someone else, or after a crash) until the check fails and it is taken back. Instead the
new version is written under a name no include matches (a dot file), beside a copy of nginx's
main configuration whose include of that file names the candidate: `nginx -t -c <copy>` then sees
exactly the configuration the switch will give, and the file itself is replaced only once nginx
has accepted it.
"""

from __future__ import annotations

import fnmatch
import glob
import os
import re
import secrets

from .files import read_file

CONFIG_MODE = 0o644

_INCLUDE = re.compile(r"^(?P<indent>[ \t]*)include[ \t]+(?P<pattern>[^;\s]+)[ \t]*;[ \t]*$", re.M)


def main_with_candidate(main_text: str, main_dir: str, path: str, candidate: str) -> str | None:
    """main_text with every include that loads path loading candidate in its place (and the other
    files it matches by name, in nginx's sorted order); None when no include of the main
    configuration itself loads path (then it cannot be checked beside the one in place)."""
    found = [False]

    def swap(match):
        pattern = match.group("pattern").strip("\"'")
        full = pattern if os.path.isabs(pattern) else os.path.join(main_dir, pattern)
        matches = set(glob.glob(full))
        if path not in matches and not fnmatch.fnmatchcase(path, full):
            return match.group(0)
        found[0] = True
        return "\n".join(f"{match.group('indent')}include {candidate if name == path else name};" for name in sorted(matches | {path}))

    text = _INCLUDE.sub(swap, main_text)
    return text if found[0] else None


def conf_path(nginx_version_output: str) -> str:
    """The main configuration nginx loads, from `nginx -V` (its --conf-path), else Debian's."""
    found = re.search(r"--conf-path=(\S+)", nginx_version_output)
    return found.group(1) if found else "/etc/nginx/nginx.conf"


def check(run, path: str, content: bytes):
    """nginx -t on the configuration as it will be, before path changes. run(argv) -> (rc, out, err).
    Returns (how, problem): how is 'candidate', or None when the main configuration does not
    include path (then only a check in place can tell); problem is nginx's refusal, or None."""
    _rc, out, err = run(["nginx", "-V"])
    main = conf_path(out + err)
    directory, name = os.path.split(path)
    main_dir, main_name = os.path.split(main)
    _remove_leftovers(directory, rf"\.{re.escape(name)}\.[0-9a-f]{{12}}\.candidate")
    _remove_leftovers(main_dir, rf"\.{re.escape(main_name)}\.[0-9a-f]{{12}}\.check")
    token = secrets.token_hex(6)
    candidate, checked_main = os.path.join(directory, f".{name}.{token}.candidate"), os.path.join(main_dir, f".{main_name}.{token}.check")
    text = main_with_candidate((read_file(main) or b"").decode(), main_dir, path, candidate)
    if text is None:
        return None, None
    try:
        _write(candidate, content)
        _write(checked_main, text.encode())
        rc, out, err = run(["nginx", "-t", "-q", "-c", checked_main])
    finally:
        for temp in (candidate, checked_main):
            if os.path.lexists(temp):
                os.unlink(temp)
    if rc != 0:
        return "candidate", (err or out).strip().replace(candidate, path).replace(checked_main, main)
    return "candidate", None


def _write(path, content):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, CONFIG_MODE)
    try:
        os.write(fd, content)
    finally:
        os.close(fd)


def _remove_leftovers(directory, pattern):
    """Candidates and copies a killed run left (dot files nginx never loads)."""
    for entry in os.listdir(directory):
        if re.fullmatch(pattern, entry):
            os.unlink(os.path.join(directory, entry))
