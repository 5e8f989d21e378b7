"""The package version (one place: the package, model.json, the server and the CLI read it)."""

__version__ = "0.1.0"
