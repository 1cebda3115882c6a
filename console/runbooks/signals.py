"""SIGTERM and SIGHUP stop a run the way Ctrl-C does.

`timeout`, systemd, CI runners and Kubernetes stop a process with SIGTERM, and a closed terminal sends
SIGHUP; Python's default for both is to die on the spot, which would leave a half-made change applied and
its Lease held. Inside `interrupts()` they raise `Interrupted` (a KeyboardInterrupt) instead, so the run's
own rollback path handles all three alike.

One stop is often delivered twice: GNU `timeout` sends its TERM to the command and then to its whole process
group, and a terminal's Ctrl-C reaches every process of the foreground group. A second signal within
`REPEAT_S` of the first is that same stop, not a person stopping the rollback, and is ignored; a deliberate
second Ctrl-C comes later than that.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from types import FrameType
from typing import Any

STOPS = (signal.SIGTERM, signal.SIGHUP)
REPEAT_S = 1.0
_last_stop: list[float] = []  # when interrupts() last raised, to know a repeat of the same stop


class Interrupted(KeyboardInterrupt):
    def __init__(self, signame: str):
        super().__init__(signame)
        self.signame = signame


def signal_name(e: BaseException) -> str:
    """The signal behind an interrupt: a plain KeyboardInterrupt is Ctrl-C."""
    return e.signame if isinstance(e, Interrupted) else "SIGINT"


def _raise(signum: int, _frame: FrameType | None) -> None:
    now = time.monotonic()
    if _last_stop and now - _last_stop[-1] < REPEAT_S:
        return
    _last_stop[:] = [now]
    raise Interrupted(signal.Signals(signum).name)


@contextmanager
def _handling(sigs: tuple[signal.Signals, ...], handler: Any) -> Iterator[None]:
    """`handler` for `sigs` within the block, the previous ones back after it. Only the main thread may set
    handlers (the console runs runbooks in a worker, where the app owns the signals): elsewhere a no-op."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) for s in sigs}
    for s in sigs:
        signal.signal(s, handler)
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def interrupts() -> AbstractContextManager[None]:
    """Within the block SIGINT, SIGTERM and SIGHUP raise Interrupted, once per stop (see `REPEAT_S`)."""
    _last_stop.clear()
    return _handling((signal.SIGINT, *STOPS), _raise)


def shielded() -> AbstractContextManager[None]:
    """Within the block SIGINT, SIGTERM and SIGHUP are ignored: it holds a run's last journal records and
    its Lease release, which take milliseconds and must not be cut in half; the run is ending anyway."""
    return _handling((signal.SIGINT, *STOPS), signal.SIG_IGN)
