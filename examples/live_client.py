"""One outside node of a live netemu run (push-sum or PULM), with only socket and msgpack.

    netemu live scenarios/live_pulm.toml --set 'live.external=[7]'   # prints the medium's port
    python examples/live_client.py PORT --id 7 --x0 100

It says hello (claiming node 7 with initial value 100), then each `round` datagram closes the
previous round with what it received and sends this round's transmission; `bye` ends it.
Wire format: docs/wire.md. Arrays travel as [dtype, shape, little-endian bytes].
"""
import argparse
import socket
import struct

import msgpack

ap = argparse.ArgumentParser()
ap.add_argument("port", type=int)
ap.add_argument("--id", type=int, default=None)
ap.add_argument("--x0", type=float, nargs="*", default=None)
a = ap.parse_args()
medium = ("127.0.0.1", a.port)
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(("127.0.0.1", 0))
sock.settimeout(30)
send = lambda m: sock.sendto(msgpack.packb({"v": 1, **m}), medium)  # noqa: E731
arr = lambda v, shape: ["<f8", shape, struct.pack(f"<{len(v)}d", *v)]  # noqa: E731
val = lambda a: list(struct.unpack(f"<{len(a[2]) // 8}d", a[2]))  # noqa: E731

send({"t": "hello", "id": a.id, **({"x0": a.x0} if a.x0 else {})})
w = msgpack.unpackb(sock.recvfrom(65535)[0])
if w["t"] != "welcome":
    raise SystemExit(f"refused: {w['why']}")
me, n, pulm, x0 = w["id"], w["n"], w["protocol"] == "pulm", w["x0"]
x, d = list(x0), [float(j == me) for j in range(n)]  # PULM: value and memory d (e_me)
s, wt = list(x0), 1.0  # push-sum: mass and weight
r, inbox = -1, []
while True:
    data, addr = sock.recvfrom(65535)
    if addr != medium:
        continue
    m = msgpack.unpackb(data)
    if m["t"] == "tx":  # a reception: keep it if it belongs to the current round
        if m["r"] == r:
            inbox.append({k: val(v) for k, v in m["f"].items()})
        continue
    if r >= 0 and pulm:  # close round r: pull-average, then PULM's memory correction
        c = 1 + len(inbox)
        x = [(x[q] + sum(f["x"][q] for f in inbox)) / c for q in range(len(x))]
        d = [(d[l] + sum(f["d"][l] for f in inbox)) / c for l in range(n)]
        x = [x[q] + (1 / n - d[me]) * x0[q] for q in range(len(x))]
        d[me] = 1 / n
    elif r >= 0:  # push-sum: keep own share, add the shares received
        s = [s[q] + sum(f["s"][q] for f in inbox) for q in range(len(s))]
        wt += sum(f["w"][0] for f in inbox)
    if m["t"] != "round":
        break  # bye: the run is over
    r, inbox = m["r"], []
    if pulm:
        f = {"x": arr(x, [len(x)]), "d": arr(d, [n])}
    else:  # split into deg + 1 shares: keep one, broadcast one
        s, wt = [v / (m["deg"] + 1) for v in s], wt / (m["deg"] + 1)
        f = {"s": arr(s, [len(s)]), "w": arr([wt], [])}  # a scalar travels with shape []
    send({"t": "tx", "src": me, "r": r, "f": f})
print("node", me, "final", x if pulm else [v / wt for v in s])
