"""Compressed FL updates (netemu.fl.compress): exact low-rank reconstruction, bytes sent, error
feedback, decode = approx, error bounds, and the bad-input messages."""

import math

import numpy as np
import pytest

from netemu.errors import ScenarioError
from netemu.fl.compress import CODEC_PARAMS, build_codec

WHERE = "s.toml: [protocols.fedbuff] compress"


def low_rank(m, n, k, seed=0, dtype=np.float64):
    g = np.random.default_rng(seed)
    return (g.normal(size=(m, k)) @ g.normal(size=(k, n))).astype(dtype)


# --- low-rank kinds: exact on rank-k matrices, bytes from the factor shapes ----------------------

FACTORS = {  # kind -> {payload key: shape of the factor for an m×n view at rank k}
    "pca": lambda m, n, k: {"mean": (n,), "us": (m, k), "v": (n, k)},
    "qrcp": lambda m, n, k: {"q": (n, k), "r": (k, m)},
    "cur": lambda m, n, k: {"z": (m, k), "r": (k, n)},
}


@pytest.mark.parametrize("kind", ["pca", "qrcp", "cur"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_low_rank_exact_on_rank_k_and_bytes_of_factors(kind, dtype):
    k = 4
    shapes = [(40, 30), (30,), (24, 5, 6), (7,)]
    mats = [low_rank(40, 30, k, 1), None, low_rank(24, 30, k, 2), None]
    g = np.random.default_rng(3)
    flat = np.concatenate([m.ravel() if m is not None else g.normal(size=s) for m, s in zip(mats, shapes)])
    flat = flat.astype(dtype)
    codec = build_codec({"kind": kind, "rank": k}, shapes, n_clients=2, where=WHERE)
    enc = codec.encode(0, flat)
    tol = 1e-10 if dtype == np.float64 else 2e-4
    assert enc.approx.dtype == dtype
    np.testing.assert_allclose(enc.approx, flat, rtol=0, atol=tol * np.abs(flat).max())
    assert enc.error <= tol * np.linalg.norm(flat.astype(np.float64))
    # the payload holds exactly the factors, and nbytes counts them at the update's dtype
    expect = {}
    for i, view in enumerate([(40, 30), None, (24, 30), None]):
        if view is None:
            continue
        m, n = view
        expect.update({f"{i}.{name}": shp for name, shp in FACTORS[kind](m, n, k).items()})
    expect.update({"1.x": (30,), "3.x": (7,)})  # 1-D tensors go whole
    assert {key: a.shape for key, a in enc.payload.items()} == expect
    item = np.dtype(dtype).itemsize
    assert enc.nbytes == item * sum(math.prod(s) for s in expect.values())
    assert all(a.dtype == dtype for a in enc.payload.values())
    assert np.array_equal(codec.decode(enc.payload), enc.approx)


def test_rank_is_clamped_per_tensor_and_a_tensor_goes_whole_where_factors_are_not_smaller():
    # a 3×50 tensor at rank 10 uses rank 3, whose PCA factors (50 + 150 + 150) exceed 150 entries
    codec = build_codec({"kind": "pca", "rank": 10}, [(60, 40), (3, 50)], 1, WHERE)
    x = np.random.default_rng(0).normal(size=60 * 40 + 150)
    enc = codec.encode(0, x)
    assert enc.payload["0.us"].shape == (60, 10) and enc.payload["1.x"].shape == (150,)
    assert np.array_equal(enc.approx[2400:], x[2400:])
    codec = build_codec({"kind": "qrcp", "rank": 10}, [(60, 40), (8, 100), (12, 100)], 1, WHERE)
    enc = codec.encode(0, np.random.default_rng(1).normal(size=2400 + 800 + 1200))
    assert enc.payload["1.x"].shape == (800,)  # rank 8: 800 + 64 entries are more than 800
    assert enc.payload["2.q"].shape == (100, 10) and enc.payload["2.r"].shape == (10, 12)


def test_pca_is_the_truncated_svd_of_the_centred_matrix():
    S = np.random.default_rng(5).normal(size=(30, 20)) + 3.0  # far from centred
    enc = build_codec({"kind": "pca", "rank": 5}, [(30, 20)], 1, WHERE).encode(0, S.ravel())
    s = np.linalg.svd(S - S.mean(axis=0), compute_uv=False)
    assert enc.error == pytest.approx(math.sqrt(np.sum(s[5:] ** 2)), rel=1e-10)
    np.testing.assert_allclose(enc.payload["0.mean"], S.mean(axis=0), rtol=1e-12)


def test_qrcp_projects_onto_k_rows_of_s_starting_with_the_largest():
    g = np.random.default_rng(6)
    S = g.normal(size=(25, 18))
    S[7] *= 10  # the first pivot
    enc = build_codec({"kind": "qrcp", "rank": 6}, [(25, 18)], 1, WHERE).encode(0, S.ravel())
    A = enc.approx.reshape(25, 18)
    kept = np.flatnonzero(np.abs(A - S).max(axis=1) < 1e-10)
    assert len(kept) == 6 and 7 in kept  # the pivoted rows come back exactly
    Q, _ = np.linalg.qr(S[kept].T)
    np.testing.assert_allclose(A, S @ Q @ Q.T, atol=1e-10)  # the other rows: projections on their span


def test_cur_keeps_its_sampled_rows_and_is_deterministic_per_seed_client_and_update():
    S = np.random.default_rng(8).normal(size=(30, 12))
    mk = lambda seed: build_codec({"kind": "cur", "rank": 5}, [(30, 12)], 3, WHERE, seed=seed)  # noqa: E731
    a, b = mk(1), mk(1)
    e1, e2 = a.encode(0, S.ravel()), b.encode(0, S.ravel())
    assert all(np.array_equal(e1.payload[key], e2.payload[key]) for key in e1.payload)
    R = e1.payload["0.r"]
    rows = [int(np.flatnonzero((S == r).all(axis=1))[0]) for r in R]  # R is made of rows of S
    assert len(set(rows)) == 5
    np.testing.assert_allclose(e1.approx.reshape(30, 12), S @ np.linalg.pinv(R) @ R, atol=1e-12)
    other = [mk(1).encode(1, S.ravel()).payload["0.r"], a.encode(0, S.ravel()).payload["0.r"],
             mk(2).encode(0, S.ravel()).payload["0.r"]]  # another client, the next update, another seed
    assert all(not np.array_equal(R, o) for o in other)


# --- decode(payload) reproduces approx, for every kind --------------------------------------------

KINDS = [None, {"kind": "pca", "rank": 3}, {"kind": "qrcp", "rank": 3}, {"kind": "cur", "rank": 3},
         {"kind": "topk", "fraction": 0.05}, {"kind": "topk", "k": 17}, {"kind": "quantize"},
         {"kind": "quantize", "bits": 3}]


@pytest.mark.parametrize("cfg", KINDS, ids=lambda c: "none" if c is None else "-".join(map(str, c.values())))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_decode_of_the_payload_equals_approx_bit_for_bit(cfg, dtype):
    shapes = [(20, 12), (12,), (6, 2, 3)]
    codec = build_codec(cfg, shapes, 2, WHERE)
    x = np.random.default_rng(9).normal(size=codec.P).astype(dtype)
    enc = codec.encode(1, x)
    out = codec.decode({k: v.copy() for k, v in enc.payload.items()})
    assert out.dtype == dtype and np.array_equal(out, enc.approx)
    assert enc.nbytes == sum(a.nbytes for a in enc.payload.values()) > 0
    assert enc.error == pytest.approx(float(np.linalg.norm((x - enc.approx).astype(np.float64))), rel=1e-9, abs=1e-12)
    assert enc.seconds >= 0


# --- error feedback ---------------------------------------------------------------------------------

@pytest.mark.parametrize("cfg", [{"kind": "topk", "k": 5}, {"kind": "pca", "rank": 2}, {"kind": "quantize", "bits": 2}])
def test_error_feedback_carries_the_residual_into_the_next_update(cfg):
    shapes = [(8, 6), (6,)]
    ef = build_codec({**cfg, "feedback": "ef"}, shapes, 2, WHERE)
    plain = build_codec(cfg, shapes, 2, WHERE)
    g = np.random.default_rng(11)
    d1, d2, d3 = (g.normal(size=ef.P) for _ in range(3))
    m1 = ef.encode(0, d1).approx
    assert np.array_equal(m1, plain.encode(0, d1).approx)  # nothing carried on the first update
    e1 = ef.residual(0)
    assert np.array_equal(e1, d1 - m1) and np.linalg.norm(e1) > 0
    assert np.array_equal(ef.residual(1), np.zeros(ef.P))  # per client
    m2 = ef.encode(0, d2).approx
    assert np.array_equal(m2, plain.encode(0, e1 + d2).approx)  # m = C(e + Δ)
    assert np.array_equal(ef.residual(0), (e1 + d2) - m2)  # e <- e + Δ - m
    m3 = ef.encode(0, d3).approx
    np.testing.assert_allclose(m1 + m2 + m3 + ef.residual(0), d1 + d2 + d3, atol=1e-12)  # nothing is lost
    # without feedback no residual is kept
    plain.encode(0, d2)
    assert np.array_equal(plain.residual(0), np.zeros(plain.P))


# --- topk and quantize bounds ---------------------------------------------------------------------

@pytest.mark.parametrize("frac", [0.01, 0.1, 0.5, 1.0])
def test_topk_keeps_the_largest_entries_and_meets_its_error_bound(frac):
    codec = build_codec({"kind": "topk", "fraction": frac}, [(50, 40), (40,)], 1, WHERE)
    x = np.random.default_rng(12).standard_t(3, size=codec.P)
    enc = codec.encode(0, x)
    k = math.ceil(frac * codec.P)
    kept = enc.approx != 0
    assert kept.sum() == k and np.array_equal(enc.approx[kept], x[kept])
    if k < codec.P:
        assert np.abs(x[kept]).min() >= np.abs(x[~kept]).max()
    assert enc.error ** 2 <= (1 - k / codec.P) * np.dot(x, x) * (1 + 1e-12)
    assert enc.nbytes == k * (4 + 8) and enc.payload["idx"].dtype == np.int32


@pytest.mark.parametrize("bits", [8, 4, 1])
def test_quantize_error_is_at_most_half_a_step_per_entry(bits):
    shapes = [(30, 20), (20,), (5,)]
    codec = build_codec({"kind": "quantize", "bits": bits}, shapes, 1, WHERE)
    g = np.random.default_rng(13)
    x = np.concatenate([g.normal(size=600), 5 + 0.1 * g.normal(size=20), np.full(5, 2.5)])
    enc = codec.encode(0, x)
    off = np.cumsum([0, 600, 20, 5])
    for i in range(3):
        seg, app = x[off[i]:off[i + 1]], enc.approx[off[i]:off[i + 1]]
        step = (seg.max() - seg.min()) / (2 ** bits - 1)
        assert np.abs(seg - app).max() <= step / 2 * (1 + 1e-9) + 1e-15
        assert enc.payload["lo"][i] == seg.min() and enc.payload["scale"][i] == pytest.approx(step)
    assert np.array_equal(enc.approx[620:], x[620:])  # a constant tensor comes back exactly
    assert enc.nbytes == math.ceil(625 * bits / 8) + 2 * 3 * 8
    assert len(np.unique(enc.approx[:600])) <= 2 ** bits


# --- bad input: one line naming the key -----------------------------------------------------------

@pytest.mark.parametrize("cfg, text", [
    ({"kind": "pca", "rank": 31}, "compress.rank = 31 is larger than any tensor allows: the widest tensor here is 40×30 as a matrix, so rank must be <= 30"),
    ({"kind": "cur", "rank": 100}, "compress.rank = 100 is larger than any tensor allows"),
    ({"kind": "qrcp"}, "compress.rank is missing: kind = 'qrcp' needs it, e.g. rank = 10"),
    ({"kind": "pca", "rank": 0}, "compress.rank = 0 is out of range"),
    ({"kind": "pca", "rank": 3, "fraction": 0.1}, "compress.fraction: kind = 'pca' does not take fraction"),
    ({"kind": "topk"}, 'compress: kind = "topk" takes one of k (entries) or fraction'),
    ({"kind": "topk", "k": 5, "fraction": 0.5}, 'compress: kind = "topk" takes one of k'),
    ({"kind": "topk", "fraction": 1.5}, "compress.fraction = 1.5 is out of range: it must be within (0, 1]"),
    ({"kind": "topk", "fraction": 0.0}, "compress.fraction = 0.0 is out of range"),
    ({"kind": "topk", "k": 5000}, "compress.k = 5000 is larger than the model's 1230 parameters"),
    ({"kind": "quantize", "bits": 16}, "compress.bits = 16 is out of range: it must be within [1, 8]"),
    ({"kind": "pcaa", "rank": 3}, "compress.kind = 'pcaa' is not one of none, pca, qrcp, cur, topk, quantize (did you mean 'pca'?)"),
    ({"kind": "pca", "rnak": 3}, "compress.rnak: unknown key (did you mean 'rank'?)"),
    ({"kind": "pca", "rank": 3, "feedback": "econtrol"}, "compress.feedback = 'econtrol' is not one of none, ef"),
    ("pca", "compress = 'pca' must be a table"),
])
def test_bad_compress_tables_get_one_line_naming_the_key(cfg, text):
    with pytest.raises(ScenarioError) as err:
        build_codec(cfg, [(40, 30), (30,)], 2, WHERE)
    msg = str(err.value)
    assert msg.startswith(WHERE) and text in msg and "\n" not in msg


def test_codec_params_declare_every_key():
    assert set(CODEC_PARAMS) == {"kind", "rank", "k", "fraction", "bits", "feedback"}
    assert build_codec({}, [(3,)], 1, WHERE).kind == "none"


@pytest.mark.parametrize("bits", range(1, 9))
def test_quantize_packs_codes_most_significant_bit_first(bits):
    # the wire format of the codes: each code's `bits` low bits, MSB first, concatenated, zero-padded
    codec = build_codec({"kind": "quantize", "bits": bits}, [(7, 9), (5,)], 1, WHERE)
    x = np.random.default_rng(bits).normal(size=codec.P)
    enc = codec.encode(0, x)
    lo, scale = np.repeat(enc.payload["lo"], [63, 5]), np.repeat(enc.payload["scale"], [63, 5])
    codes = np.rint((enc.approx - lo) / scale).astype(np.uint8)
    assert codes.max() == 2 ** bits - 1 and codes.min() == 0
    expect = np.packbits(np.unpackbits(codes[:, None], axis=1)[:, 8 - bits:].reshape(-1))
    assert np.array_equal(enc.payload["codes"], expect)


@pytest.mark.parametrize("cfg", KINDS, ids=lambda c: "none" if c is None else "-".join(map(str, c.values())))
def test_a_diverged_update_travels_as_nans_of_the_same_size(cfg):
    shapes = [(20, 12), (12,), (6, 2, 3)]
    codec = build_codec(cfg, shapes, 1, WHERE)
    x = np.random.default_rng(14).normal(size=codec.P)
    size = codec.encode(0, x).nbytes
    x[5] = np.inf
    x[7] = np.nan
    enc = codec.encode(0, x)
    assert enc.nbytes == size and not np.isfinite(enc.approx).all() and math.isnan(enc.error)
    assert np.array_equal(codec.decode(enc.payload), enc.approx, equal_nan=True)
