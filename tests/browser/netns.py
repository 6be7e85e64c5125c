"""Private network namespaces for WebRTC tests.

aioice never offers 127.0.0.1 as an ICE candidate, so WebRTC peers on one machine need another
address. These helpers make one without touching the host's network: each namespace is held
by an ``unshare -n`` process of its own (it disappears with that process), addresses are in a
private /30 that exists only inside the namespaces made here, and code enters a namespace per
thread (``setns`` on a worker thread): sockets that thread opens, and processes it starts,
live in the namespace.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

CLONE_NEWNET = 0x40000000
T = TypeVar("T")


def unavailable_reason() -> str | None:
    """Why network namespaces cannot be made here, or None."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    for tool in ("unshare", "nsenter", "ip"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (util-linux / iproute2)"
    return None


class NetNamespace:
    """A network namespace held by a sleeping ``unshare -n`` process, loopback up."""

    def __init__(self) -> None:
        self._holder = subprocess.Popen(["unshare", "-n", "sleep", "infinity"],
                                        stdin=subprocess.DEVNULL)
        self._pool: ThreadPoolExecutor | None = None
        path = f"/proc/{self._holder.pid}/ns/net"
        host = os.readlink("/proc/self/ns/net")
        for _ in range(500):  # unshare switches the namespace before exec'ing sleep
            if os.path.exists(path) and os.readlink(path) != host:
                break
            os.sched_yield()
        else:
            self.close()
            raise RuntimeError("unshare -n did not create a network namespace")
        self.ip("link", "set", "lo", "up")

    @property
    def pid(self) -> int:
        return self._holder.pid

    def ip(self, *args: str) -> str:
        """Run ``ip ARGS`` inside the namespace."""
        out = subprocess.run(["nsenter", "-t", str(self.pid), "-n", "ip", *args],
                             capture_output=True, text=True, timeout=10)
        if out.returncode != 0:
            raise RuntimeError(f"ip {' '.join(args)}: {out.stderr.strip()}")
        return out.stdout

    def run(self, fn: Callable[..., T], *args: object) -> T:
        """Call ``fn(*args)`` on this namespace's worker thread and return its result."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, initializer=self._enter,
                                            thread_name_prefix=f"netns-{self.pid}")
        return self._pool.submit(fn, *args).result()

    def _enter(self) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        fd = os.open(f"/proc/{self.pid}/ns/net", os.O_RDONLY)
        try:
            if libc.setns(fd, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns(CLONE_NEWNET) failed")
        finally:
            os.close(fd)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
        if self._holder.poll() is None:
            self._holder.kill()
            self._holder.wait(timeout=10)


def veth_pair(a: NetNamespace, b: NetNamespace, *, prefix: str = "10.213.61",
              name: str = "vcx") -> tuple[str, str]:
    """Link ``a`` and ``b`` (which may be the same namespace) by a veth pair with the
    addresses ``prefix.1`` (in ``a``) and ``prefix.2`` (in ``b``) of a /30; returns them."""
    left, right = f"{name}0", f"{name}1"
    a.ip("link", "add", "name", left, "type", "veth", "peer", "name", right,
         "netns", str(b.pid))
    a.ip("addr", "add", f"{prefix}.1/30", "dev", left)
    b.ip("addr", "add", f"{prefix}.2/30", "dev", right)
    a.ip("link", "set", left, "up")
    b.ip("link", "set", right, "up")
    return f"{prefix}.1", f"{prefix}.2"
