# Copyright (c) mtls.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the values written into systemd units and environment files may hold. No Ansible imports.

A line break in a value starts a new directive (an ExecStartPre=, an LD_PRELOAD= in an app's
environment); in a unit, systemd also expands '%' specifiers and '$' variables, and reads quotes
and backslashes. Each check accepts only what its setting takes and returns what to write
instead, or None when the value is fine.
"""

from __future__ import annotations

import re

_PATH = re.compile(r"/[A-Za-z0-9._+@=,/-]*")
_FILE_NAME = re.compile(r"[A-Za-z0-9_+@=,-][A-Za-z0-9._+@=,-]*")
_UNIT_NAME = re.compile(r"[A-Za-z0-9:_.@-]{1,200}")
_USER = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,31}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
_CALENDAR = re.compile(r"[A-Za-z0-9*:,./~ -]{1,100}")
_TIMESPAN = re.compile(r"[0-9a-z. ]{1,40}")
_PLAYBOOK = re.compile(r"[A-Za-z0-9_./@-]{1,255}")
_INVENTORY = re.compile(r"[A-Za-z0-9_./@,:-]{1,255}")
# OnFailure= units; a template unit may take the failed unit's name as its instance (%n, %N).
_ON_FAILURE_UNIT = re.compile(r"[A-Za-z0-9:_.-]{1,150}(@(%[nN]|[A-Za-z0-9:_.-]{0,100}))?\.(service|target)")
_UNSAFE_IN_UNIT = re.compile(r"[\x00-\x1f\x7f%$\\\"`]")


def _matching(pattern, fix):
    """A check that accepts what pattern matches whole, and otherwise says fix."""
    def check(value):
        return None if pattern.fullmatch(str(value)) else fix
    return check


absolute_path = _matching(_PATH, "write an absolute path of letters, digits and . _ + @ = , / - (no spaces, quotes, '%' or '$')")
file_name = _matching(_FILE_NAME, "write a file name of letters, digits and . _ + @ = , - (no '/', spaces or quotes)")
unit_name = _matching(_UNIT_NAME, "write a unit name of letters, digits and : _ . @ -")
user_name = _matching(_USER, "write a user name (letters, digits, _ . -, starting with a letter or _)")
calendar = _matching(_CALENDAR, "write a systemd calendar event, e.g. daily or *-*-* 03:00:00")
timespan = _matching(_TIMESPAN, "write a systemd time span, e.g. 1h or 30min")
playbook = _matching(_PLAYBOOK, "write a playbook's FQCN (mtls.fleet.rotate) or path")
inventory = _matching(_INVENTORY, "write an inventory path (or a comma-separated host list) without spaces, quotes, '%' or '$'")


def units_on_failure(value):
    """Units systemd starts when a run fails, written as OnFailure= (space-separated)."""
    if isinstance(value, list) and all(isinstance(unit, str) and _ON_FAILURE_UNIT.fullmatch(unit) for unit in value):
        return None
    return "write a list of service or target names, e.g. [notify-failure@%n.service] (%n: the rotation's unit)"


def environment(value):
    """{NAME: value}, written as Environment="NAME=value"."""
    if not isinstance(value, dict):
        return "write a mapping of variable names to values, e.g. {ANSIBLE_CONFIG: /etc/ansible/ansible.cfg}"
    for name, text in value.items():
        if not _ENV_NAME.fullmatch(str(name)):
            return f"{name!r} is not a variable name; use letters, digits and _, starting with a letter or _"
        if _UNSAFE_IN_UNIT.search(str(text)):
            return f"the value of {name} holds a line break, quote, backslash, '%' or '$', which systemd would read; remove it"
    return None


def arguments(value):
    if not isinstance(value, list):
        return "write a list of arguments, e.g. [-e, mtls_rotate_serial=5]"
    for argument in value:
        if _UNSAFE_IN_UNIT.search(str(argument)):
            return f"{argument!r} holds a line break, quote, backslash, '%' or '$', which systemd would read; remove it"
    return None
