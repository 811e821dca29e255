"""Command arguments typed by people on phones: checked here, with answers that say how to fix them."""

from __future__ import annotations

from storage.errors import UserError


def parse_count(command: str, args: list[str], default: int, maximum: int) -> int:
    """The optional count argument of /top or /alerts: a whole number from 1 to ``maximum``."""
    if not args:
        return default
    if len(args) > 1:
        raise UserError(f"Give at most one number, for example /{command} {default}.")
    try:
        count = int(args[0])
    except ValueError:
        raise UserError(f"{args[0][:40]!r} is not a whole number; try /{command} {default}.") from None
    if not 1 <= count <= maximum:
        raise UserError(f"The number must be between 1 and {maximum}, got {count}; try /{command} {default}.")
    return count


__all__ = ["parse_count"]
