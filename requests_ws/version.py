"""The package version (read by pyproject.toml) and the default User-Agent."""

import sys

__all__ = ["__version__", "USER_AGENT"]

__version__ = "0.1.0"

USER_AGENT = f"requests_ws/{__version__} Python/{sys.version_info.major}.{sys.version_info.minor}"
