"""Only the C extension lives here; everything else is in pyproject.toml."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("corpus_clean._fast", ["corpus_clean/_fast.c"], extra_compile_args=["-O3"])
    ]
)
