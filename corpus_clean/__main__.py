"""The ``corpus-clean`` command (also ``python -m corpus_clean``).

Interrupts are set up before anything else is imported: importing the CLI and the
library takes a few hundred milliseconds, and a SIGTERM or Ctrl-C in that time must end
the run as any other interrupt does (exit 130, no traceback), not kill it by the signal.
"""

import signal
import sys

from .errors import ExitCode


def main() -> None:
    for signum in (signal.SIGINT, signal.SIGTERM):
        if signal.getsignal(signum) is not signal.SIG_IGN:  # nohup, a background job
            signal.signal(signum, _exit_interrupted)
    from .cli import main as run_cli

    run_cli()


def _exit_interrupted(signum: int, frame: object) -> None:
    """Outside a command's work (starting, parsing options, exiting) there is nothing
    to undo or report: just end as interrupted."""
    sys.exit(ExitCode.INTERRUPTED)


if __name__ == "__main__":
    main()
