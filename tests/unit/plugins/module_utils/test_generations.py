"""A generation switch killed after any one of its steps: what was served and what it may roll back
to are both still there once the next run has cleaned up (a child process dies with os._exit at
step k, so nothing of the switch's own clean-up runs)."""

import os

import pytest

from ansible_collections.mtls.fleet.plugins.module_utils import generations

MODE = 0o700


def steps_until_exit(k, action):
    """Run action in a child that dies right after its k-th change to a name (rename, replace,
    exchange, symlink). Returns whether the action finished before step k."""
    pid = os.fork()
    if pid == 0:  # the child: no return, no clean-up
        done = [0]

        def counted(function):
            def step(*args, **kwargs):
                result = function(*args, **kwargs)
                done[0] += 1
                if done[0] == k:
                    os._exit(3)
                return result
            return step
        os.rename, os.replace, os.symlink = counted(os.rename), counted(os.replace), counted(os.symlink)
        generations._exchange = counted(generations._exchange)  # pylint: disable=protected-access
        try:
            action()
        except BaseException:  # pylint: disable=broad-except
            os._exit(1)
        os._exit(0)
    _pid, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) in (0, 3)
    return os.WEXITSTATUS(status) == 0


def contents(store, name):
    """After the next run's clean-up: (what is served, what a rollback would serve)."""
    generations.remove_leftovers(str(store), MODE)
    entry = generations.Generations(str(store / name), MODE)
    read = [open(os.path.join(g, "cert.pem"), "rb").read() if g else None for g in (entry.current(), entry.previous())]
    return tuple(read)


def store_with(tmp_path, *names):
    store = tmp_path / "store"
    store.mkdir(mode=MODE)
    entry = generations.Generations(str(store / "web"), MODE)
    for name in names:
        entry.switch_to(entry.write({"cert.pem": (name, 0o644)}))
    return store, entry


@pytest.mark.parametrize("k", range(1, 6))
def test_a_rollback_killed_after_any_step_keeps_both_generations(tmp_path, k):
    store, entry = store_with(tmp_path, b"old", b"new")
    finished = steps_until_exit(k, lambda: entry.switch_to(entry.previous()))
    found = contents(store, "web")
    assert found in {(b"new", b"old"), (b"old", b"new")}, found  # not yet switched, or switched: never one lost
    if finished:
        assert found == (b"old", b"new")


@pytest.mark.parametrize("k", range(1, 8))
def test_the_0_2_migration_killed_after_any_step_keeps_the_old_directory_as_served_or_previous(tmp_path, k):
    store = tmp_path / "store"
    store.mkdir(mode=MODE)
    (store / "web").mkdir(mode=MODE)  # laid out by 0.2: a real directory
    (store / "web" / "cert.pem").write_bytes(b"0.2")
    entry = generations.Generations(str(store / "web"), MODE)
    new = entry.write({"cert.pem": (b"new", 0o644)})
    finished = steps_until_exit(k, lambda: entry.switch_to(new))
    served, previous = contents(store, "web")
    assert b"0.2" in (served, previous), (served, previous)
    if finished:
        assert (served, previous) == (b"new", b"0.2")
