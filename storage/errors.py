"""Errors a user can fix, kept apart from bugs so every entry point can show them plainly."""

from __future__ import annotations

from typing import Any


class UserError(Exception):
    """A problem with the user's input or request: shown as one clear message, never a traceback.

    ``exit_code`` is what the command line returns (2 = bad input, nothing stored);
    ``details`` carries structured facts (column, rows, examples) for ``--json`` output.
    """

    exit_code = 2

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.details: dict[str, Any] = details


class SchemaConflict(UserError):
    """A command's schema settings disagree with the schema remembered in storage."""


class NotFound(UserError):
    """Something the user named (a client, a model version) does not exist."""

    exit_code = 1


class IngestRejected(UserError):
    """A CRM file or SQL pull that cannot be stored as it is; nothing of it was stored.

    ``details`` names the problem (``problem``), and where it is when that is known:
    ``column``, ``rows`` (1-based; ``row_kind`` says "data row" or "file line") and ``examples``.
    """
