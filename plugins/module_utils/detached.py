# Copyright (c) mtls.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run work in a process that outlives the controller's connection. No Ansible imports.

A cancelled job or a lost runner kills ansible-playbook, and with it the SSH session: the
session's processes get SIGHUP, writes to its pipes fail. A host transaction must not stop
halfway then (new files on disk, the old certificate served). So the work runs in a child in a
session of its own, with /dev/null for its standard streams; the module only waits for its
answer on a pipe. If the module dies, the child finishes (its result is kept on the host by the
work itself), and the next run waits for it through the host's lock.

Everything the child needs must be imported before the fork: Ansible removes the module's
files when the module's process ends.
"""

from __future__ import annotations

import json
import os
import signal
import traceback


def run(work) -> dict:
    """work() -> a JSON-serialisable dict, run in a detached child; its result, or
    {"failed": True, "msg": ...} if it raised or died."""
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover (the child's coverage is its result)
        os.close(reader)
        try:
            os.setsid()
            signal.signal(signal.SIGHUP, signal.SIG_IGN)
            signal.signal(signal.SIGPIPE, signal.SIG_IGN)
            null = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
            try:
                payload = json.dumps(work())
            except BaseException as exc:  # noqa: BLE001 (whatever it was, the module must say so)
                payload = json.dumps({"failed": True, "msg": f"{type(exc).__name__}: {exc}", "exception": traceback.format_exc()})
            try:
                view = memoryview(payload.encode())
                while view:
                    view = view[os.write(writer, view):]
            except OSError:
                pass  # the module is gone; the work kept its outcome on the host
        finally:
            os._exit(0)
    os.close(writer)
    chunks = []
    with os.fdopen(reader, "rb") as pipe:
        while True:
            chunk = pipe.read(65536)
            if not chunk:
                break
            chunks.append(chunk)
    os.waitpid(pid, 0)
    if not chunks:
        return {"failed": True, "msg": "the transaction's process ended without an answer; see the host's journal"}
    return json.loads(b"".join(chunks))
