"""Errors a duty officer can act on: a message, a hint and an exit code."""

from __future__ import annotations

# Exit codes, pinned by tests (STYLE.md).
OK = 0
SOME_FAILED = 1
REFUSED = 2
NOTHING_DELIVERED = 3
INTERRUPTED = 130


class BroadcastError(Exception):
    """An expected failure: say what happened and what to do next."""

    exit_code = REFUSED

    def __init__(self, message: str, hint: str | None = None, exit_code: int | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        if exit_code is not None:
            self.exit_code = exit_code


class ConfigError(BroadcastError):
    """A workspace file is missing, unreadable or wrong."""

    def __init__(self, file: object, key: str | None, message: str, hint: str | None = None):
        where = f"{file}" + (f": {key}" if key else "")
        super().__init__(f"{where}: {message}", hint)
        self.file = file
        self.key = key


class TemplateError(BroadcastError):
    """A template is malformed or cannot be rendered."""


class VariableError(TemplateError):
    """A --set value is missing, unknown or invalid."""


class PolicyError(BroadcastError):
    """A safety rule refused the action before anything was sent."""


class StoreError(BroadcastError):
    """The log database cannot be used."""
