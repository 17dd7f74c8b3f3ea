"""How many datagrams per second the live medium forwards on loopback, against a bare asyncio
UDP echo server measured in the same process.

    python benchmarks/bench_live_medium.py [--seconds 2] [--repeat 3] [--nodes 8]

A load generator in a child process holds one plain UDP socket per node, registered with the
medium as that node, and sends valid transmissions round after round (every node once per round),
keeping at most ``--window`` rounds in flight so no kernel buffer overflows; it reads (and
counts, without decoding) the copies the medium forwards back to its sockets. The medium
(``netemu.live.medium.Medium``, the same code as ``netemu live``) runs on a complete graph
without loss or delay, so each transmission is checked and forwarded to ``nodes - 1``
receivers; its round advances as soon as every node has transmitted (lockstep at full speed).
The baseline is an asyncio ``DatagramProtocol`` that sends every datagram back, fed the same way
with datagrams of the same size. Runs alternate (echo, medium, echo, …) and medians are shown.

Printed: datagrams in/s and out/s of each, and the ratio of datagrams handled (in + out) per
second, medium over echo. The target is at least 20k forwarded datagrams per second.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import multiprocessing as mp
import selectors
import socket
import time

import numpy as np

HOST = "127.0.0.1"


def tx_bytes(src: int, r: int, n: int) -> bytes:
    from netemu import wire

    return wire.encode_transmission(src, r, {"x": np.zeros(1), "d": np.zeros(n)})


def generator(port: int, n: int, mode: str, seconds: float, window: int, q) -> None:
    """Child process: send as fast as the window allows for ``seconds``; report counts."""
    socks = []
    for _ in range(n if mode == "medium" else 1):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((HOST, 0))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        s.setblocking(False)
        socks.append(s)
    q.put([s.getsockname()[1] for s in socks])
    q.get()  # go
    sel = selectors.DefaultSelector()
    for s in socks:
        sel.register(s, selectors.EVENT_READ)
    dest = (HOST, port)
    sent = got = 0
    r = seen = 0
    payload = tx_bytes(0, 0, n)
    per_round = n * (n - 1) if mode == "medium" else n  # datagrams that come back per round
    buf = bytearray(65535)
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        while r - seen < window:
            if mode == "medium":
                for j, s in enumerate(socks):
                    s.sendto(tx_bytes(j, r, n), dest)
            else:
                for _ in range(n):
                    socks[0].sendto(payload, dest)
            sent += n
            r += 1
        for key, _ in sel.select(timeout=0.01):
            recv_into = key.fileobj.recv_into
            while True:
                try:
                    recv_into(buf)
                except BlockingIOError:
                    break
                got += 1
        seen = got // per_round  # rounds fully come back (approximately: enough to pace)
    q.put((sent, got))


class Echo(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.count = 0

    def connection_made(self, transport) -> None:
        self.transport = transport
        from netemu.live.medium import enlarge_buffers

        enlarge_buffers(transport)

    def datagram_received(self, data, addr) -> None:
        self.count += 1
        self.transport.sendto(data, addr)


def complete_round(n: int):
    from netemu.world.network import Round

    send, recv = np.divmod(np.arange(n * n), n)
    keep = send != recv
    recv, send = recv[keep], send[keep]
    return Round(0, 0.0, recv, send, np.zeros(len(recv), dtype=bool), None, np.bincount(send, minlength=n))


def lockstep_medium(n: int):
    """The live medium, its rounds advanced as soon as every node has transmitted."""
    from netemu.live import messages as M
    from netemu.live.external import Externals
    from netemu.live.medium import Medium
    from netemu.world.channel import Delay

    rd = complete_round(n)

    class Lockstep(Medium):
        def _tx(self, msg, data, addr):
            super()._tx(msg, data, addr)
            if len(self.plan.sent) == self.n:
                self.begin_round(self.plan.k + 1, rd, math.inf)

    spec = M.FieldSpec({"x": np.zeros((n, 1)), "d": np.zeros((n, n))})
    ext = Externals([], np.zeros((n, 1)), "pulm", {})
    medium = Lockstep(n, spec, ext, Delay(None, 0), 1.0, 65000)
    return medium, rd


async def measure(mode: str, n: int, seconds: float, window: int) -> dict:
    loop = asyncio.get_running_loop()
    if mode == "medium":
        from netemu.live.medium import open_endpoint

        proto, rd = lockstep_medium(n)
        transport, proto.sock = await open_endpoint(loop, proto, HOST, 0)
    else:
        proto = Echo()
        transport, _ = await loop.create_datagram_endpoint(lambda: proto, local_addr=(HOST, 0))
    port = transport.get_extra_info("sockname")[1]
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    child = ctx.Process(target=generator, args=(port, n, mode, seconds + 0.6, window, q))
    child.start()
    ports = await loop.run_in_executor(None, q.get)
    if mode == "medium":
        for j, p in enumerate(ports):
            proto.register_local(j, (HOST, p))
        proto.begin_round(0, rd, math.inf)
    q.put("go")

    def snap():
        if mode == "medium":
            st = proto.stats
            return st["received"], st["forwarded_local"]
        return proto.count, proto.count

    await asyncio.sleep(0.3)  # warm up
    a, t = snap(), time.perf_counter()
    await asyncio.sleep(seconds)
    b, dt = snap(), time.perf_counter() - t
    sent, got = await loop.run_in_executor(None, q.get)
    child.join()
    transport.close()
    out = {"in_per_s": (b[0] - a[0]) / dt, "out_per_s": (b[1] - a[1]) / dt}
    if mode == "medium":
        out["rejected"] = sum(proto.rejected.values())
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=2.0, help="measured seconds per run")
    ap.add_argument("--repeat", type=int, default=3, help="echo/medium pairs, alternated")
    ap.add_argument("--nodes", type=int, default=8)
    ap.add_argument("--window", type=int, default=16, help="rounds in flight")
    a = ap.parse_args()
    pairs = []
    for _ in range(a.repeat):  # alternate, so a busy spell on the machine hits both alike
        echo = asyncio.run(measure("echo", a.nodes, a.seconds, a.window))
        med = asyncio.run(measure("medium", a.nodes, a.seconds, a.window))
        pairs.append((echo, med))
    med_of = lambda key, i: float(np.median([p[i][key] for p in pairs]))  # noqa: E731
    ratio = float(np.median([(m["in_per_s"] + m["out_per_s"]) / (e["in_per_s"] + e["out_per_s"])
                             for e, m in pairs]))
    fwd = med_of("out_per_s", 1)
    size = len(tx_bytes(0, 0, a.nodes))
    print(f"datagram size {size} B, {a.nodes} nodes (fan-out {a.nodes - 1}), "
          f"median of {a.repeat} x {a.seconds:g} s")
    print(f"echo baseline : in {med_of('in_per_s', 0):10,.0f}/s   out {med_of('out_per_s', 0):10,.0f}/s")
    print(f"live medium   : in {med_of('in_per_s', 1):10,.0f}/s   out {fwd:10,.0f}/s   (forwarded; "
          f"rejected {sum(p[1]['rejected'] for p in pairs)})")
    print(f"ratio (in + out per second, medium / echo): {ratio:.2f}")
    print(f"target >= 20,000 forwarded/s: {'met' if fwd >= 20_000 else 'NOT met'}")


if __name__ == "__main__":
    main()
