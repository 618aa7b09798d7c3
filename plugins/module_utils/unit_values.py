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
_UNSAFE_IN_UNIT = re.compile(r"[\x00-\x1f\x7f%$\\\"`]")


def absolute_path(value):
    if not _PATH.fullmatch(str(value)):
        return "write an absolute path of letters, digits and . _ + @ = , / - (no spaces, quotes, '%' or '$')"
    return None


def file_name(value):
    if not _FILE_NAME.fullmatch(str(value)):
        return "write a file name of letters, digits and . _ + @ = , - (no '/', spaces or quotes)"
    return None


def unit_name(value):
    if not _UNIT_NAME.fullmatch(str(value)):
        return "write a unit name of letters, digits and : _ . @ -"
    return None


def user_name(value):
    if not _USER.fullmatch(str(value)):
        return "write a user name (letters, digits, _ . -, starting with a letter or _)"
    return None


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


def calendar(value):
    if not _CALENDAR.fullmatch(str(value)):
        return "write a systemd calendar event, e.g. daily or *-*-* 03:00:00"
    return None


def timespan(value):
    if not _TIMESPAN.fullmatch(str(value)):
        return "write a systemd time span, e.g. 1h or 30min"
    return None


def playbook(value):
    if not _PLAYBOOK.fullmatch(str(value)):
        return "write a playbook's FQCN (mtls.fleet.rotate) or path"
    return None


def inventory(value):
    if not _INVENTORY.fullmatch(str(value)):
        return "write an inventory path (or a comma-separated host list) without spaces, quotes, '%' or '$'"
    return None


def arguments(value):
    if not isinstance(value, list):
        return "write a list of arguments, e.g. [-e, mtls_rotate_serial=5]"
    for argument in value:
        if _UNSAFE_IN_UNIT.search(str(argument)):
            return f"{argument!r} holds a line break, quote, backslash, '%' or '$', which systemd would read; remove it"
    return None
