"""Fragments (wire format version 2): a message longer than one datagram travels as several.

A message of ``docs/wire.md`` (a ``tx`` carrying a model, say) whose datagram would be longer
than ``[live] max_datagram`` is cut into ``k >= 2`` pieces, each sent as one datagram::

    {"v": 2, "t": "frag", "m": <message number>, "i": <index>, "k": <count>,
     "o": <offset>, "n": <message bytes>, "d": <bin: bytes o .. o + len(d) of the message>}

``m`` numbers the messages of one sender's path (0, 1, 2, …; any distinct numbers will do), so
fragments of different messages never mix. The receiver keeps the pieces of each message until
all ``k`` are in, then joins them by offset and handles the result exactly as if the whole message
had arrived in one datagram. Losing any fragment loses the message. With a key, every fragment is
a datagram like any other: tagged, numbered, checked (``auth.py``) before it is looked at.

Everything a peer could get wrong is checked, counted by reason (``messages.REASONS``) and never
raised past the receiver (``Reassembler.feed``):

- ``frag_oversize``: ``n`` beyond ``[live] max_message``;
- ``frag_count``: ``k < 2``, ``k > n``, ``i`` not in ``0..k-1``, a ``k`` or ``n`` that differs
  from the message's other fragments, or ``k`` fragments that do not cover ``n`` bytes;
- ``frag_overlap``: bytes that run past ``n`` or overlap another fragment of the message (one
  that repeats an index with other bytes included);
- ``frag_duplicate``: a fragment received already (its message goes on), or one of a message
  already reassembled or given up.

A fragment counted ``frag_count`` or ``frag_overlap`` discards its whole message. Memory is
bounded: a pending message that has not completed ``timeout`` seconds after its first fragment is
dropped (``timed_out``); past ``max_pending`` pending messages, ``PER_SOURCE`` of one source, or
``max_bytes`` bytes held (each fragment counted with ``SLOT`` bytes of bookkeeping), the oldest
pending message goes (of the source holding most, for bytes: ``evicted``). Both count as lost
messages (``lost``), as do the ones still pending when the run ends (``close``).
"""

from __future__ import annotations

import bisect
import collections

import msgpack

from netemu import wire
from netemu.live.messages import Rejected

HEADER = 64  # bytes of a fragment's map besides its data, at most (57 with m < 2**64, n < 2**32)
SLOT = 160  # bytes of bookkeeping counted per fragment held
PER_SOURCE = 64  # pending messages of one source, at most
REMEMBER = 256  # finished message numbers remembered per source (later fragments: duplicates)
MAX_SOURCES = 4096  # sources whose finished numbers are remembered
PREFIX = msgpack.packb({"v": wire.VERSION, "t": "frag"}, use_bin_type=True)[1:]  # after the map's header


def room_for(max_datagram: int, trailer: int = 0) -> int:
    """The longest message that travels in one datagram (with a ``trailer`` of that many bytes)."""
    return max_datagram - trailer


def split(message: bytes, number: int, room: int) -> list[bytes]:
    """The fragment datagrams of ``message`` (``number``: its message number), each at most
    ``room`` bytes long."""
    chunk = room - HEADER
    n = len(message)
    k = -(-n // chunk)
    return [msgpack.packb({"v": wire.VERSION, "t": "frag", "m": number, "i": i, "k": k, "o": i * chunk,
                           "n": n, "d": message[i * chunk:(i + 1) * chunk]}, use_bin_type=True)
            for i in range(k)]


def is_fragment(payload: bytes) -> bool:
    """Whether ``payload`` starts like a fragment's map (a cheap test; ``feed`` checks it)."""
    return payload[1:1 + len(PREFIX)] == PREFIX


class _Partial:
    __slots__ = ("source", "first", "k", "n", "starts", "ends", "parts", "held")

    def __init__(self, source, first: float, k: int, n: int) -> None:
        self.source, self.first, self.k, self.n = source, first, k, n
        self.starts: list[int] = []  # fragment offsets, sorted
        self.ends: list[int] = []  # their ends, in the same order
        self.parts: dict[int, tuple[int, bytes]] = {}  # index -> (offset, bytes)
        self.held = 0


class Reassembler:
    """Pending messages of one receiver (the medium, or a process's local nodes), by
    ``(source, message number)``; ``stats`` are its counters (``summary.json``)."""

    def __init__(self, max_message: int, max_bytes: int, timeout: float, max_pending: int = 1024) -> None:
        self.max_message, self.max_bytes, self.timeout = max_message, max_bytes, timeout
        self.max_pending = max_pending
        self.pending: collections.OrderedDict = collections.OrderedDict()  # oldest first
        self.count: collections.Counter = collections.Counter()  # source -> pending messages
        self.bytes: collections.Counter = collections.Counter()  # source -> bytes held
        self.finished: dict = {}  # source -> (set, deque) of numbers reassembled or given up
        self.held = 0
        self.on_lost = None  # called with (source, message number) of each message lost in the run
        self.stats = dict(fragments=0, messages=0, timed_out=0, evicted=0, discarded=0, unfinished=0,
                          peak_bytes=0, peak_pending=0)

    @property
    def lost(self) -> int:
        """Messages lost: timed out, evicted, discarded (a bad fragment), or pending at the end."""
        s = self.stats
        return s["timed_out"] + s["evicted"] + s["discarded"] + s["unfinished"]

    # -- one fragment ------------------------------------------------------------------------

    def feed(self, source, msg: dict, now: float) -> bytes | None:
        """Take one fragment (a decoded ``frag`` map) from ``source``: the whole message once its
        last fragment is in, else ``None``; ``Rejected`` for a fragment that is not usable."""
        self.expire(now)
        m, i, k, o, n, d = (msg.get(x) for x in ("m", "i", "k", "o", "n", "d"))
        if not (type(m) is int and type(i) is int and type(k) is int and type(o) is int
                and type(n) is int and isinstance(d, bytes) and m >= 0):
            raise Rejected("malformed", "a fragment needs integers m, i, k, o, n and bin d")
        if n > self.max_message:
            raise Rejected("frag_oversize")
        if not (2 <= k <= n and 0 <= i < k):
            raise Rejected("frag_count")
        if not d or o < 0 or o + len(d) > n:
            raise Rejected("frag_overlap")
        key = (source, m)
        done = self.finished.get(source)
        if done is not None and m in done[0]:
            raise Rejected("frag_duplicate")
        p = self.pending.get(key)
        if p is None:
            self._make_room(source)
            p = self.pending[key] = _Partial(source, now, k, n)
            self.count[source] += 1
            self.stats["peak_pending"] = max(self.stats["peak_pending"], len(self.pending))
        elif p.k != k or p.n != n:
            self._give_up(key, "discarded")
            raise Rejected("frag_count")
        if i in p.parts:
            if p.parts[i] == (o, d):
                raise Rejected("frag_duplicate")
            self._give_up(key, "discarded")
            raise Rejected("frag_overlap")
        at = bisect.bisect_right(p.starts, o)
        if (at > 0 and p.ends[at - 1] > o) or (at < len(p.starts) and p.starts[at] < o + len(d)):
            self._give_up(key, "discarded")
            raise Rejected("frag_overlap")
        p.starts.insert(at, o)
        p.ends.insert(at, o + len(d))
        p.parts[i] = (o, d)
        self.stats["fragments"] += 1
        cost = len(d) + SLOT
        p.held += cost
        self.held += cost
        self.bytes[source] += cost
        if self.held > self.max_bytes:
            self._shed(key)
            if key not in self.pending:
                return None
        self.stats["peak_bytes"] = max(self.stats["peak_bytes"], self.held)
        if len(p.parts) < k:
            return None
        covered = sum(len(v) for _, v in p.parts.values())
        self._forget(key)
        self._remember(source, m)
        if covered != n:
            self.stats["discarded"] += 1
            if self.on_lost is not None:
                self.on_lost(source, m)
            raise Rejected("frag_count")
        self.stats["messages"] += 1
        return b"".join(v for _, v in sorted(p.parts.values()))

    # -- bounds --------------------------------------------------------------------------------

    def expire(self, now: float) -> None:
        """Drop the pending messages whose first fragment is older than ``timeout`` seconds."""
        pending = self.pending
        while pending:
            key, p = next(iter(pending.items()))
            if now - p.first <= self.timeout:
                return
            self._give_up(key, "timed_out")

    def close(self) -> None:
        """The run is over: what is still pending is lost (``unfinished``)."""
        for key in list(self.pending):
            self._give_up(key, "unfinished")

    def _make_room(self, source) -> None:
        """Room for one more pending message of ``source``: past ``PER_SOURCE`` its own oldest
        goes, past ``max_pending`` the oldest of the source with most pending messages."""
        if self.count[source] >= PER_SOURCE:
            self._give_up(self._oldest(source), "evicted")
        if len(self.pending) >= self.max_pending:
            self._give_up(self._oldest(max(self.count, key=self.count.__getitem__)), "evicted")

    def _oldest(self, source, keep=None):
        return next((k for k, p in self.pending.items() if p.source == source and k != keep), None)

    def _shed(self, keep) -> None:
        """Evict pending messages until the bytes held fit: the oldest of the source that holds
        most (a flooding source sheds its own first), the message being fed last."""
        while self.held > self.max_bytes and self.pending:
            key = self._oldest(max(self.bytes, key=self.bytes.__getitem__), keep)
            if key is None:
                key = next((k for k in self.pending if k != keep), keep)
            self._give_up(key, "evicted")

    def _give_up(self, key, why: str) -> None:
        self.stats[why] += 1
        self._forget(key)
        self._remember(*key)
        if self.on_lost is not None and why != "unfinished":  # at the end, it was still on its way
            self.on_lost(*key)

    def _forget(self, key) -> None:
        p = self.pending.pop(key)
        self.held -= p.held
        self.bytes[p.source] -= p.held
        if not self.bytes[p.source]:
            del self.bytes[p.source]
        self.count[p.source] -= 1
        if not self.count[p.source]:
            del self.count[p.source]

    def _remember(self, source, m: int) -> None:
        done = self.finished.get(source)
        if done is None:
            if len(self.finished) >= MAX_SOURCES:
                self.finished.pop(next(iter(self.finished)))
            done = self.finished[source] = (set(), collections.deque())
        seen, order = done
        seen.add(m)
        order.append(m)
        if len(order) > REMEMBER:
            seen.discard(order.popleft())
