"""How many datagrams per second the live medium forwards on loopback, with authentication
([live] key_file) off and on, against a bare asyncio UDP echo server measured in the same process;
and what authentication costs a whole `netemu live` run.

    python benchmarks/bench_live_medium.py [--seconds 2] [--repeat 3] [--nodes 8] [--rounds 400]

**Medium.** A load generator in a child process holds one plain UDP socket per node, registered
with the medium as that node, and sends valid transmissions round after round (every node once
per round), keeping at most ``--window`` rounds in flight so no kernel buffer overflows; it reads
(and counts, without decoding or checking) the copies the medium forwards back to its sockets.
The medium (``netemu.live.medium.Medium``, the same code as ``netemu live``, with its default
rate limit and value checks) runs on a complete graph without loss or delay, so each
transmission is checked and forwarded to ``nodes - 1`` receivers; its round advances as soon as
every node has transmitted (lockstep at full speed). With authentication the generator tags what
it sends, and the medium checks each tag and sequence number and tags every copy for its
receiver. The baseline is an asyncio ``DatagramProtocol`` that sends every datagram back, fed the
same way with datagrams of the same size. Runs alternate (echo, medium, medium with a key, …) and
medians are shown.

**Whole run.** ``run_live`` on an 8-node PULM scenario (p = 0.6, ``--rounds`` rounds at time
scale 100), without and with a key, alternated: datagrams handled (medium in and out, local
nodes in) per CPU second of the process (medium and local nodes share it), since a paced run's
wall time does not depend on its cost.

Printed: datagrams in/s and out/s of each, the ratio of datagrams handled (in + out) per second,
medium over echo, and the cost of authentication (1 - with key / without) in both measurements.
The targets: at least 20k forwarded datagrams per second; authentication costs at most 20%.
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


def generator(port: int, n: int, mode: str, seconds: float, window: int, q, key=None, run=None) -> None:
    """Child process: send as fast as the window allows for ``seconds``; report counts. With
    ``key``, every datagram is tagged (``auth.Keyring.sealer``) for run ``run``."""
    socks = []
    for _ in range(n if mode == "medium" else 1):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((HOST, 0))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        s.setblocking(False)
        socks.append(s)
    q.put([s.getsockname()[1] for s in socks])
    seal = [None] * n
    if key is not None:
        from netemu.live import auth

        ring = auth.Keyring(key, run)
        seal = [ring.sealer(auth.MEDIUM) for _ in range(n)]
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
                    data = tx_bytes(j, r, n)
                    s.sendto(data if seal[j] is None else seal[j](data), dest)
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
        from netemu.live.udp import enlarge_buffers

        enlarge_buffers(transport.get_extra_info("socket"))

    def datagram_received(self, data, addr) -> None:
        self.count += 1
        self.transport.sendto(data, addr)


def complete_round(n: int):
    from netemu.world.network import Round

    send, recv = np.divmod(np.arange(n * n), n)
    keep = send != recv
    recv, send = recv[keep], send[keep]
    return Round(0, 0.0, recv, send, np.zeros(len(recv), dtype=bool), None, np.bincount(send, minlength=n))


def lockstep_medium(n: int, keys=None):
    """The live medium, its rounds advanced as soon as every node has transmitted."""
    from netemu.live import messages as M
    from netemu.live.external import Externals
    from netemu.live.medium import Medium
    from netemu.live.udp import RateLimit
    from netemu.scenario.schema import LIVE
    from netemu.world.channel import Delay

    rd = complete_round(n)

    class Lockstep(Medium):
        def _tx(self, msg, data, addr):
            super()._tx(msg, data, addr)
            if len(self.plan.sent) == self.n:
                self.begin_round(self.plan.k + 1, rd, math.inf)

    spec = M.FieldSpec({"x": np.zeros((n, 1)), "d": np.zeros((n, n))})
    ext = Externals([], np.zeros((n, 1)), "pulm", {})
    medium = Lockstep(n, spec, ext, Delay(), 1.0, 65000, keys, LIVE["max_abs"].default,
                      RateLimit(LIVE["rate_limit"].default))
    return medium, rd


async def measure(mode: str, n: int, seconds: float, window: int) -> dict:
    """``mode``: ``echo``, ``medium`` or ``medium+key``."""
    loop = asyncio.get_running_loop()
    key = run = None
    if mode.startswith("medium"):
        from netemu.live import auth
        from netemu.live.medium import open_endpoint

        if mode == "medium+key":
            key, run = b"0123456789abcdef0123456789abcdef", auth.new_run_id()
        proto, rd = lockstep_medium(n, auth.Keyring(key, run) if key else None)
        transport, proto.sock = await open_endpoint(loop, proto, HOST, 0)
        mode = "medium"
    else:
        proto = Echo()
        transport, _ = await loop.create_datagram_endpoint(lambda: proto, local_addr=(HOST, 0))
    port = transport.get_extra_info("sockname")[1]
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    child = ctx.Process(target=generator, args=(port, n, mode, seconds + 0.6, window, q, key, run))
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
        out["dropped"] = sum(proto.dropped.values())
    return out


def whole_run(rounds: int, key_file: str | None, out: str) -> dict:
    """One ``run_live`` of an 8-node PULM scenario; datagrams handled per CPU second."""
    from netemu.live.config import with_overrides
    from netemu.live.runtime import run_live
    from netemu.scenario.load import from_dict

    live = {"time_scale": 100.0, **({"key_file": key_file} if key_file else {})}
    sc = with_overrides(from_dict({"seed": 1, "network": {"nodes": 8, "topology": "random", "p": 0.6},
                                   "run": {"rounds": rounds}, "output": {"plot": False, "trace": False},
                                   "protocols": [{"name": "pulm"}], "live": live}, source="bench.toml"))
    cpu = time.process_time()
    (res,) = run_live(sc, out)
    cpu = time.process_time() - cpu
    lv, dg = res.extra["live"], res.extra["datagrams"]
    handled = dg["received"] + lv["forwarded_local"] + lv["forwarded_external"]
    return {"handled": handled, "cpu_s": cpu, "per_cpu_s": handled / cpu, "late": res.counters["late"],
            "rejected": dg["rejected"], "dropped": dg["dropped"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=2.0, help="measured seconds per run")
    ap.add_argument("--repeat", type=int, default=3, help="echo/medium/medium+key triples, alternated")
    ap.add_argument("--nodes", type=int, default=8)
    ap.add_argument("--window", type=int, default=16, help="rounds in flight")
    ap.add_argument("--rounds", type=int, default=400, help="rounds of each whole run (0: skip them)")
    a = ap.parse_args()
    runs = []
    for _ in range(a.repeat):  # alternate, so a busy spell on the machine hits all alike
        runs.append([asyncio.run(measure(mode, a.nodes, a.seconds, a.window))
                     for mode in ("echo", "medium", "medium+key")])
    med_of = lambda key, i: float(np.median([p[i][key] for p in runs]))  # noqa: E731
    both = lambda m: m["in_per_s"] + m["out_per_s"]  # noqa: E731
    ratio = float(np.median([both(m) / both(e) for e, m, _ in runs]))
    cost = float(np.median([1 - both(k) / both(m) for _, m, k in runs]))
    fwd, fwd_key = med_of("out_per_s", 1), med_of("out_per_s", 2)
    size = len(tx_bytes(0, 0, a.nodes))
    print(f"datagram size {size} B (+24 B tag with a key), {a.nodes} nodes (fan-out {a.nodes - 1}), "
          f"median of {a.repeat} x {a.seconds:g} s")
    print(f"echo baseline      : in {med_of('in_per_s', 0):10,.0f}/s   out {med_of('out_per_s', 0):10,.0f}/s")
    for i, name in ((1, "live medium       "), (2, "live medium, key  ")):
        print(f"{name} : in {med_of('in_per_s', i):10,.0f}/s   out {med_of('out_per_s', i):10,.0f}/s   "
              f"(forwarded; rejected {sum(p[i]['rejected'] for p in runs)}, "
              f"dropped {sum(p[i]['dropped'] for p in runs)})")
    print(f"ratio (in + out per second, medium / echo): {ratio:.2f}")
    print(f"authentication cost, medium (1 - with key / without, in + out per second): {cost:+.1%}")
    print(f"target >= 20,000 forwarded/s: {'met' if min(fwd, fwd_key) >= 20_000 else 'NOT met'} "
          f"(without key {fwd:,.0f}, with key {fwd_key:,.0f})")
    if a.rounds <= 0:
        return
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        keyfile = f"{tmp}/live.key"
        with open(keyfile, "w") as f:
            f.write("0123456789abcdef" * 4 + "\n")
        whole = [[whole_run(a.rounds, k, f"{tmp}/o{i}{j}") for j, k in enumerate((None, keyfile))]
                 for i in range(a.repeat)]
    per = lambda j: float(np.median([w[j]["per_cpu_s"] for w in whole]))  # noqa: E731
    wcost = float(np.median([1 - w[1]["per_cpu_s"] / w[0]["per_cpu_s"] for w in whole]))
    late = sum(w[j]["late"] for w in whole for j in (0, 1))
    print(f"whole run (8 nodes, PULM, {a.rounds} rounds at time scale 100, {whole[0][0]['handled']:,} datagrams): "
          f"{per(0):,.0f} datagrams per CPU second without key, {per(1):,.0f} with; "
          f"authentication cost {wcost:+.1%} (late {late})")
    worst = max(cost, wcost)
    print(f"target: authentication costs <= 20%: {'met' if worst <= 0.20 else 'NOT met'} ({worst:.1%})")


if __name__ == "__main__":
    main()
