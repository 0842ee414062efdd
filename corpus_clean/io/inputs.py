"""Input discovery: the command line's paths become the files to read, each of a kind
(pages, JSONL, Parquet, or a special file that is skipped), and what tells a file apart
from what it was when the run read it."""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..errors import CorpusCleanError
from ..formats import JSONL_SUFFIXES, PARQUET_SUFFIX, FormatError, require_pyarrow
from .codec import LONE_SURROGATES

STDIN = "-"
PAGE_SUFFIXES = (".txt",)


class InputError(CorpusCleanError):
    """A path that cannot be read as input: missing, empty of matches, or of unknown kind."""


@dataclass(frozen=True)
class InputFile:
    """One file to read, with the name records will carry as their ``source``.

    ``special`` is a FIFO, socket or device met in a folder: skipped and counted, as
    ``grep -r`` does, since opening one could wait forever."""

    path: str
    kind: Literal["page", "jsonl", "parquet", "special"]

    @property
    def source(self) -> str:
        """The path as records name it: bytes of the name that are not UTF-8 (which the
        OS hands over as lone surrogates) become U+FFFD, so the output stays UTF-8."""
        return self.path if self.path.isascii() else LONE_SURROGATES.sub("\ufffd", self.path)

    #: The name its records carry when it is not the path (stdin spooled to a file).
    name: str | None = None


def _kind_of(name: str) -> Literal["page", "jsonl", "parquet"] | None:
    if name.endswith(JSONL_SUFFIXES):
        return "jsonl"
    if name.endswith(PARQUET_SUFFIX):
        return "parquet"
    if name.endswith(PAGE_SUFFIXES):
        return "page"
    return None


#: Names of a stream the shell hands over: ``/dev/stdin``, and ``<(zcat x.gz)``'s ``/dev/fd/63``.
_STREAM_NAMES = re.compile(r"/dev/stdin|/dev/fd/\d+|/proc/self/fd/\d+")


def names_a_stream(path: str) -> bool:
    """Whether ``path`` is read like stdin, once and in order: it cannot be read again."""
    return path == STDIN or _STREAM_NAMES.fullmatch(path) is not None


def resolve_inputs(paths: Iterable[str], *, skip: Iterable[str] = ()) -> list[InputFile]:
    """Expand the command-line paths into files, folders recursively and in sorted order.

    Files in ``skip`` (those the run itself writes) are left out of folders, so a rerun
    with its output inside an input folder does not read its own earlier output; named
    on their own, they are read. A FIFO or character device named on its own (or
    ``/dev/stdin``, ``/dev/fd/N``) is read as a stream, JSONL unless its name says
    otherwise; met in a folder, it is skipped (see ``InputFile``). Raises ``InputError``
    before anything is read, so a typo never costs a half run.
    """
    skipped = [Path(p) for p in skip if p != STDIN and os.path.isfile(p)]
    files: list[InputFile] = []
    for raw in paths:
        if raw == STDIN:
            files.append(InputFile(STDIN, "jsonl"))
            continue
        try:
            mode = os.stat(raw).st_mode
        except FileNotFoundError:
            raise InputError(f"{raw}: no such file or folder") from None
        except OSError as err:
            raise InputError(f"{raw}: {err.strerror}") from err
        if stat.S_ISDIR(mode):
            files.extend(_folder_inputs(raw, skipped))
        elif names_a_stream(raw) or stat.S_ISFIFO(mode) or stat.S_ISCHR(mode):
            files.append(InputFile(raw, _kind_of(raw) or "jsonl"))
        elif stat.S_ISREG(mode) and (kind := _kind_of(os.path.basename(raw))) is not None:
            files.append(InputFile(raw, kind))
        else:
            raise InputError(
                f"{raw}: unknown kind of file; name raw pages *.txt and records "
                "*.jsonl or *.ndjson (plain, .gz or .zst) or *.parquet, or pipe JSONL in "
                "with '-'"
            )
    if any(item.kind == "parquet" for item in files):
        try:
            require_pyarrow()
        except FormatError as err:
            raise InputError(str(err)) from None
    return files


def _folder_inputs(folder: str, skipped: list[Path]) -> list[InputFile]:
    found: list[InputFile] = []
    for rel, special in sorted(_walk(folder)):
        file = os.path.join(folder, rel)
        kind = _kind_of(file)
        if kind is None or _is_one_of(file, skipped):
            continue
        found.append(InputFile(file, "special" if special else kind))
    if all(item.kind == "special" for item in found):
        raise InputError(
            f"{folder}: folder holds no *.txt pages nor *.jsonl / *.ndjson records "
            "(plain, .gz or .zst) nor *.parquet"
        )
    return found


def _is_one_of(path: str, files: list[Path]) -> bool:
    """Whether ``path`` is one of ``files``, however the folders on the way are spelled."""
    name = os.path.basename(path)
    return any(name == file.name and os.path.samefile(path, file) for file in files)


def _walk(root: str) -> Iterator[tuple[str, bool]]:
    """Each file under root as (relative POSIX path, whether it is a FIFO, socket or
    device), as ``os.walk`` finds them: links to folders are not followed, unreadable
    folders are passed over. Sorted by the caller."""
    folders = [""]
    while folders:
        folder = folders.pop()
        try:
            scan = os.scandir(os.path.join(root, folder))
        except OSError:
            continue
        with scan:
            for entry in scan:
                rel = folder + entry.name
                try:
                    is_dir = entry.is_dir()
                except OSError:
                    is_dir = False
                if not is_dir:
                    yield rel, _is_special(entry)
                elif not entry.is_symlink():
                    folders.append(rel + "/")


def _is_special(entry: os.DirEntry[str]) -> bool:
    """Whether a folder entry that is no folder is a FIFO, socket or device (or a link to
    one). Costs no system call for a plain file: the folder listing tells its type."""
    if entry.is_file():
        return False
    try:
        entry.stat()
    except OSError:
        return False  # a broken link: opening it will say what is wrong
    return True


@dataclass(frozen=True, slots=True)
class FileStamp:
    """What tells a file apart from what it was when the run read it."""

    device: int
    inode: int
    size: int
    mtime_ns: int
    #: Changes with every write too, and cannot be set back as mtime can (``touch -d``).
    ctime_ns: int

    @classmethod
    def of(cls, fd: int) -> FileStamp:
        return cls.of_info(os.fstat(fd))

    @classmethod
    def of_info(cls, info: os.stat_result) -> FileStamp:
        return cls(info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)
