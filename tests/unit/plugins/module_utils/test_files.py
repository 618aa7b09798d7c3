"""Atomic writes: final modes, the previous generation kept, symlinks refused."""

import os
import stat

import pytest

from ansible_collections.mtls.fleet.plugins.module_utils.files import FileBatch, FileError, ensure_directory, fsync_directory, read_file


def mode(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_new_file_gets_its_mode_whatever_the_umask(tmp_path):
    old = os.umask(0o077)
    try:
        batch = FileBatch()
        assert batch.add(str(tmp_path / "cert.pem"), b"cert", 0o644)
        batch.commit()
    finally:
        os.umask(old)
    assert mode(tmp_path / "cert.pem") == 0o644 and (tmp_path / "cert.pem").read_bytes() == b"cert"


def test_replacing_keeps_the_previous_generation_and_leaves_no_temp(tmp_path):
    path = str(tmp_path / "key.pem")
    for content in (b"one", b"two"):
        batch = FileBatch()
        batch.add(path, content, 0o600)
        batch.commit()
    assert read_file(path) == b"two" and read_file(path + ".previous") == b"one"
    assert mode(path) == 0o600 and mode(path + ".previous") == 0o600
    assert sorted(os.listdir(tmp_path)) == ["key.pem", "key.pem.previous"]


def test_same_content_is_no_change_but_a_wrong_mode_is(tmp_path):
    path = tmp_path / "key.pem"
    path.write_bytes(b"k")
    os.chmod(path, 0o644)
    batch = FileBatch()
    assert batch.add(str(path), b"k", 0o600)
    batch.commit()
    assert mode(path) == 0o600 and not (tmp_path / "key.pem.previous").exists()
    assert not FileBatch().add(str(path), b"k", 0o600)


def test_symlinks_are_refused_not_followed(tmp_path):
    target = tmp_path / "elsewhere"
    target.write_bytes(b"precious")
    (tmp_path / "key.pem").symlink_to(target)
    with pytest.raises(FileError, match="is a symlink; refusing to follow it"):
        FileBatch().add(str(tmp_path / "key.pem"), b"new", 0o600)
    assert target.read_bytes() == b"precious"


def test_ensure_directory_sets_and_repairs_mode(tmp_path):
    path = str(tmp_path / "a" / "ca")
    assert ensure_directory(path, 0o700) and mode(path) == 0o700
    os.chmod(path, 0o755)
    assert ensure_directory(path, 0o700) and mode(path) == 0o700
    assert not ensure_directory(path, 0o700)


def test_a_missing_directory_is_named_not_created(tmp_path):
    batch = FileBatch()
    batch.add(str(tmp_path / "nope" / "key.pem"), b"k", 0o600)
    with pytest.raises(FileError, match=r"directory .*/nope does not exist; create it"):
        batch.commit()
    assert not (tmp_path / "nope").exists()


def test_one_failed_write_renames_nothing_and_leaves_no_temp(tmp_path):
    (tmp_path / "ok").mkdir()
    (tmp_path / "ok" / "cert.pem").write_bytes(b"old")
    batch = FileBatch()
    batch.add(str(tmp_path / "ok" / "cert.pem"), b"new", 0o644)
    batch.add(str(tmp_path / "gone" / "key.pem"), b"k", 0o600)
    with pytest.raises(FileError):
        batch.commit()
    assert (tmp_path / "ok" / "cert.pem").read_bytes() == b"old"
    assert os.listdir(tmp_path / "ok") == ["cert.pem"]


def test_a_key_whose_rename_fails_leaves_no_temp_file_behind(tmp_path):
    batch = FileBatch(keep_previous=False)
    batch.add(str(tmp_path / "cert.pem"), b"cert", 0o644)
    batch.add(str(tmp_path / "key.pem"), b"stands for a private key", 0o600)
    (tmp_path / "key.pem").mkdir()  # a directory where the key goes, since staging: the rename fails for real
    (tmp_path / "key.pem" / "x").write_bytes(b"")
    with pytest.raises(FileError, match=r"key\.pem: Is a directory"):
        batch.commit()
    assert sorted(os.listdir(tmp_path)) == ["cert.pem", "key.pem"]  # the temp file holding the key is gone


def test_a_failed_sync_names_the_path(tmp_path, monkeypatch):
    def fsync_fails(fd):
        raise OSError(5, "Input/output error")
    monkeypatch.setattr(os, "fsync", fsync_fails)
    batch = FileBatch()
    batch.add(str(tmp_path / "key.pem"), b"k", 0o600)
    with pytest.raises(FileError, match=rf"^{tmp_path}/key.pem: writing it failed \(Input/output error\); nothing was changed"):
        batch.commit()
    assert os.listdir(tmp_path) == []
    with pytest.raises(FileError, match=rf"^{tmp_path}: syncing the directory failed \(Input/output error\)"):
        fsync_directory(str(tmp_path))


def test_reading_a_directory_or_a_symlink_is_a_clear_error(tmp_path):
    (tmp_path / "key.pem").mkdir()
    with pytest.raises(FileError, match="key.pem: Is a directory"):
        read_file(str(tmp_path / "key.pem"))
    os.symlink(tmp_path / "key.pem", tmp_path / "link.pem")
    with pytest.raises(FileError, match="is a symlink; refusing to follow it"):
        read_file(str(tmp_path / "link.pem"))
    assert read_file(str(tmp_path / "none.pem")) is None
