"""Builds the optional C accelerator; metadata lives in pyproject.toml.

The extension is optional: without a compiler, or with
REQUESTS_WS_NO_EXTENSIONS=1, the package installs with its pure-Python
masking (see requests_ws/masking.py).
"""

import os
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


class OptionalBuildExt(build_ext):
    """Build the accelerator if possible; never fail the install because of it."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # no compiler, no headers
            print(
                f"warning: requests_ws C accelerator not built ({exc}); using pure-Python masking",
                file=sys.stderr,
            )

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except Exception as exc:
            print(
                f"warning: requests_ws C accelerator not built ({exc}); using pure-Python masking",
                file=sys.stderr,
            )


extensions = []
if os.environ.get("REQUESTS_WS_NO_EXTENSIONS") != "1":
    extensions.append(
        Extension(
            "requests_ws._speedups",
            sources=["requests_ws/_speedups.c"],
            optional=True,
            extra_compile_args=["-O3"] if os.name == "posix" else [],
        )
    )

setup(ext_modules=extensions, cmdclass={"build_ext": OptionalBuildExt})
