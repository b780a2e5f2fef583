"""`tastemaker serve --workers N`: N uvicorn server processes, each accepting on its own listening socket.

uvicorn's own `--workers` binds one socket in the parent and every worker accepts from it. asyncio takes every
connection pending when a worker wakes, so when a client opens its keep-alive connections in a burst (a load
balancer's pool, a benchmark's connections) one worker can take all of them while the other idles for as long
as those connections live: measured with 16 connections and 2 workers, about one burst in eight ran on a single
worker at half the throughput. Here each worker binds its own socket to the same address with SO_REUSEPORT, and
the kernel spreads new connections over the workers' sockets by a hash of the connection's addresses.

The parent supervises and serves nothing: a worker that dies is started again (and logged); SIGTERM or SIGINT
stops every worker gracefully (uvicorn finishes the requests in flight); a worker whose parent dies exits by
itself (wiring._exit_with_parent). A worker that keeps dying within seconds of its start (a port taken by a
process outside the group, a broken install) stops the server instead of restarting forever. The parent holds
no listening socket, so a dead worker's socket leaves the group at once and new connections go to the others.
Platforms without SO_REUSEPORT use uvicorn's shared socket.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import threading
import time

log = logging.getLogger("tastemaker.server")

QUICK_DEATH_SECONDS = 10.0  # a worker that dies sooner than this after its start counts as failing to start
QUICK_DEATHS_ALLOWED = 5  # consecutive quick deaths before the server gives up
STOP_GRACE_SECONDS = 30.0  # how long stopping workers may take to finish their requests before they are killed


def reuse_port_supported() -> bool:
    return hasattr(socket, "SO_REUSEPORT")


def bound_socket(host: str, port: int, *, reuse_port: bool) -> socket.socket:
    """A TCP socket bound to the address as uvicorn binds (SO_REUSEADDR: TIME_WAIT is no conflict); with
    `reuse_port` it shares the address with the other workers' sockets (SO_REUSEPORT). Raises OSError when the
    address is taken (by a socket outside the workers' group)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def worker_main(host: str, port: int, log_level: str) -> None:
    """One worker process: its own socket, then uvicorn serving the app factory until SIGTERM."""
    import uvicorn

    sock = bound_socket(host, port, reuse_port=True)
    sock.set_inheritable(True)
    config = uvicorn.Config("tastemaker.cli.wiring:app_from_env", factory=True, host=host, port=port,
                            log_level=log_level, access_log=False)
    uvicorn.Server(config).run(sockets=[sock])


def run_workers(count: int, host: str, port: int, log_level: str) -> int:
    """Start `count` workers and keep them running until SIGTERM/SIGINT; 0 on a requested stop, 1 when a
    worker cannot start."""
    context = multiprocessing.get_context("spawn")  # a fresh interpreter per worker: no state forked mid-thread
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())

    def start(index: int) -> tuple[multiprocessing.process.BaseProcess, float]:
        process = context.Process(target=worker_main, args=(host, port, log_level), name=f"tastemaker-worker-{index}",
                                  daemon=False)
        process.start()
        return process, time.monotonic()

    workers = [start(index) for index in range(count)]
    quick_deaths, failed = 0, False
    while not stop.wait(0.5):
        for index, (process, started) in enumerate(workers):
            if process.is_alive():
                continue
            lived = time.monotonic() - started
            quick_deaths = quick_deaths + 1 if lived < QUICK_DEATH_SECONDS else 0
            if quick_deaths >= QUICK_DEATHS_ALLOWED:
                log.error("worker process %s exited with code %s %d times in a row within %.0f s of its start; "
                          "stopping the server (see the worker's messages above)", process.pid, process.exitcode,
                          quick_deaths, QUICK_DEATH_SECONDS)
                failed = True
                stop.set()
                break
            log.warning("worker process %s exited with code %s after %.1f s; starting another", process.pid,
                        process.exitcode, lived)
            workers[index] = start(index)
    for process, _ in workers:
        if process.is_alive() and process.pid is not None:
            os.kill(process.pid, signal.SIGTERM)  # uvicorn's handler: finish in-flight requests, then exit
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for process, _ in workers:
        process.join(max(deadline - time.monotonic(), 0.1))
        if process.is_alive():
            process.kill()
            process.join()
    return 1 if failed else 0
