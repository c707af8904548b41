"""More than one core per replica: N worker processes, each a whole server (engine, caches, TLS)
listening on the same port with SO_REUSEPORT, so the kernel spreads connections across them.

The parent only supervises: it forwards SIGTERM and SIGINT to every worker, each of which drains on
its own, and exits with the worst worker's status. A worker that dies early stops the others, so a
replica is either whole or gone (its Deployment restarts it).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
from collections.abc import Callable

log = logging.getLogger("meshswitch.server")


def _bound_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to the address, which other processes may bind too (SO_REUSEPORT)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    # SO_REUSEADDR too: connections the previous process closed sit in TIME_WAIT on this port,
    # and without it a restart cannot bind for a minute.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def listening_socket(host: str, port: int) -> socket.socket:
    """A listening socket that other processes may bind too (SO_REUSEPORT)."""
    sock = _bound_socket(host, port)
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def reserve_port(host: str, port: int) -> tuple[socket.socket, int]:
    """A bound, non-listening SO_REUSEPORT socket that holds the port (port 0 picks one) while
    the workers bind it; it never accepts, so no connection is queued on it."""
    sock = _bound_socket(host, port)
    return sock, int(sock.getsockname()[1])


def supervise(count: int, host: str, port: int, serve: Callable[[socket.socket], int]) -> int:
    """Fork ``count`` workers that each run ``serve`` on their own SO_REUSEPORT socket."""
    holder, port = reserve_port(host, port)
    children: list[int] = []
    for _ in range(count):
        pid = os.fork()
        if pid == 0:  # the worker
            holder.close()
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            code = 1
            try:
                code = serve(listening_socket(host, port))
            except BaseException:
                log.exception("worker failed")
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        children.append(pid)
    holder.close()

    def forward(signum: int, _frame: object) -> None:
        for child in children:
            try:
                os.kill(child, signum)
            except ProcessLookupError:
                pass

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGINT)}
    worst = 0
    try:
        remaining = set(children)
        while remaining:
            try:
                pid, status = os.wait()
            except ChildProcessError:
                break
            except InterruptedError:
                continue
            remaining.discard(pid)
            code = os.waitstatus_to_exitcode(status)
            worst = max(worst, code if code >= 0 else 128 - code)
            if code != 0 and remaining:
                log.error("worker %d exited with %d; stopping the others", pid, code)
                forward(signal.SIGTERM, None)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return worst
