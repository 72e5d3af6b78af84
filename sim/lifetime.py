"""Worker processes that end with the process they work for.

A ``ProcessPoolExecutor`` worker waits for work on a queue whose write end it
holds itself, so it never sees the end of its parent: after ``kill -9`` of the
parent it would sit idle forever (and with the forkserver start method its own
parent is the forkserver, which in turn waits for its children).  The pools of
``aicloud sweep`` and ``aicloud calibrate`` start their workers with
:func:`exit_with` as initializer.
"""

from __future__ import annotations

import os
import select
import threading
import time


def exit_with(pid: int) -> None:
    """Pool initializer: exit this process as soon as process ``pid`` has ended."""
    threading.Thread(target=_watch, args=(pid,), name="exit-with-parent", daemon=True).start()


def _watch(pid: int) -> None:
    try:
        fd = os.pidfd_open(pid)  # Linux >= 5.3: readable once the process has exited
    except (AttributeError, OSError):
        fd = None
    if fd is not None:
        select.select([fd], [], [])
        os._exit(1)
    while True:  # elsewhere: poll
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            os._exit(1)
        except PermissionError:
            os._exit(1)  # the pid now belongs to another user's process: ours is gone
        time.sleep(1.0)
