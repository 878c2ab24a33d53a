"""The package version, read by pyproject.toml and the User-Agent header."""

__all__ = ["__version__"]

__version__ = "0.1.0"
