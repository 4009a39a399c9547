"""k-bit fake quantization: round weights to a k-bit grid and back, for accuracy-vs-bits curves."""

from __future__ import annotations

import torch


def fake_quantize(weight: torch.Tensor, bits: int, granularity: str = "per_channel", symmetric: bool = True):
    """`weight` rounded to a `bits`-bit grid (per output channel or per tensor) and dequantized."""
    w = weight.float()
    per_channel = granularity == "per_channel" and w.dim() > 1
    dims = tuple(range(1, w.dim())) if per_channel else tuple(range(w.dim()))
    if symmetric:
        qmax = 2 ** (bits - 1) - 1
        scale = w.abs().amax(dim=dims, keepdim=True) / qmax
        scale = torch.where(scale == 0, torch.ones_like(scale), scale)
        q = torch.clamp(torch.round(w / scale), -qmax - 1, qmax)
        return (q * scale).to(weight.dtype)
    qmax = 2**bits - 1
    low, high = w.amin(dim=dims, keepdim=True), w.amax(dim=dims, keepdim=True)
    scale = (high - low) / qmax
    scale = torch.where(scale == 0, torch.ones_like(scale), scale)
    zero = torch.round(-low / scale)
    q = torch.clamp(torch.round(w / scale) + zero, 0, qmax)
    return ((q - zero) * scale).to(weight.dtype)


def ste_fake_quantize(weight: torch.Tensor, bits: int, granularity: str, symmetric: bool) -> torch.Tensor:
    """Fake quantization with a straight-through gradient (identity in the backward pass)."""
    return weight + (fake_quantize(weight.detach(), bits, granularity, symmetric) - weight).detach()
