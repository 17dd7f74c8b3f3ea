"""One outside FL client of a live netemu run, with only socket, struct, array, hashlib and msgpack.

    netemu live scenarios/fl_stragglers.toml --set 'live.external=[3]' --set ...   # prints the port
    python examples/fl_client.py PORT --id 3

It says hello, then waits for the server's model (a `tx` to it; a model longer than one datagram
comes as `frag` datagrams, reassembled here), trains on it, and sends its update `Δ = x_end -
x_start` to the server (as fragments when it is longer than a datagram), until `bye`. While it waits
it says hello again every `timeout / 3` seconds, so the medium does not mark it departed. With
--key-file every datagram is payload || seq || tag (docs/wire.md, Authentication). `train` stands
for the client's own data and steps: here one L2 step (Δ = -lr · x), enough to take part.
Wire format: docs/wire.md ("Fragments", "FL clients"). Arrays travel as [dtype, shape, bytes].
"""
import argparse
import array
import hashlib
import hmac
import os
import socket
import struct
import sys
import time

import msgpack

ap = argparse.ArgumentParser()
ap.add_argument("port", type=int)
ap.add_argument("--id", type=int, default=None)
ap.add_argument("--host", default="127.0.0.1", help="the medium's address")
ap.add_argument("--key-file", default=None, help="the run's secret key ([live] key_file)")
ap.add_argument("--lr", type=float, default=0.01, help="step of the example's training (an L2 step)")
a = ap.parse_args()
medium = (a.host, a.port)
key = open(a.key_file, "rb").read().strip() if a.key_file else None
MEDIUM, HANDSHAKE, TRAILER = 0xFFFFFFFF, 0xFFFFFFFE, 24
run, seq, last, nonce = bytes(16), [0], [0], os.urandom(16)
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(("127.0.0.1" if a.host.startswith("127.") else "0.0.0.0", 0))
sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)  # a model's fragments come in a burst
tag = lambda p, run, to, sb: hashlib.blake2b(p + run + to.to_bytes(4, "big") + sb, key=key,  # noqa: E731
                                             digest_size=16).digest()


def send(m, room=65507):
    """One message: one datagram, or `frag` datagrams of at most `room` bytes each."""
    p = msgpack.packb({"v": 2, **m})
    room -= TRAILER if key else 0
    if len(p) > room:
        send.no += 1
        chunk = room - 64  # a frag map takes at most 64 bytes besides its data
        k = -(-len(p) // chunk)
        for i in range(k):
            send_one(msgpack.packb({"v": 2, "t": "frag", "m": send.no, "i": i, "k": k, "o": i * chunk,
                                    "n": len(p), "d": p[i * chunk:(i + 1) * chunk]}))
    else:
        send_one(p)


send.no = -1


def send_one(p):
    if key:  # payload || seq || tag
        seq[0] += 1
        sb = seq[0].to_bytes(8, "big")
        p += sb + tag(p, run, MEDIUM, sb)
    sock.sendto(p, medium)


parts = {}  # message number -> {index: (offset, bytes)}, with its k and n


def recv(to):
    """The next whole message from the medium for `to`, or None after the socket's timeout (a
    forged, replayed or foreign datagram is skipped; fragments are joined)."""
    while True:
        try:
            data, addr = sock.recvfrom(65535)
        except socket.timeout:
            return None
        if addr != medium:
            continue
        p, sb = (data[:-TRAILER], data[-TRAILER:-16]) if key else (data, b"")
        try:
            m = msgpack.unpackb(p)
        except Exception:
            continue
        if key:
            if not hmac.compare_digest(data[-16:], tag(p, m.get("run", run) if to == HANDSHAKE else run, to, sb)):
                continue
            if to == HANDSHAKE and m.get("nonce") != nonce:
                continue
            if to != HANDSHAKE:
                if int.from_bytes(sb, "big") <= last[0]:
                    continue
                last[0] = int.from_bytes(sb, "big")
        if m.get("t") != "frag":
            return m
        got = parts.setdefault(m["m"], {"k": m["k"], "n": m["n"], "d": {}})
        got["d"][m["i"]] = (m["o"], m["d"])
        if len(got["d"]) == got["k"]:  # all in: join by offset (a lost fragment loses the message)
            del parts[m["m"]]
            whole = b"".join(d for _, d in sorted(got["d"].values()))
            if len(whole) == got["n"]:
                return msgpack.unpackb(whole)


def train(x):
    """The client's local training from model `x`; returns Δ = x_end - x_start."""
    return [-a.lr * v for v in x]


hello = {"t": "hello", "id": a.id, "nonce": nonce}
sock.settimeout(30)
if key:  # the first hello is tagged under the all-zero run id; the challenge tells the real one
    send(hello)
    run = recv(HANDSHAKE)["run"]
send(hello)
w = recv(HANDSHAKE)
if w is None or w["t"] != "welcome":
    raise SystemExit(f"refused: {w and w['why']}")
me, server, room = w["id"], w.get("server"), w["max_datagram"]
(dt, (P,)), upd = w["fields"]["x"], w.get("update", {})
if upd != {"c_x": [dt, [P]], "v": ["<i8", [1]]}:
    raise SystemExit(f"this example sends uncompressed updates; the run's protocol wants {upd}")
code = {"<f4": "f", "<f8": "d"}[dt]
keepalive = w.get("timeout", 10.0) / 3
sock.settimeout(min(1.0, keepalive))
s, updates, said = 0, 0, time.monotonic()
while True:
    m = recv(me)
    if time.monotonic() - said > keepalive:  # a hello again: the medium answers with the welcome
        send(hello)
        said = time.monotonic()
    if m is None or m["t"] == "welcome":
        continue
    if m["t"] == "bye":
        break
    if m["t"] != "tx" or m.get("src") != server or m.get("dst") != me:
        continue
    x = array.array(code, m["f"]["x"][2])  # the model, little-endian on the wire
    if sys.byteorder == "big":
        x.byteswap()
    version = struct.unpack("<q", m["f"]["v"][2])[0]
    delta = array.array(code, train(x))
    if sys.byteorder == "big":
        delta.byteswap()
    send({"t": "tx", "src": me, "r": -1, "s": s, "at": 0.0, "dst": server,
          "f": {"c_x": [dt, [P], delta.tobytes()], "v": ["<i8", [1], struct.pack("<q", version)]}}, room)
    s, updates, said = s + 1, updates + 1, time.monotonic()
print("client", me, "updates", updates)
