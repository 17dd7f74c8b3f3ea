"""UDP sockets of live mode: the medium's and every local node's.

``Endpoint`` serves one bound, non-blocking socket on the running loop. It reads with ``recvmsg``
(many datagrams per wake-up) so that, on Linux, the kernel's count of datagrams it dropped
because the socket's receive queue was full (``SO_RXQ_OVFL``) arrives with every datagram: a
flood can no longer degrade a run silently. Sends go straight to the socket and queue (in order)
only when the kernel's send buffer is full. It has the few methods of an asyncio datagram
transport that live mode uses (``sendto``, ``close``, ``is_closing``, ``get_extra_info``).

``RateLimit`` is a token bucket per source address (``[live] rate_limit`` datagrams per second).
"""

from __future__ import annotations

import collections
import os
import platform
import socket
import sys

BUFFER_BYTES = 4 * 1024 * 1024
READ_BATCH = 256  # datagrams read per wake-up, at most (others wait for the next one)
# Python does not name it; 40 is Linux's value everywhere but Alpha, PA-RISC and SPARC
SO_RXQ_OVFL = getattr(socket, "SO_RXQ_OVFL", 40 if sys.platform.startswith("linux") and not
                      platform.machine().startswith(("alpha", "parisc", "sparc")) else None)


def enlarge_buffers(sock) -> None:
    """Ask for large socket buffers, so bursts are not dropped by the kernel (best effort)."""
    for opt in (socket.SO_RCVBUF, socket.SO_SNDBUF):
        try:
            sock.setsockopt(socket.SOL_SOCKET, opt, BUFFER_BYTES)
        except OSError:
            pass


async def open_endpoint(loop, protocol, host: str, port: int):
    """Bind a UDP socket on ``(host, port)`` and serve ``protocol`` on it; return
    ``(endpoint, raw socket)``."""
    sock = open_socket(host, port)
    try:
        return Endpoint(loop, sock, protocol), sock
    except BaseException:
        sock.close()
        raise


class Endpoint:
    """A bound UDP socket serving ``protocol`` (``datagram_received(data, addr)``,
    ``error_received(exc)``, optional ``connection_made(endpoint)``)."""

    def __init__(self, loop, sock: socket.socket, protocol) -> None:
        self.loop, self.sock, self.protocol = loop, sock, protocol
        self.fd = sock.fileno()
        self.counting = False  # whether the kernel reports its drops (SO_RXQ_OVFL)
        if SO_RXQ_OVFL is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, SO_RXQ_OVFL, 1)
                self.counting = True
            except OSError:
                pass
        self.overflow = 0  # the kernel's latest count of datagrams dropped at this socket
        self._cmsg = socket.CMSG_SPACE(4) if self.counting else 0
        self._queue: collections.deque = collections.deque()
        self._closed = False
        enlarge_buffers(sock)
        loop.add_reader(self.fd, self._read)
        made = getattr(protocol, "connection_made", None)
        if made is not None:
            made(self)

    # -- the transport methods live mode uses -------------------------------------------------

    def get_extra_info(self, name: str, default=None):
        if name == "socket":
            return self.sock
        if name == "sockname":
            return self.sock.getsockname()
        return default

    def is_closing(self) -> bool:
        return self._closed

    def sendto(self, data: bytes, addr) -> None:
        if self._closed:
            return
        if not self._queue:
            try:
                self.sock.sendto(data, addr)
                return
            except (BlockingIOError, InterruptedError):
                self.loop.add_writer(self.fd, self._write)
            except OSError as e:  # an ICMP error from an earlier datagram surfaced here: send again
                self.protocol.error_received(e)
                try:
                    self.sock.sendto(data, addr)
                except OSError:
                    pass
                return
        self._queue.append((data, addr))

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.loop.remove_reader(self.fd)
        if self._queue:
            self.loop.remove_writer(self.fd)
            self._queue.clear()
        self.sock.close()
        lost = getattr(self.protocol, "connection_lost", None)
        if lost is not None:
            lost(None)

    # -- the loop's side ------------------------------------------------------------------------

    def _write(self) -> None:
        q = self._queue
        while q:
            data, addr = q[0]
            try:
                self.sock.sendto(data, addr)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                self.protocol.error_received(e)
            q.popleft()
        self.loop.remove_writer(self.fd)

    def _read(self) -> None:
        recvmsg, received, cmsg = self.sock.recvmsg, self.protocol.datagram_received, self._cmsg
        for _ in range(READ_BATCH):
            try:
                data, anc, _flags, addr = recvmsg(65536, cmsg)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                self.protocol.error_received(e)
                continue
            if anc:
                for level, kind, value in anc:
                    if level == socket.SOL_SOCKET and kind == SO_RXQ_OVFL and len(value) >= 4:
                        self.overflow = int.from_bytes(value[:4], sys.byteorder)
            received(data, addr)
            if self._closed:
                return

    def kernel_drops(self, table: dict | None = None) -> int | None:
        """Datagrams the kernel dropped at this socket so far (``None`` where the OS does not
        say): the count that came with the latest datagram, or this socket's entry in ``table``
        (``proc_drops()``: Linux's ``/proc/net/udp``) if that is higher, i.e. drops after the
        last datagram read."""
        best = self.overflow if self.counting else None
        if table is not None and not self._closed:
            try:
                proc = table.get(os.fstat(self.fd).st_ino)
            except OSError:
                proc = None
            if proc is not None:
                best = proc if best is None else max(best, proc)
        return best


def proc_drops() -> dict | None:
    """``{socket inode: drops}`` of every IPv4 UDP socket, from Linux's ``/proc/net/udp``
    (read once for all of a run's sockets), else ``None``."""
    try:
        table = {}
        with open("/proc/net/udp") as f:
            next(f, None)
            for line in f:
                parts = line.split()
                if len(parts) >= 13:
                    table[int(parts[9])] = int(parts[12])
        return table
    except (OSError, ValueError):
        return None


def open_socket(host: str, port: int) -> socket.socket:
    """A non-blocking IPv4 UDP socket bound to ``(host, port)``."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.bind((host, port))
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


class RateLimit:
    """A token bucket per source address: ``rate`` datagrams per second, bursts of ``burst``.

    The table is bounded: past ``max_sources`` addresses, those whose bucket has refilled (idle
    for ``burst / rate`` seconds) are forgotten; if none has, the table starts over (a flood
    from many forged addresses then costs its senders their full buckets, not the medium memory).
    """

    def __init__(self, rate: float, burst: float | None = None, max_sources: int = 4096) -> None:
        self.rate = float(rate)
        self.burst = float(burst if burst is not None else max(64.0, rate / 10))
        self.max_sources = max_sources
        self.buckets: dict = {}

    def allow(self, addr, now: float) -> bool:
        b = self.buckets.get(addr)
        if b is None:
            if len(self.buckets) >= self.max_sources:
                self._prune(now)
            self.buckets[addr] = [self.burst - 1.0, now]
            return True
        tokens = b[0] + (now - b[1]) * self.rate
        if tokens > self.burst:
            tokens = self.burst
        b[1] = now
        if tokens < 1.0:
            b[0] = tokens
            return False
        b[0] = tokens - 1.0
        return True

    def _prune(self, now: float) -> None:
        full = self.burst / self.rate
        self.buckets = {a: b for a, b in self.buckets.items() if now - b[1] < full}
        if len(self.buckets) >= self.max_sources:
            self.buckets = {}
