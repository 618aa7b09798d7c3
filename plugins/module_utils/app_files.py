# Copyright (c) mtls.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""An application's view of its service's certificate: its own directory, its own file names
linked to the generation mtls_certs keeps current (so a rotation or a rollback reaches the app
without touching these), and an environment file that names them.

Links are replaced atomically (a new link renamed over the old one), so the app never finds a
name missing. Nothing that is not a link is replaced by one.
"""

from __future__ import annotations

import os
import secrets
import stat

from .files import FileBatch, FileError, fsync_directory, read_file, set_owner_mode

DIRECTORY_MODE = 0o750
ENV_MODE = 0o640
PARENT_MODE = 0o755


def apply(directory: str, uid: int, gid: int, links: dict, env_path: str, env_content: bytes, check_mode=False) -> list:
    """Bring the directory (owned by uid:gid), its links (name -> target) and the environment
    file (root:gid) to what is wanted. Returns the changes in order, each a dict with path,
    before and after (text for a diff; never file contents other than the environment file's)."""
    changes = []
    directory_change = _directory(directory, uid, gid, check_mode)
    if directory_change:
        changes.append(directory_change)
    linked = [c for c in (_link(os.path.join(directory, name), target, uid, gid, check_mode) for name, target in links.items()) if c]
    if linked and not check_mode:
        fsync_directory(directory)
    changes += linked
    batch = FileBatch(keep_previous=False)
    before = read_file(env_path)
    if batch.add(env_path, env_content, ENV_MODE, 0, gid):
        changes.append({"path": env_path, "before": (before or b"").decode(), "after": env_content.decode()})
        if not check_mode:
            batch.commit()
    return changes


def _directory(path, uid, gid, check_mode):
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        if not check_mode:
            os.makedirs(os.path.dirname(path), PARENT_MODE, exist_ok=True)
            os.mkdir(path, DIRECTORY_MODE)
            set_owner_mode(path, DIRECTORY_MODE, uid, gid)
        return {"path": path, "before": "absent\n", "after": _describe_dir(uid, gid)}
    if not stat.S_ISDIR(st.st_mode):
        raise FileError(f"{path} exists and is not a directory (a symlink is not followed); move it away or set mtls_app_certs_dir")
    if (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (uid, gid, DIRECTORY_MODE):
        return None
    if not check_mode:
        set_owner_mode(path, DIRECTORY_MODE, uid, gid)
    return {"path": path, "before": _describe_dir(st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)), "after": _describe_dir(uid, gid)}


def _describe_dir(uid, gid, mode=DIRECTORY_MODE):
    return f"directory, owner {uid}, group {gid}, mode {mode:04o}\n"


def _link(path, target, uid, gid, check_mode):
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        before = None
    else:
        if not stat.S_ISLNK(st.st_mode):
            raise FileError(f"{path} exists and is not a link; move it away (mtls_app links the app's file names to the "
                            "certificate generation mtls_certs keeps current)")
        before = os.readlink(path)
        if before == target and (st.st_uid, st.st_gid) == (uid, gid):
            return None
    if not check_mode:
        temp = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.{secrets.token_hex(6)}.tmp")
        os.symlink(target, temp)
        try:
            os.lchown(temp, uid, gid)
            os.replace(temp, path)
        except BaseException:
            os.unlink(temp)
            raise
    return {"path": path, "before": f"-> {before}\n" if before else "absent\n", "after": f"-> {target}\n"}
