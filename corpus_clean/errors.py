"""What can go wrong, in two names: the base of every error a user can fix, and the
exit codes the command line ends with. The CLI maps one to the other in one place."""

from __future__ import annotations

from enum import IntEnum


class CorpusCleanError(Exception):
    """An error the user can fix: a bad input, rules file, index or output path. The
    message is one line (``PATH: what is wrong``) that says how."""


class ExitCode(IntEnum):
    OK = 0
    #: ``--check`` found duplicates of indexed articles.
    DUPLICATES_FOUND = 1
    #: Bad usage, bad input, an unusable rules file, index or output.
    ERROR = 2
    #: Ctrl-C or SIGTERM (128 + SIGINT, as shells report it).
    INTERRUPTED = 130
