"""ns-3's ``Ns2MobilityHelper`` planning and replay, run over all nodes at once.

ns-3 turns each command into events in file order, keeping a book per node of where it
believes the node will be (:mod:`.ns2` lists the rules). A node's book depends only on its own
commands, so this module groups the commands per node (file order kept) and plans *step by
step over all nodes together*: step ``k`` applies every node's ``k``-th command as one set of
numpy operations. When few nodes have commands left (fewer than :data:`SCALAR_BELOW`), a plain
loop finishes them, which is faster than numpy on tiny arrays and keeps one long node from
costing a numpy step per command. Both paths do the same IEEE operations in the same order, so
they agree bit for bit.

The trip time is ``sqrt(dx·dx + dy·dy) / speed``: ns-3 writes ``std::pow(dx, 2)``, which GCC
compiles to ``dx * dx``; libm's ``pow(dx, 2.0)`` (what Python's ``dx ** 2`` calls) differs from
it by one ulp for about one ``dx`` in a thousand.

Each command owns two event slots, ``2r`` (its event at ``T``: a velocity or a position) and
``2r + 1`` (the stop on arrival); a slot is live once scheduled and dead once cancelled.
Replaying the live events per node in (nanosecond tick, file order) gives the positions; each
node's running sum of ``velocity · dt`` is accumulated in the same order as ns-3's
``ConstantVelocityHelper`` (numpy's ``add.accumulate`` is sequential), restarting at every
scheduled ``set``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from netemu.world.trajectory import Trajectories

TICKS_PER_S = 1e9  # ns-3's default time resolution: every event time is a whole nanosecond
DRIFT_HORIZON_S = 1e6  # how long a node that ns-3 never stops is followed
NS3_END_S = 9.2e9  # just inside ns-3's clock (int64 nanoseconds: 9.22e9 s); later stops happen here
SCALAR_BELOW = 24  # nodes still planning below which a plain loop beats numpy steps

INIT, SET, SETDEST = 0, 1, 2


@dataclass
class Commands:
    """Parsed commands, one entry each: ``kind`` (INIT/SET/SETDEST), ``line``, ``node`` id,
    time ``at``, ``axis`` (0/1/2 for sets), ``a`` (set: value; setdest: x), ``b`` (y), ``c``
    (speed)."""

    kind: np.ndarray
    line: np.ndarray
    node: np.ndarray
    at: np.ndarray
    axis: np.ndarray
    a: np.ndarray
    b: np.ndarray
    c: np.ndarray

    @classmethod
    def concat(cls, parts: list[Commands]) -> Commands:
        names = ("kind", "line", "node", "at", "axis", "a", "b", "c")
        types = (np.int8, np.int64, np.int64, np.float64, np.int8, np.float64, np.float64, np.float64)
        return cls(*(np.concatenate([np.empty(0, t)] + [getattr(p, k) for p in parts]).astype(t, copy=False)
                     for k, t in zip(names, types)))


@dataclass
class Events:
    """The live events, sorted per node by (tick, file order)."""

    ids: np.ndarray  # node ids, ascending; dense node k is ids[k]
    initial: np.ndarray  # [n, 3] positions before the run
    node: np.ndarray  # dense node of each event
    tick: np.ndarray  # int64 nanoseconds
    line: np.ndarray
    sub: np.ndarray  # 0: the command's event at T, 1: its stop
    pos: np.ndarray  # True: SetPosition (a jump, velocity zeroed); False: SetVelocity
    vec: np.ndarray  # [E, 3]: the position or the velocity


class _State:
    """The helper's book for every node, plus the event slots."""

    def __init__(self, cmd: Commands) -> None:
        self.ids, nidx = np.unique(cmd.node, return_inverse=True)
        n = len(self.ids)
        init = cmd.kind == INIT
        self.cfg = np.zeros((n, 3))  # the model's position while the file is read
        if init.any():  # pass 1: SetInitialPosition, wherever in the file; the last one wins
            o = np.argsort(cmd.line[init], kind="stable")
            key = (nidx[init] * 3 + cmd.axis[init])[o][::-1]
            uk, last = np.unique(key, return_index=True)
            self.cfg.reshape(-1)[uk] = cmd.a[init][o][::-1][last]
        rows = np.flatnonzero(~init)
        rows = rows[np.lexsort((cmd.line[rows], nidx[rows]))]
        self.node, self.kind, self.at = nidx[rows], cmd.kind[rows], cmd.at[rows]
        self.axis, self.a, self.b, self.c = cmd.axis[rows], cmd.a[rows], cmd.b[rows], cmd.c[rows]
        self.line = cmd.line[rows]
        self.counts = np.bincount(self.node, minlength=n)
        self.offsets = np.cumsum(self.counts) - self.counts
        self.final = self.cfg.copy()
        self.start = np.zeros((n, 3))
        self.speed = np.zeros((n, 2))
        self.start_time = np.zeros(n)
        self.arrival = np.zeros(n)
        self.stop = np.full(n, -1, dtype=np.int64)
        slots = 2 * len(rows)
        self.ev_t = np.zeros(slots)
        self.ev_vec = np.zeros((slots, 3))
        self.ev_pos = np.zeros(slots, dtype=bool)
        self.ev_alive = np.zeros(slots, dtype=bool)

    def step(self, nodes: np.ndarray, r: np.ndarray) -> None:
        """Every node in ``nodes`` applies its command ``r`` (one command per node)."""
        isset = self.kind[r] == SET
        t = self.at[r]
        if isset.any():  # SetSchedPosition, then the helper's book-keeping
            j, q, tq = nodes[isset], r[isset], t[isset]
            self.cfg[j, self.axis[q]] = self.a[q]
            p = self.cfg[j]
            e = 2 * q
            self.ev_t[e], self.ev_vec[e], self.ev_pos[e], self.ev_alive[e] = tq, p, True, True
            self.final[j] = p
            kill = (self.arrival[j] > tq) & (self.stop[j] >= 0)
            self.ev_alive[self.stop[j[kill]]] = False
            self.arrival[j] = tq
            self.start_time[j] = tq
        if isset.all():
            return
        d = ~isset
        j, q, tq = nodes[d], r[d], t[d]
        f = self.final[j]
        cut = self.arrival[j] > tq  # "Did not reach a destination!": cut the movement short
        if cut.any():
            jc = j[cut]
            el = tq[cut] - self.start_time[jc]
            f[cut, 0] = self.start[jc, 0] + self.speed[jc, 0] * el
            f[cut, 1] = self.start[jc, 1] + self.speed[jc, 1] * el
            f[cut, 2] = 0.0
            jk = jc[self.stop[jc] >= 0]
            self.ev_alive[self.stop[jk]] = False
        dx, dy, v = self.a[q] - f[:, 0], self.b[q] - f[:, 1], self.c[q]
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            time = np.sqrt(dx * dx + dy * dy) / v
            end = tq + time
        halt = (v == 0) | ~np.isfinite(end)  # speed 0, or so slow it never arrives: stop now
        move = ~halt & (time != 0)
        self.start[j] = f  # SetMovement: a movement that goes nowhere, unless it moves below
        self.final[j] = f
        self.start_time[j] = tq
        self.arrival[j] = tq
        self.speed[j] = 0.0
        self.stop[j] = -1
        if halt.any():
            e = 2 * q[halt]
            self.ev_t[e], self.ev_vec[e], self.ev_alive[e] = tq[halt], 0.0, True
            self.stop[j[halt]] = e
        if move.any():
            jm, e, tm, tt = j[move], 2 * q[move], tq[move], time[move]
            vx, vy = dx[move] / tt, dy[move] / tt
            arrive = np.minimum(end[move], NS3_END_S)
            self.ev_t[e], self.ev_vec[e, 0], self.ev_vec[e, 1], self.ev_alive[e] = tm, vx, vy, True
            self.ev_t[e + 1], self.ev_alive[e + 1] = arrive, True
            self.stop[jm] = e + 1
            self.speed[jm, 0], self.speed[jm, 1] = vx, vy
            fm = f[move]
            self.final[jm, 0] = fm[:, 0] + vx * tt
            self.final[jm, 1] = fm[:, 1] + vy * tt
            self.arrival[jm] = arrive

    def finish(self, nodes: np.ndarray, k: int) -> None:
        """The same as :meth:`step`, as a plain loop: ``nodes`` apply their commands ``k…``."""
        made, dead = [], []
        for j in nodes.tolist():
            lo, hi = int(self.offsets[j]) + k, int(self.offsets[j] + self.counts[j])
            cfg, final = self.cfg[j].tolist(), self.final[j].tolist()
            sx, sy, _ = self.start[j].tolist()
            vx, vy = self.speed[j].tolist()
            st, arr, stop = float(self.start_time[j]), float(self.arrival[j]), int(self.stop[j])
            cols = (self.kind, self.at, self.axis, self.a, self.b, self.c)
            for q, (kd, t, ax, a, b, c) in enumerate(zip(*(x[lo:hi].tolist() for x in cols)), lo):
                if kd == SET:
                    cfg[ax] = a
                    made.append((2 * q, t, cfg[0], cfg[1], cfg[2], True))
                    final = cfg.copy()
                    if arr > t and stop >= 0:
                        dead.append(stop)
                    arr = st = t
                    continue
                if arr > t:
                    el = t - st
                    fx, fy, fz = sx + vx * el, sy + vy * el, 0.0
                    if stop >= 0:
                        dead.append(stop)
                else:
                    fx, fy, fz = final
                dx, dy = a - fx, b - fy
                sx, sy, final, st, arr, vx, vy, stop = fx, fy, [fx, fy, fz], t, t, 0.0, 0.0, -1
                if c == 0:
                    time = end = math.inf
                else:
                    time = math.sqrt(dx * dx + dy * dy) / c
                    end = t + time
                if not math.isfinite(end):
                    made.append((2 * q, t, 0.0, 0.0, 0.0, False))
                    stop = 2 * q
                elif time != 0:
                    vx, vy = dx / time, dy / time
                    arr = min(end, NS3_END_S)
                    made.append((2 * q, t, vx, vy, 0.0, False))
                    made.append((2 * q + 1, arr, 0.0, 0.0, 0.0, False))
                    stop = 2 * q + 1
                    final = [fx + vx * time, fy + vy * time, fz]
            self.cfg[j] = cfg
        if made:
            e, t, x, y, z, pos = (np.array(c) for c in zip(*made))
            self.ev_t[e], self.ev_vec[e, 0], self.ev_vec[e, 1], self.ev_vec[e, 2] = t, x, y, z
            self.ev_pos[e], self.ev_alive[e] = pos, True
        self.ev_alive[np.array(dead, dtype=np.int64)] = False


def plan(cmd: Commands) -> Events:
    """Plan ``cmd`` as ns-3's helper does and return the live events (see the module doc)."""
    s, scalar_below = _State(cmd), SCALAR_BELOW
    order = np.argsort(-s.counts, kind="stable")  # nodes with more commands first
    left = s.counts[order]  # so the nodes still planning at step k are a prefix
    k, most = 0, int(left[0]) if len(left) else 0
    while k < most:
        m = int(np.searchsorted(-left, -k, side="left"))  # how many nodes have > k commands
        if m < scalar_below:
            s.finish(order[:m], k)
            break
        nodes = order[:m]
        s.step(nodes, s.offsets[nodes] + k)
        k += 1
    live = np.flatnonzero(s.ev_alive)
    row = live // 2
    node = s.node[row]
    tick = np.floor(s.ev_t[live] * TICKS_PER_S + 0.5).astype(np.int64)
    by = np.lexsort((tick, node))  # stable: equal ticks keep (line, sub) order
    live, row, node, tick = live[by], row[by], node[by], tick[by]
    return Events(s.ids, s.cfg, node, tick, s.line[row], (live % 2).astype(np.int8), s.ev_pos[live],
                  s.ev_vec[live])


def _running_sums(values: np.ndarray, first: np.ndarray, length: np.ndarray) -> np.ndarray:
    """Cumulative sums within segments ``values[first[s]:first[s] + length[s]]``, sequentially.

    Segments of similar length (within a factor 2) are stacked as the columns of one matrix
    and summed with ``np.add.accumulate`` down the rows, so the work is linear in the total.
    """
    out = np.empty_like(values)
    bucket = np.ceil(np.log2(length)).astype(np.int64)
    for b in np.unique(bucket).tolist():
        segs = np.flatnonzero(bucket == b)
        lens = length[segs]
        within = np.arange(lens.sum()) - np.repeat(np.cumsum(lens) - lens, lens)
        col = np.repeat(np.arange(len(segs)), lens)
        src = np.repeat(first[segs], lens) + within
        grid = np.zeros((int(lens.max()), len(segs)) + values.shape[1:])
        grid[within, col] = values[src]
        out[src] = np.add.accumulate(grid, axis=0)[within, col]
    return out


@dataclass
class Replayed:
    trajectories: Trajectories
    after: np.ndarray  # [E, 3] position right after each event
    velocity: np.ndarray  # [E, 3] velocity right after each event
    drifting: list[tuple[int, float]]  # (node id, time of its last event) of nodes never stopped


def replay(ev: Events) -> Replayed:
    """Run the live events like ns-3's simulator and return each node's breakpoints."""
    n, E = len(ev.ids), len(ev.node)
    counts = np.bincount(ev.node, minlength=n)
    first = np.cumsum(counts) - counts
    rank = np.arange(E) - first[ev.node]
    head = rank == 0
    vel = np.where(ev.pos[:, None], 0.0, ev.vec)
    vel_prev = np.zeros((E, 3))
    vel_prev[1:] = vel[:-1]
    vel_prev[head] = 0.0
    tick_prev = np.zeros(E, dtype=np.int64)
    tick_prev[1:] = ev.tick[:-1]
    tick_prev[head] = 0
    inc = vel_prev * ((ev.tick - tick_prev) / TICKS_PER_S)[:, None]  # ConstantVelocityHelper::Update
    # Segments of the running sum: one per node from its initial position, and one after every
    # SetPosition from the position set. Event i sums in the segment of the last reset before it.
    pos_int = ev.pos.astype(np.int64)
    resets_before = np.cumsum(pos_int) - pos_int  # global, exclusive
    resets_before -= resets_before[first[ev.node]] if E else 0
    per_node = np.bincount(ev.node, weights=pos_int, minlength=n).astype(np.int64)
    seg_of_node = np.arange(n) + np.cumsum(per_node) - per_node
    seg = seg_of_node[ev.node] + resets_before
    S = n + int(pos_int.sum())
    seg_len = 1 + np.bincount(seg, minlength=S)
    seg_first = np.cumsum(seg_len) - seg_len
    seg_event0 = np.cumsum(seg_len - 1) - (seg_len - 1)  # first event of each segment
    slot = seg_first[seg] + 1 + (np.arange(E) - seg_event0[seg])
    values = np.empty((int(seg_len.sum()), 3))
    values[seg_first[seg_of_node]] = ev.initial
    values[seg_first[seg[ev.pos] + 1]] = ev.vec[ev.pos]
    values[slot] = inc
    before = _running_sums(values, seg_first, seg_len)[slot]
    after = np.where(ev.pos[:, None], ev.vec, before)
    # breakpoints: (0, initial), then per event (t, before) and for a jump (t, after), then drift
    last = np.flatnonzero(np.r_[head[1:], True]) if E else np.zeros(0, np.int64)
    drift = np.zeros(n, dtype=np.int64)
    moving = last[(vel[last] != 0).any(axis=1)]
    drift[ev.node[moving]] = 1
    bp_count = 1 + counts + per_node + drift
    bp_first = np.cumsum(bp_count) - bp_count
    T = np.zeros(int(bp_count.sum()))
    P = np.empty((len(T), 3))
    P[bp_first] = ev.initial
    t = ev.tick / TICKS_PER_S
    at = bp_first[ev.node] + 1 + rank + resets_before
    T[at], P[at] = t, before
    T[at[ev.pos] + 1], P[at[ev.pos] + 1] = t[ev.pos], ev.vec[ev.pos]
    end = bp_first[ev.node[moving]] + bp_count[ev.node[moving]] - 1
    T[end] = t[moving] + DRIFT_HORIZON_S
    P[end] = before[moving] + vel[moving] * DRIFT_HORIZON_S
    traj = Trajectories.from_flat(ev.ids.tolist(), bp_count, T, P)
    drifting = list(zip(ev.ids[ev.node[moving]].tolist(), t[moving].tolist()))
    return Replayed(traj, after, vel, drifting)
