"""``charlm``: a small character-level transformer language model on text available offline.

Text (``netemu.tasks.corpus``): the Python standard library's docstrings by default, or a text file
or folder (``[task] corpus``); client ``i`` holds ``chars_per_client`` characters of whole modules
(or documents) that no other client holds. A client's text is cut into windows of ``context + 1``
characters starting every ``context`` characters; a sample is the first ``context`` characters and
its targets the next ones.

Model: token and learned position embeddings (``d_model``), ``layers`` pre-norm transformer blocks
(causal self-attention with ``heads`` heads, a 4·d_model ReLU feed-forward), a final layer norm and
a linear head over the 97-token vocabulary; the per-sample loss is the mean next-character
cross-entropy of the window. ``corpus.parameter_count`` gives its size: 114,657 with the defaults
(context 32, d_model 64, 2 layers, 4 heads). The batched local steps run all
nodes' parameters ``[m, P]`` in one call (``StackedCharLM``; the same losses and gradients as
``FunctionalModel``'s ``torch.func`` ``functional_call`` + ``vmap`` over the module).
Metrics: ``loss = F(x̄)`` (the mean over clients of their mean window loss, as every DataTask),
``grad_norm_sq`` and ``perplexity = exp(loss)``, evaluated in chunks of windows.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from netemu.errors import ScenarioError
from netemu.rng import stream
from netemu.tasks.corpus import V, client_texts, encode, windows
from netemu.tasks.data import DataTask

EVAL_CHUNK = 256  # windows per evaluation call


# --- model ------------------------------------------------------------------------------------

class Block(nn.Module):
    def __init__(self, d: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.ln1, self.qkv, self.proj = nn.LayerNorm(d), nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.ln2, self.ff1, self.ff2 = nn.LayerNorm(d), nn.Linear(d, 4 * d), nn.Linear(4 * d, d)

    def forward(self, h):
        B, T, d = h.shape
        q, k, v = self.qkv(self.ln1(h)).split(d, dim=-1)
        q, k, v = (t.reshape(B, T, self.heads, d // self.heads).transpose(1, 2) for t in (q, k, v))
        att = q @ k.transpose(-1, -2) / math.sqrt(d // self.heads)
        mask = torch.ones(T, T, dtype=torch.bool, device=h.device).triu(1)
        att = att.masked_fill(mask, float("-inf")).softmax(dim=-1)
        h = h + self.proj((att @ v).transpose(1, 2).reshape(B, T, d))
        return h + self.ff2(torch.relu(self.ff1(self.ln2(h))))


class CharTransformer(nn.Module):
    """Character-level causal transformer: ``forward(x [B, T] token ids, any dtype) -> logits [B, T, V]``."""

    def __init__(self, context: int = 32, d_model: int = 64, layers: int = 2, heads: int = 4, vocab: int = V):
        super().__init__()
        self.tok = nn.Embedding(vocab, d_model)
        self.pos = nn.Parameter(0.02 * torch.randn(context, d_model))
        self.blocks = nn.ModuleList(Block(d_model, heads) for _ in range(layers))
        self.ln = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab)

    def forward(self, x):
        h = self.tok(x.long()) + self.pos[:x.shape[-1]]
        for b in self.blocks:
            h = b(h)
        return self.head(self.ln(h))


def window_loss(logits, y):
    """Mean next-character cross-entropy per window: ``[B, T, V], [B, T] -> [B]``."""
    return nn.functional.cross_entropy(logits.transpose(1, 2), y, reduction="none").mean(dim=-1)


class StackedCharLM:
    """``CharTransformer`` for a stack of parameter vectors ``[m, P]`` in one call (the layout of
    ``parameters_to_vector``): every linear layer is one ``baddbmm`` over the nodes, and
    ``loss_grad`` takes one backward of the summed node losses (rows are independent, so each
    row's gradient is its node's). About 2–4× faster than ``FunctionalModel``'s ``vmap`` here;
    tests check that both give the same losses and gradients."""

    classifier = False

    def __init__(self, module: CharTransformer) -> None:
        named = list(module.named_parameters())
        self.names = [n for n, _ in named]
        self.shapes = [tuple(p.shape) for _, p in named]
        self.sizes = [math.prod(s) for s in self.shapes]
        self.P = sum(self.sizes)
        self.layers = len(module.blocks)
        self.heads = module.blocks[0].heads if self.layers else 1
        self.template = module

    def to(self, dtype) -> "StackedCharLM":
        return self

    def module(self) -> nn.Module:
        import copy

        return copy.deepcopy(self.template)

    def _unflat(self, flat):
        out, a, m = {}, 0, flat.shape[0]
        for name, shape, k in zip(self.names, self.shapes, self.sizes):
            out[name] = flat[:, a:a + k].reshape(m, *shape)
            a += k
        return out

    @staticmethod
    def _lin(h, W, b):
        m, o = W.shape[0], W.shape[1]
        flat = torch.baddbmm(b[:, None, :], h.reshape(m, -1, h.shape[-1]), W.transpose(1, 2))
        return flat.reshape(*h.shape[:-1], o)

    @staticmethod
    def _ln(h, w, b):
        y = nn.functional.layer_norm(h, h.shape[-1:], eps=1e-5)
        return y * w[:, None, None, :] + b[:, None, None, :]

    def logits(self, flat, x):
        """Logits ``[m, B, T, V]`` of the token windows ``x`` ``[m, B, T]``."""
        p, (m, B, T) = self._unflat(flat), x.shape
        h = p["tok.weight"][torch.arange(m, device=x.device)[:, None, None], x.long()]
        h = h + p["pos"][:, None, :T, :]
        d, H = h.shape[-1], self.heads
        mask = torch.ones(T, T, dtype=torch.bool, device=x.device).triu(1)
        for li in range(self.layers):
            q = lambda name: p[f"blocks.{li}.{name}"]  # noqa: E731
            qkv = self._lin(self._ln(h, q("ln1.weight"), q("ln1.bias")), q("qkv.weight"), q("qkv.bias"))
            a, k, v = (t.reshape(m, B, T, H, d // H).transpose(2, 3) for t in qkv.split(d, dim=-1))
            att = (a @ k.transpose(-1, -2) / math.sqrt(d // H)).masked_fill(mask, float("-inf")).softmax(dim=-1)
            h = h + self._lin((att @ v).transpose(2, 3).reshape(m, B, T, d), q("proj.weight"), q("proj.bias"))
            f = torch.relu(self._lin(self._ln(h, q("ln2.weight"), q("ln2.bias")), q("ff1.weight"), q("ff1.bias")))
            h = h + self._lin(f, q("ff2.weight"), q("ff2.bias"))
        return self._lin(self._ln(h, p["ln.weight"], p["ln.bias"]), p["head.weight"], p["head.bias"])

    def loss_grad(self, flat, x, y, w):
        with torch.enable_grad():
            v = flat.detach().requires_grad_(True)
            z = self.logits(v, x)
            nll = nn.functional.cross_entropy(z.reshape(-1, z.shape[-1]), y.reshape(-1), reduction="none")
            loss = (nll.view(y.shape).mean(dim=-1) * w).sum(dim=1)
            (g,) = torch.autograd.grad(loss.sum(), v)
        return loss.detach(), g

    def predict(self, flat, x):
        return self.logits(flat, x).argmax(dim=-1)


# --- task ---------------------------------------------------------------------------------------

class CharLMTask(DataTask):
    """A DataTask whose evaluation runs in chunks of windows and adds ``perplexity``."""

    def evaluate(self, xbar) -> dict:
        out = {"loss": float("nan"), "grad_norm_sq": float("nan"), "perplexity": float("nan")}
        p = (xbar.detach().to(device=self.device, dtype=self.dtype) if isinstance(xbar, torch.Tensor)
             else self._t(np.asarray(xbar)))[None, :]
        if not bool(torch.isfinite(p).all()):
            return out
        loss, grad = 0.0, torch.zeros_like(p[0], dtype=torch.float64)
        with torch.no_grad():
            for a in range(0, len(self.X), EVAL_CHUNK):
                c = slice(a, a + EVAL_CHUNK)
                lo, g = self.model.loss_grad(p, self.X[c][None], self.y[c][None], self.eval_w[c][None])
                loss += float(lo[0])
                grad += g[0].to(torch.float64)
        out["loss"], out["grad_norm_sq"] = loss, float((grad ** 2).sum())
        out["perplexity"] = math.exp(loss) if loss < 700 else float("inf")
        return out


def build(cfg: dict, n: int, seed: int, device, dtype) -> CharLMTask:
    """The task of a checked ``[task]`` table (``corpus`` made absolute by the loader)."""
    context, chars = cfg["context"], cfg["chars_per_client"]
    if chars < context + 1:
        raise ScenarioError(f"[task] chars_per_client = {chars} is shorter than one window of context + 1 = "
                            f"{context + 1} characters; raise it (e.g. 4000) or lower context")
    if cfg["d_model"] % cfg["heads"]:
        raise ScenarioError(f"[task] d_model = {cfg['d_model']} is not a multiple of heads = {cfg['heads']}; "
                            f"use e.g. d_model = {cfg['heads'] * max(1, round(cfg['d_model'] / cfg['heads']))}")
    texts, _ = client_texts(cfg["corpus"], n, chars)
    parts = [windows(encode(t), context) for t in texts]
    X = np.concatenate([x for x, _ in parts]).astype(np.float64)
    y = np.concatenate([t for _, t in parts])
    model_seed = int(stream(seed, "task").integers(2**31))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(model_seed)
        module = CharTransformer(context, cfg["d_model"], cfg["layers"], cfg["heads"])
    init = nn.utils.parameters_to_vector(module.parameters()).detach().double().numpy()
    batch = 16 if cfg.get("batch") is None else cfg["batch"]
    return CharLMTask(StackedCharLM(module), X, y, [len(x) for x, _ in parts],
                      batch=batch, init=init, device=device, dtype=dtype, kind="charlm")
