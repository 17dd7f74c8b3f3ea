"""Choosing the torch device and dtype of the compute backend (``[compute] device``, ``dtype``)."""

from __future__ import annotations

import sys

import torch

from netemu.errors import ScenarioError

DTYPES = {"float64": torch.float64, "float32": torch.float32}


def resolve(device: str = "auto", dtype: str = "float64", where: str = "[compute]", notice=None):
    """``(torch.device, torch.dtype)`` for the scenario's choice.

    ``auto`` takes CUDA when torch sees a GPU and falls back to the CPU with a one-line notice
    otherwise; ``cuda`` without a GPU is an error.
    """
    notice = notice or (lambda text: print(text, file=sys.stderr))
    has_cuda = torch.cuda.is_available()
    if device == "cuda" and not has_cuda:
        raise ScenarioError(f"{where} device = \"cuda\": torch sees no CUDA device "
                            f"(torch.cuda.is_available() is false); use device = \"cpu\" or \"auto\"")
    if device == "auto":
        device = "cuda" if has_cuda else "cpu"
        if not has_cuda:
            notice(f"notice: {where} device = \"auto\": no CUDA device, computing on the CPU")
    if dtype not in DTYPES:
        raise ScenarioError(f"{where} dtype = {dtype!r} is not one of {', '.join(DTYPES)}")
    return torch.device(device), DTYPES[dtype]
