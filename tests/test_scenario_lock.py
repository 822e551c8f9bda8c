"""The lock of a saved scenario's files (``walkcover serve``): it leaves no ``.<slug>.lock`` in the
user's ``scenarios`` folder, and still keeps two processes from writing one scenario at once."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from filelock import Timeout

from walkcover._lock import file_lock
from walkcover.server import Workspace

DISTRICT, STANDARD = "sample-sw", "toilet"
SRC = str(Path(__file__).resolve().parents[1] / "src")


def python(code: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)], env=env, stdout=subprocess.PIPE, text=True
    )


def done(proc: subprocess.Popen) -> int:
    """`proc`'s exit code, once it has ended (its output read and closed)."""
    proc.communicate(timeout=120)
    return proc.returncode


def test_the_lock_file_is_gone_once_released(tmp_path):
    path = tmp_path / ".plan.lock"
    with file_lock(path, timeout_s=1):
        assert path.exists()
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(RuntimeError), file_lock(path, timeout_s=1):  # and after a failure
        raise RuntimeError("the save failed")
    assert list(tmp_path.iterdir()) == []


def test_another_process_still_waits_for_the_lock(tmp_path):
    path = tmp_path / ".plan.lock"
    holder = python(
        f"""
        import time
        from walkcover._lock import file_lock
        with file_lock({str(path)!r}, timeout_s=5):
            print("held", flush=True)
            time.sleep(1.5)
        """
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    with pytest.raises(Timeout), file_lock(path, timeout_s=0.2):
        pass
    assert path.exists()  # the holder's: a waiter that gave up removes nothing
    start = time.monotonic()
    with file_lock(path, timeout_s=10):  # taken once the holder is done
        waited_s = time.monotonic() - start
    assert done(holder) == 0
    assert waited_s > 0.3
    assert list(tmp_path.iterdir()) == []


def test_processes_taking_turns_never_hold_it_together(tmp_path):
    """Each process adds one to a counter under the lock, read and written apart: a lock file
    removed while another process was taking it would let two in at once and lose counts."""
    path, counter = tmp_path / ".plan.lock", tmp_path / "count.txt"
    counter.write_text("0")
    rounds, n = 150, 3
    workers = [
        python(
            f"""
            from pathlib import Path
            from walkcover._lock import file_lock
            counter = Path({str(counter)!r})
            for _ in range({rounds}):
                with file_lock(Path({str(path)!r}), timeout_s=60):
                    value = int(counter.read_text())
                    counter.write_text(str(value + 1))
            """
        )
        for _ in range(n)
    ]
    assert [done(w) for w in workers] == [0] * n
    assert int(counter.read_text()) == rounds * n
    assert not path.exists()


def test_saving_and_loading_a_scenario_leaves_no_lock_file(sample_results, tmp_path):
    ws = Workspace(tmp_path / "out", results=sample_results)
    st = ws.open(district_id=DISTRICT, standard_id=STANDARD)
    saved = ws.save(st["id"], name="Plan A")
    ws.load(saved["slug"])
    ws.save(st["id"], name="Plan A", overwrite=True)
    names = sorted(p.name for p in ws.folder.iterdir())
    assert names == ["plan-a.gpkg", "plan-a.yaml"], names


def test_lock_files_earlier_versions_left_are_removed_unless_held(sample_results, tmp_path):
    ws = Workspace(tmp_path / "out", results=sample_results)
    ws.folder.mkdir(parents=True)
    (ws.folder / ".old-plan.lock").write_text("")  # left by an earlier walkcover
    (ws.folder / ".notes.txt").write_text("mine")  # not a lock walkcover makes
    target = tmp_path / "elsewhere.lock"
    target.write_text("")
    (ws.folder / ".linked.lock").symlink_to(target)  # never followed
    with file_lock(ws.folder / ".held.lock", timeout_s=1):  # a save going on
        assert ws.saved() == []
        names = sorted(p.name for p in ws.folder.iterdir())
    assert names == [".held.lock", ".linked.lock", ".notes.txt"], names
    assert target.exists()


@pytest.mark.skipif(sys.platform == "win32", reason="flock: POSIX")
def test_a_process_taking_the_lock_as_it_is_released_keeps_it_and_its_file(tmp_path, monkeypatch):
    """The moment between the release and the removal: another process takes the lock of the
    file then. Its file stays (removing it would let a third process lock a new file at once)."""
    import fcntl

    import walkcover._lock as lock_mod

    path, taken = tmp_path / ".plan.lock", []
    real = lock_mod.FileLock

    def racing(*args, **kwargs):
        lock = real(*args, **kwargs)
        release = lock.release

        def release_then_taken(*a, **k):
            release(*a, **k)
            fd = os.open(path, os.O_RDWR)  # (a descriptor of its own: another process's flock)
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            taken.append(fd)

        lock.release = release_then_taken
        return lock

    monkeypatch.setattr(lock_mod, "FileLock", racing)
    with file_lock(path, timeout_s=1):
        pass
    monkeypatch.undo()
    try:
        assert taken and path.exists()
        with pytest.raises(Timeout), file_lock(path, timeout_s=0.2):
            pass  # a third process waits for it
    finally:
        os.close(taken[0])
    with file_lock(path, timeout_s=1):
        pass
    assert not path.exists()


@pytest.mark.skipif(sys.platform == "win32", reason="symbolic links and FIFOs: POSIX")
def test_a_link_planted_as_the_lock_is_removed_never_followed(tmp_path):
    folder, outside = tmp_path / "scenarios", tmp_path / "elsewhere"
    folder.mkdir()
    outside.mkdir()
    (outside / "precious").write_text("kept")
    (folder / ".plan.lock").symlink_to(outside / "precious")
    (folder / ".new.lock").symlink_to(outside / "new")  # dangling: would create a file there
    for name in (".plan.lock", ".new.lock"):
        with file_lock(folder / name, timeout_s=1):  # not an OSError every save, for ever
            assert not (folder / name).is_symlink()
    assert list(folder.iterdir()) == []
    assert sorted(p.name for p in outside.iterdir()) == ["precious"]
    assert (outside / "precious").read_text() == "kept"


@pytest.mark.skipif(sys.platform == "win32", reason="FIFOs: POSIX")
@pytest.mark.parametrize("kind", ["fifo", "folder"])
def test_a_fifo_or_folder_as_the_lock_is_refused_and_never_waited_on(
    sample_results, tmp_path, kind
):
    ws = Workspace(tmp_path / "out", results=sample_results)
    ws.folder.mkdir(parents=True)
    path = ws.folder / ".plan-a.lock"
    os.mkfifo(path) if kind == "fifo" else path.mkdir()
    done = subprocess.run(  # a FIFO opened for reading waits for a writer: in a child, bounded
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                from walkcover._lock import file_lock, remove_free_lock
                from walkcover._errors import OutputFolderError
                remove_free_lock(__import__("pathlib").Path({str(path)!r}))
                try:
                    with file_lock({str(path)!r}, timeout_s=1):
                        print("held")
                except OutputFolderError as exc:
                    print("refused:", exc)
                """
            ),
        ],
        env={**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("refused:") and ".plan-a.lock" in done.stdout
    assert "remove it" in done.stdout
    assert ws.saved() == []  # (listing the saved ones does not wait on it either)


@pytest.mark.skipif(sys.platform == "win32", reason="symbolic links: POSIX")
def test_a_scenarios_folder_linked_out_of_out_is_refused(sample_results, tmp_path):
    from walkcover._errors import UnsafePathError

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / ".old.lock").write_text("")  # not --out's: never removed through the link
    ws = Workspace(tmp_path / "out", results=sample_results)
    ws.out.mkdir()
    ws.folder.symlink_to(elsewhere)
    st = ws.open(district_id=DISTRICT, standard_id=STANDARD)
    with pytest.raises(UnsafePathError, match="scenario folder .* is a symbolic link"):
        ws.save(st["id"], name="Plan A")
    with pytest.raises(UnsafePathError, match="remove the link"):
        ws.saved()
    assert sorted(p.name for p in elsewhere.iterdir()) == [".old.lock"]
