"""One outside node of a live netemu run (push-sum or PULM), with only socket and msgpack.

    netemu live scenarios/live_pulm.toml --set 'live.external=[7]'   # prints the medium's port
    python examples/live_client.py PORT --id 7 --x0 100

It says hello (claiming node 7 with initial value 100), then each `round` datagram closes the
previous round with what it received and sends this round's transmission; `bye` ends it.
With --key-file (the run's [live] key_file) every datagram is payload || seq || tag, the tag a
16-byte keyed BLAKE2b of payload || run id || receiver || seq, and the hello is answered by a
`challenge` carrying the run id first. Wire format: docs/wire.md. Arrays travel as
[dtype, shape, little-endian bytes].
"""
import argparse
import hashlib
import hmac
import os
import socket
import struct

import msgpack

ap = argparse.ArgumentParser()
ap.add_argument("port", type=int)
ap.add_argument("--id", type=int, default=None)
ap.add_argument("--x0", type=float, nargs="*", default=None)
ap.add_argument("--host", default="127.0.0.1", help="the medium's address")
ap.add_argument("--key-file", default=None, help="the run's secret key ([live] key_file)")
a = ap.parse_args()
medium = (a.host, a.port)
key = open(a.key_file, "rb").read().strip() if a.key_file else None
MEDIUM, HANDSHAKE = 0xFFFFFFFF, 0xFFFFFFFE
run, seq, last, nonce = bytes(16), [0], [0], os.urandom(16)
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(("127.0.0.1" if a.host.startswith("127.") else "0.0.0.0", 0))
sock.settimeout(30)
arr = lambda v, shape: ["<f8", shape, struct.pack(f"<{len(v)}d", *v)]  # noqa: E731
val = lambda a: list(struct.unpack(f"<{len(a[2]) // 8}d", a[2]))  # noqa: E731
tag = lambda p, run, to, sb: hashlib.blake2b(p + run + to.to_bytes(4, "big") + sb, key=key,  # noqa: E731
                                             digest_size=16).digest()


def send(m):
    p = msgpack.packb({"v": 1, **m})
    if key:  # payload || seq || tag
        seq[0] += 1
        sb = seq[0].to_bytes(8, "big")
        p += sb + tag(p, run, MEDIUM, sb)
    sock.sendto(p, medium)


def recv(to):
    """The next message from the medium for `to` (a forged, replayed or foreign one is skipped)."""
    while True:
        data, addr = sock.recvfrom(65535)
        if addr != medium:
            continue
        p, sb = (data[:-24], data[-24:-16]) if key else (data, b"")
        try:
            m = msgpack.unpackb(p)
        except Exception:
            continue
        if not key:
            return m
        if not hmac.compare_digest(data[-16:], tag(p, m.get("run", run) if to == HANDSHAKE else run, to, sb)):
            continue
        if to == HANDSHAKE and m.get("nonce") == nonce:
            return m
        if to != HANDSHAKE and int.from_bytes(sb, "big") > last[0]:
            last[0] = int.from_bytes(sb, "big")
            return m


hello = {"t": "hello", "id": a.id, "nonce": nonce, **({"x0": a.x0} if a.x0 else {})}
if key:  # the first hello is tagged under the all-zero run id; the challenge tells the real one
    send(hello)
    run = recv(HANDSHAKE)["run"]
send(hello)
w = recv(HANDSHAKE)
if w["t"] != "welcome":
    raise SystemExit(f"refused: {w['why']}")
me, n, pulm, x0 = w["id"], w["n"], w["protocol"] == "pulm", w["x0"]
x, d = list(x0), [float(j == me) for j in range(n)]  # PULM: value and memory d (e_me)
s, wt = list(x0), 1.0  # push-sum: mass and weight
r, inbox = -1, []
while True:
    m = recv(me)
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
