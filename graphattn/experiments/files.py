"""Result files that are complete or absent: atomic writes, run folders, cache keys.

Every file a study, a benchmark or :mod:`graphattn.experiments` writes goes through here:

- :func:`atomic_path` / :func:`write_text`: the file is written under a temporary name in its
  own folder, flushed to disk and then moved over the target with :func:`os.replace`, which
  is atomic on POSIX and Windows. A failed write (a full disk, an exception, an interrupt)
  leaves the previous file as it was, and a reader sees either the old or the new complete
  file, never a cut one.
- :class:`RunFolder`: a run writes all its outputs into a hidden staging folder inside the
  output folder; :meth:`RunFolder.commit` moves them into place together at the end. An
  interrupted run changes nothing in the output folder (its staging folder is removed then,
  or by the next run); a commit interrupted half-way is finished by the next run from its
  journal, so the folder never keeps a mix of two runs' files. Inside ``with RunFolder(out):``
  every write through this module (and so :func:`~graphattn.experiments.write_table` and the
  figures) to a path under ``out`` goes to the staging folder: a script keeps its paths.
- :func:`cache_key`: a short hash of every setting that shapes a cached result plus the
  versions of graphattn, torch and numpy, for file names of caches.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import shutil
import stat
import tempfile
import threading
import weakref
from collections.abc import Iterator, Mapping
from pathlib import Path

__all__ = ["RunFolder", "atomic_path", "cache_key", "staged", "write_text"]

_JOURNAL = ".run-commit.json"  # in a run folder while a commit is under way
_MANIFEST = ".run-manifest.json"  # the files of the last committed run (``exclusive`` runs)
_STAGING = ".run-"  # staging folders: ``.run-<pid>-<token>.partial``
_active: list[RunFolder] = []  # the run folders whose ``with`` block is running, innermost last
_active_lock = threading.Lock()


def _default_mode() -> int:
    """``0o666`` less the process umask: the mode ``open()`` would give a new file."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # elsewhere: read it by setting it (and put it back at once)
    os.umask(mask)
    return 0o666 & ~mask


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (where the platform can open folders)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - Windows
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - file systems without directory fsync
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path beside ``path`` to write to; moved over ``path`` when the block ends.

    The temporary name keeps the suffix (``.png`` stays ``.png``, so writers that choose the
    format by the name, such as matplotlib, still do). When the block raises, the temporary
    file is removed and ``path`` is left as it was. The new file gets the mode of the file it
    replaces (or the usual mode of a new file).

    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "t.txt"
    >>> with atomic_path(target) as tmp:
    ...     _ = tmp.write_text("done")
    >>> target.read_text(), sorted(p.name for p in target.parent.iterdir())
    ('done', ['t.txt'])
    """
    path = staged(path)
    folder = path.parent
    folder.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=folder)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        mode = stat.S_IMODE(path.stat().st_mode) if path.exists() else _default_mode()
        os.chmod(tmp, mode)
        _fsync(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_folder(folder)


def staged(path: str | Path) -> Path:
    """Where a write to ``path`` goes: into the staging folder of the innermost active
    :class:`RunFolder` whose folder holds ``path``, else ``path`` itself."""
    path = Path(path)
    target = os.path.abspath(path)
    with _active_lock:
        runs = list(reversed(_active))
    for run in runs:
        root = os.path.abspath(run.path)
        if os.path.commonpath([root, target]) != root:
            continue
        rel = Path(os.path.relpath(target, root))
        if rel.parts and rel.parts[0].startswith(_STAGING):
            return path  # already in a staging folder
        return run.staging / rel
    return path


def write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_path`); returns the path
    (where it will be once an active :class:`RunFolder` commits)."""
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="") as f:
        f.write(text)
    return path


def cache_key(settings: Mapping[str, object], *, length: int = 16) -> str:
    """A hex digest of ``settings`` (as sorted JSON) together with the versions of graphattn,
    torch and numpy, which also shape what a cache holds.

    Put every setting that changes the cached content into ``settings``: two calls give the
    same key exactly when all of them, and the versions, agree.

    >>> cache_key({"agents": 100, "seed": 0}) == cache_key({"seed": 0, "agents": 100})
    True
    >>> cache_key({"agents": 100, "seed": 0}) == cache_key({"agents": 100, "seed": 1})
    False
    """
    import numpy
    import torch

    from .. import __version__

    if not isinstance(settings, Mapping):
        raise TypeError(f"`settings` must be a mapping, got {type(settings).__name__}")
    versions = {"graphattn": __version__, "torch": torch.__version__, "numpy": numpy.__version__}
    text = json.dumps(
        {"settings": dict(settings), "versions": versions}, sort_keys=True, default=str
    )
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # pragma: no cover - exists, but owned by another user
        return True
    return True


def _staging_pid(name: str) -> int | None:
    if not (name.startswith(_STAGING) and name.endswith(".partial")):
        return None
    try:
        return int(name[len(_STAGING) :].split("-", 1)[0])
    except ValueError:
        return None


class RunFolder:
    """The output folder of one run, filled all at once when the run completes.

    Write the run's files into :attr:`staging` (a hidden folder inside :attr:`path`) and call
    :meth:`commit` at the end: every staged file is then moved to the same place under
    :attr:`path`, replacing the previous run's file of that name; files the run did not write
    stay. Until the commit nothing in :attr:`path` changes, so an interrupted run leaves the
    previous results complete. Used as a context manager, the run commits when the block
    ends normally and discards its staging folder when it raises.

    Inside the ``with`` block, writes through :func:`atomic_path` (:func:`write_text`,
    :func:`~graphattn.experiments.write_table`, the figures of
    :mod:`~graphattn.experiments.plots`) to paths under :attr:`path` are redirected to the
    staging folder, so a script writes to its usual paths.

    Creating a ``RunFolder`` checks at once, before any compute, that ``path`` can be written
    (it creates ``path`` and the staging folder), finishes a commit that a killed run left
    half-done, and removes staging folders of runs that died.

    Args:
        path: the output folder.
        exclusive (bool, optional): the folder holds this run's outputs only: at the commit,
            files that the previous *committed* run wrote (listed in the folder's manifest)
            and this one did not are removed. Files that no run recorded are never touched.
            (default: :obj:`False`)

    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "run"
    >>> with RunFolder(out) as run:
    ...     _ = write_text(out / "a.csv", "x\\n1\\n")  # lands in run.staging for now
    ...     (out / "a.csv").exists()
    False
    >>> sorted(p.name for p in out.iterdir())
    ['a.csv']
    """

    def __init__(self, path: str | Path, *, exclusive: bool = False):
        self.path = Path(path)
        self.exclusive = bool(exclusive)
        if self.path.exists() and not self.path.is_dir():
            raise ValueError(f"`path` {str(self.path)!r} is a file, not a folder")
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            _recover(self.path)
            token = secrets.token_hex(4)
            self.staging = self.path / f"{_STAGING}{os.getpid()}-{token}.partial"
            self.staging.mkdir()
        except OSError as err:
            raise ValueError(f"`path`: cannot write into the output folder: {err}") from err
        self.committed = False
        # a run folder dropped without commit or discard (an error outside a ``with`` block)
        # takes its staging folder along, when collected or at exit
        self._abandon = weakref.finalize(self, _abandon, self.path, self.staging)

    def __enter__(self) -> RunFolder:
        with _active_lock:
            _active.append(self)
        return self

    def __exit__(self, kind, value, traceback) -> None:
        with _active_lock:
            _active.remove(self)
        if kind is None:
            self.commit()
        else:
            self.discard()

    def files(self) -> list[str]:
        """The staged files, as ``/``-separated paths relative to the staging folder."""
        return sorted(
            p.relative_to(self.staging).as_posix() for p in self.staging.rglob("*") if p.is_file()
        )

    def commit(self) -> list[Path]:
        """Move every staged file into :attr:`path`; returns their final paths."""
        if self.committed:
            raise RuntimeError("this run folder was already committed")
        files = self.files()
        stale: list[str] = []
        if self.exclusive:
            stale = [f for f in _manifest(self.path) if f not in set(files)]
        journal = {
            "staging": self.staging.name, "files": files, "remove": stale,
            "exclusive": self.exclusive,
        }  # fmt: skip
        write_text(self.path / _JOURNAL, json.dumps(journal))
        _finish(self.path, journal)
        with contextlib.suppress(FileNotFoundError):
            (self.path / _JOURNAL).unlink()
        self.committed = True
        self._abandon.detach()
        return [self.path / f for f in files]

    def discard(self) -> None:
        """Remove the staging folder and everything in it (nothing in :attr:`path` changes)."""
        self._abandon.detach()
        shutil.rmtree(self.staging, ignore_errors=True)

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"


def _abandon(folder: Path, staging: Path) -> None:
    """Remove an abandoned staging folder, unless a commit journal still needs its files."""
    try:
        journal = json.loads((folder / _JOURNAL).read_text())
        if journal.get("staging") == staging.name:
            return  # an interrupted commit: the next run finishes it from these files
    except (OSError, ValueError, AttributeError):
        pass
    shutil.rmtree(staging, ignore_errors=True)


def _manifest(folder: Path) -> list[str]:
    try:
        return list(json.loads((folder / _MANIFEST).read_text())["files"])
    except (OSError, ValueError, KeyError, TypeError):
        return []


def _finish(folder: Path, journal: dict) -> None:
    """Carry out a commit's journal: move the staged files into place (those already moved
    are skipped, so it can run again after an interruption), remove the stale ones."""
    staging = folder / journal["staging"]
    for name in journal["files"]:
        source, target = staging / name, folder / name
        if source.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(source, target)
    for name in journal.get("remove", []):
        with contextlib.suppress(FileNotFoundError):
            (folder / name).unlink()
    if journal.get("exclusive"):
        write_text(folder / _MANIFEST, json.dumps({"files": journal["files"]}))
    _fsync_folder(folder)
    shutil.rmtree(staging, ignore_errors=True)


def _recover(folder: Path) -> None:
    """Finish a commit that was interrupted, and remove staging folders of dead runs."""
    journal_path = folder / _JOURNAL
    if journal_path.exists():
        try:
            journal = json.loads(journal_path.read_text())
        except ValueError:  # pragma: no cover - the journal is written atomically
            journal = None
        if journal is not None:
            _finish(folder, journal)
        journal_path.unlink()
    for entry in folder.iterdir():
        pid = _staging_pid(entry.name)
        if pid is not None and entry.is_dir() and not _alive(pid):
            shutil.rmtree(entry, ignore_errors=True)
