"""Only the C extension lives here; everything else is in pyproject.toml.

Building ``corpus_clean._fast`` needs a C compiler and the Python headers; without them
the install stops with a message that says what to install, not a compiler traceback.
"""

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.errors import CCompilerError, CompileError, ExecError, PlatformError

NEEDS_COMPILER = (
    "corpus-clean needs a C compiler and Python headers to build corpus_clean._fast: "
    "apt-get install gcc python3-dev (Debian/Ubuntu), dnf install gcc python3-devel "
    "(Fedora), xcode-select --install (macOS)"
)


class BuildFast(build_ext):
    """build_ext whose failure for want of a compiler or headers says so."""

    def run(self) -> None:
        try:
            super().run()
        except (PlatformError, ExecError) as err:
            raise SystemExit(f"error: {NEEDS_COMPILER} ({err})") from err

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except (CCompilerError, CompileError, ExecError) as err:
            raise SystemExit(f"error: {NEEDS_COMPILER} ({err})") from err


setup(
    cmdclass={"build_ext": BuildFast},
    ext_modules=[
        Extension("corpus_clean._fast", ["corpus_clean/_fast.c"], extra_compile_args=["-O3"])
    ],
)
