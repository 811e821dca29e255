"""Work for ``bot.training.run_in_worker`` in the tests: module-level, so a spawned child can
import it by name, and light, so the child starts in about a second."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable

from bot.training import run_in_worker


def wait(say: Callable[[str], None], seconds: float) -> str:
    """Say the child's pid, then work (sleep) for ``seconds``."""
    say(f"worker {os.getpid()}")
    time.sleep(seconds)
    return "done"


def die(say: Callable[[str], None], code: int) -> None:
    """End the child abruptly, as the kernel's out-of-memory killer would."""
    say("dying")
    os._exit(code)


def parent_main() -> None:
    """A parent process for the tests: starts a worker that waits, prints its lines, and
    never returns on its own (the test kills it)."""
    run_in_worker(wait, 600.0, progress=lambda line: print(line, flush=True))


if __name__ == "__main__":
    sys.exit(parent_main())
