"""Training in a child process that only trains, for the service that also answers the bot.

The jobs run a retrain in a worker thread, which keeps the event loop free but not the GIL:
the Python-heavy parts of training (the hyper-parameter search loop, the baselines) hold it
for milliseconds at a time, and every /score answered meanwhile waits for it again and
again.  ``churnguard run`` therefore hands the jobs this trainer (``JobRunner(services=
{"trainer": ...})``, the injection point the jobs provide): ``model.service.train_candidate``
in a fresh ``spawn`` process at a lower CPU priority, then ``register_candidate`` here.  The
bot's process keeps its GIL and its cores for answers; progress lines come back through a
pipe; the result (or the exception) comes back as the thread version's would, so the
retrain job, its report and its alerts do not change.

``spawn`` rather than ``fork``: the service has threads (and LightGBM's OpenMP pool), which
``fork`` does not copy safely.  The price is a few seconds of imports per retrain.

Three rules make the child safe to leave running:

* **It dies with the service.**  The child holds the read end of a pipe whose only write end
  the service holds; a thread in the child waits on it and ends the process at end-of-file,
  which the kernel delivers as soon as the service is gone, however it died (``kill -9``
  too).  Chosen over Linux's ``PR_SET_PDEATHSIG``: that signal fires when the *thread* that
  started the child ends, not the process (a trainer starts from a pool thread, which may
  end while the service lives), it needs ctypes, and it exists only on Linux; the pipe works
  wherever ``multiprocessing`` does and needs no fallback.
* **It only trains.**  It returns a ``Candidate`` and writes nothing; the service registers
  and promotes it.  A child whose service died has no one to hand its model to, and cannot
  promote anything.
* **It stops when told.**  ``cancel`` (the job runner's stop event, set on SIGTERM/SIGINT)
  makes the service kill the child within a fraction of a second and raise ``JobCancelled``.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any, TypeVar

from bot.workers import lower_priority
from jobs.runner import JobCancelled
from storage.db import Database

if TYPE_CHECKING:
    from churnguard import Settings
    from model.artifact import ChurnModel
    from model.registry import Registry
    from model.service import Candidate, TrainResult

log = logging.getLogger(__name__)

T = TypeVar("T")
POLL_SECONDS = 0.2
FINISH_SECONDS = 2.0  # a child that sent its result gets this long to exit before it is terminated
TERMINATE_SECONDS = 1.0
EXIT_ORPHANED = 3  # the child's exit code when it ended because its parent was gone
_LINE, _RESULT, _ERROR = "line", "result", "error"
Say = Callable[[str], None]


# ------------------------------------------------------------------------------ in the child
def _exit_when_parent_dies(watch: Connection) -> None:
    """Block until the parent's end of the watch pipe closes (it never writes), then end the
    process at once: no cleanup, no half-finished work handed to anyone."""
    with contextlib.suppress(EOFError, OSError):
        watch.recv()
    os._exit(EXIT_ORPHANED)


def _worker_main(watch: Connection, results: Connection, target: Callable[..., Any], args: tuple[Any, ...]) -> None:
    # Ctrl-C reaches the whole process group; the parent decides whether the work stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_when_parent_dies, args=(watch,), name="churnguard-parent-watch",
                     daemon=True).start()
    lower_priority()
    sending = threading.Lock()

    def send(message: tuple[str, Any]) -> None:
        with sending:
            results.send(message)

    try:
        message: tuple[str, Any] = (_RESULT, target(lambda line: send((_LINE, str(line))), *args))
    except BaseException as error:  # every failure goes back to the parent, which raises it
        message = (_ERROR, error)
    try:
        send(message)
    except Exception as error:  # the result or the error does not pickle: say what it was
        send((_ERROR, RuntimeError(f"the worker's {message[0]} could not be sent back: "
                                   f"{type(error).__name__}: {error}")))


# ----------------------------------------------------------------------------- in the parent
def run_in_worker(
    target: Callable[..., T],
    *args: Any,
    progress: Say | None = None,
    cancel: threading.Event | None = None,
    name: str = "churnguard-worker",
) -> T:
    """``target(say, *args)`` in a fresh ``spawn`` process that ends when this one does.

    Blocking: call it from a worker thread.  ``target`` must be a module-level function (it is
    pickled by name); the lines it passes to ``say`` reach ``progress`` here.  Its result or
    its exception comes back as if it had run here.  When ``cancel`` is set the child is
    killed and :class:`JobCancelled` raised; a child that dies on its own (out of memory, say)
    gives a ``RuntimeError`` with its exit code.
    """
    context = multiprocessing.get_context("spawn")
    watch_child, watch_parent = context.Pipe(duplex=False)  # the child reads, this process only holds
    results_parent, results_child = context.Pipe(duplex=False)
    process = context.Process(target=_worker_main, args=(watch_child, results_child, target, args), name=name)
    process.start()
    # The child holds its own copies now; closing ours makes end-of-file mean "the other side is gone".
    watch_child.close()
    results_child.close()
    finished = False
    try:
        while True:
            if cancel is not None and cancel.is_set():
                raise JobCancelled("the service is stopping; the training worker was stopped and nothing "
                                   "was registered")
            if not results_parent.poll(POLL_SECONDS):
                continue
            try:
                kind, value = results_parent.recv()
            except EOFError:
                process.join(TERMINATE_SECONDS)
                raise RuntimeError(f"the training process ended before it finished (exit code {process.exitcode})"
                                   ) from None
            if kind == _LINE:
                if progress is not None:
                    progress(str(value))
                continue
            finished = True
            if kind == _RESULT:
                return value  # type: ignore[no-any-return]
            raise value
    finally:
        watch_parent.close()  # end-of-file for the child: one still running ends itself
        _reap(process, FINISH_SECONDS if finished else 0.0)
        results_parent.close()


def _reap(process: multiprocessing.process.BaseProcess, grace: float) -> None:
    """Wait ``grace`` seconds for the child to exit, then terminate it, then kill it."""
    process.join(grace)
    if process.is_alive():
        process.terminate()
        process.join(TERMINATE_SECONDS)
    if process.is_alive():
        log.warning("the worker process %s did not stop on SIGTERM; killing it", process.pid)
        process.kill()
        process.join()


def _train_in_child(say: Say, database_url: str, settings: Settings, options: dict[str, Any]) -> Candidate:
    """In the child: open the store, train a candidate (reads only), hand it back."""
    from model.service import train_candidate

    db = Database(database_url)
    try:
        return train_candidate(db, settings, progress=say, **options)
    finally:
        db.dispose()


def process_trainer(
    db: Database,
    settings: Settings,
    *,
    actor: str = "system",
    progress: Say | None = None,
    registry: Registry[ChurnModel] | None = None,
    seed: int | None = None,
    promote: bool = True,
    cancel: threading.Event | None = None,
    batch_window: list[int] | None = None,
) -> TrainResult:
    """``train_and_register`` with the same arguments: the training in a low-priority child
    process, the registration (and any promotion) here.

    Blocking, like the thread version; call it from a worker thread.  ``registry`` is this
    process's registry (shared with the scorer), so a promotion here reaches the scorer at
    once.  ``cancel`` set stops the training and raises :class:`JobCancelled`; nothing is
    registered then.
    """
    from model.service import open_registry, register_candidate

    options = {"seed": seed, "batch_window": batch_window}
    candidate: Candidate = run_in_worker(_train_in_child, db.url, settings, options, progress=progress,
                                         cancel=cancel, name="churnguard-trainer")
    if cancel is not None and cancel.is_set():
        raise JobCancelled("the service is stopping; the trained model was not registered")
    return register_candidate(db, candidate, registry=registry or open_registry(db, settings), actor=actor,
                              promote=promote, progress=progress)


__all__ = ["EXIT_ORPHANED", "process_trainer", "run_in_worker"]
