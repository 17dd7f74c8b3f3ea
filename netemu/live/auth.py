"""Authenticated datagrams (``[live] key_file``): a keyed BLAKE2b tag and a sequence number.

With a key, every datagram of a live run, in either direction, is::

    payload || seq || tag

- ``payload``: the msgpack message of ``docs/wire.md``, unchanged;
- ``seq``: 8 bytes, unsigned big-endian: the sender's sequence number on this path (1, 2, 3, …);
- ``tag``: 16 bytes, BLAKE2b keyed with the secret key, with a 16-byte digest (``outlen = 16``
  in BLAKE2b's parameter block, not a cut 64-byte digest), over::

      payload || run || to || seq

  ``run``: the run id, 16 bytes the medium draws for each run (all zeros in the first ``hello``
  of the handshake, before the process knows it); ``to``: 4 bytes, unsigned big-endian, the
  receiver: node ``i`` for what the medium sends to node ``i``, ``MEDIUM`` (0xFFFFFFFF) for what
  anyone sends to the medium, ``HANDSHAKE`` (0xFFFFFFFE) for the medium's replies to a hello.

The run id stops replays from another run; ``to`` stops a copy meant for one node from being
played to another (or a node's datagram from being reflected to a node); ``seq`` stops replays
within a run: a receiver keeps, per sender, the highest number seen and which of the 64 below it
arrived (``Window``), and drops anything older or seen. A jump in ``seq`` counts the numbers
skipped as *sequence gaps*: datagrams lost between the two ends (a later arrival of one of them
takes it back). The payload comes first so that the medium hashes a transmission once and only
the short suffix once per receiver.

The key is the key file's bytes with leading and trailing whitespace removed: 16 to 64 bytes
(BLAKE2b takes at most 64; libsodium's ``crypto_generichash`` at least 16), e.g. 64 hex digits::

    python -c "import secrets; print(secrets.token_hex(32))" > live.key
"""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path

import msgpack

from netemu.errors import ScenarioError
from netemu.live.messages import Rejected

SEQ, TAG = 8, 16
TRAILER = SEQ + TAG
MEDIUM = 0xFFFFFFFF
HANDSHAKE = 0xFFFFFFFE
ZERO_RUN = bytes(16)
KEY_MIN, KEY_MAX = 16, 64
WINDOW = 64
_MASK = (1 << WINDOW) - 1
_MEDIUM4 = MEDIUM.to_bytes(4, "big")


def new_run_id() -> bytes:
    return os.urandom(16)


def read_key(path: Path, shown: str, where: str) -> bytes:
    """The secret key in ``path`` (``shown``: the path as the scenario wrote it), or a one-line
    ``ScenarioError`` naming the file and the fix."""
    head = f"{where} = {shown!r}"
    make = f'python -c "import secrets; print(secrets.token_hex(32))" > {shown}'
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise ScenarioError(f"{head}: no such file ({path}); write a secret key into it: {make}") from None
    except IsADirectoryError:
        raise ScenarioError(f"{head} is a folder ({path}), not a key file; name the file that holds "
                            f"the key") from None
    except PermissionError:
        raise ScenarioError(f"{head}: cannot read {path} (permission denied); make it readable by the user "
                            f"that runs netemu (chmod 600 {shown})") from None
    except OSError as e:
        raise ScenarioError(f"{head}: cannot read {path} ({e.strerror or e})") from None
    key = raw.strip()
    if not key:
        raise ScenarioError(f"{head}: the file is empty; write a secret key into it: {make}")
    if not KEY_MIN <= len(key) <= KEY_MAX:
        raise ScenarioError(f"{head} holds a key of {len(key)} bytes; a BLAKE2b key has {KEY_MIN} to {KEY_MAX} "
                            f"bytes (surrounding whitespace removed), e.g. 64 hex digits: {make}")
    return key


class Keyring:
    """Seals and opens datagrams of one run (``run``: its 16-byte id) under one key."""

    def __init__(self, key: bytes, run: bytes) -> None:
        if len(run) != 16:
            raise ValueError("a run id has 16 bytes")
        self.run = run
        self.keyed = hashlib.blake2b(key=key, digest_size=TAG)  # copied per tag: keying costs a block
        self._suffix = {}  # to -> run || to, for the tag

    def suffix(self, to: int, run: bytes | None = None) -> bytes:
        if run is not None:
            return run + to.to_bytes(4, "big")
        s = self._suffix.get(to)
        if s is None:
            s = self._suffix[to] = self.run + to.to_bytes(4, "big")
        return s

    def tag(self, payload: bytes, to: int, seq: int, run: bytes | None = None) -> bytes:
        h = self.keyed.copy()
        h.update(payload)
        h.update(self.suffix(to, run) + seq.to_bytes(SEQ, "big"))
        return h.digest()

    def seal(self, payload: bytes, to: int, seq: int, run: bytes | None = None) -> bytes:
        """``payload || seq || tag``."""
        return payload + seq.to_bytes(SEQ, "big") + self.tag(payload, to, seq, run)

    def sealer(self, to: int):
        """A function ``payload -> datagram`` numbering its datagrams 1, 2, 3, … (one sender's path)."""
        keyed, suffix, seq = self.keyed, self.suffix(to), [0]

        def seal(payload: bytes) -> bytes:
            seq[0] += 1
            sb = seq[0].to_bytes(SEQ, "big")
            h = keyed.copy()
            h.update(payload)
            h.update(suffix + sb)
            return payload + sb + h.digest()

        return seal

    def open(self, data: bytes, to: int, zero_run: bool = False) -> tuple[bytes, int, bool]:
        """``(payload, seq, fresh)`` of an authentic datagram, else ``Rejected``
        (``unauthenticated``: no tag at all; ``bad_tag``: a tag that does not verify).

        ``fresh`` is False for a datagram tagged under the all-zero run id, accepted only when
        ``zero_run`` (the first hello of a handshake, sent before the process knows the run id).
        """
        if len(data) <= TRAILER:
            raise Rejected("unauthenticated")  # no room for a tag
        payload, sb, tag = data[:-TRAILER], data[-TRAILER:-TAG], data[-TAG:]
        h = self.keyed.copy()
        h.update(payload)
        h.update(self.suffix(to) + sb)
        if hmac.compare_digest(h.digest(), tag):
            return payload, int.from_bytes(sb, "big"), True
        if zero_run and hmac.compare_digest(self.tag(payload, to, int.from_bytes(sb, "big"), ZERO_RUN), tag):
            return payload, int.from_bytes(sb, "big"), False
        raise Rejected("unauthenticated" if _is_message(data) else "bad_tag")


def _is_message(data: bytes) -> bool:
    """Whether ``data`` is one whole msgpack value, i.e. a plain (untagged) datagram."""
    try:
        msgpack.unpackb(data, raw=False, strict_map_key=False)
    except Exception:
        return False
    return True


class Window:
    """The sequence numbers seen from one sender: the highest, and which of the 64 below it.

    ``accept(seq)`` returns how many numbers it skipped (a gap: datagrams lost on the way; -1
    when it fills an earlier gap) or raises ``Rejected("replayed")`` for a number seen already or
    older than the window.
    """

    __slots__ = ("top", "bits")

    def __init__(self) -> None:
        self.top = -1
        self.bits = 0

    def accept(self, seq: int) -> int:
        top = self.top
        if top < 0:  # the first datagram on this path: nothing was lost before it that we know of
            self.top, self.bits = seq, 1
            return 0
        if seq > top:
            shift = seq - top
            self.bits = ((self.bits << shift) | 1) & _MASK if shift < WINDOW else 1
            self.top = seq
            return shift - 1
        off = top - seq
        if off >= WINDOW or (self.bits >> off) & 1:
            raise Rejected("replayed")
        self.bits |= 1 << off
        return -1
