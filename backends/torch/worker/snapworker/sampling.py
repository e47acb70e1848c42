"""Next-token choice per sequence: greedy (argmax, lowest index on ties, NaN never wins), or temperature sampling
with top-k and top-p filters from the request's own torch.Generator, seeded from its seed, so that a request draws
the same numbers whatever else is decoded with it. The filters follow backends/cpu/sample: candidates ordered by
logit (lower index first on ties), top-k cut, float64 probabilities exp((l - max) / T), the smallest prefix reaching
top-p, then one uniform draw scaled by the kept mass."""
from __future__ import annotations

from dataclasses import dataclass

import torch

MASK64 = (1 << 64) - 1


@dataclass(frozen=True)
class Params:
    """The sampling parameters of one request (Temperature <= 0: greedy)."""

    temperature: float = 0.0
    top_p: float = 0.0
    top_k: int = 0
    seed: int = 0


class Sampler:
    """Draws the tokens of one sequence."""

    def __init__(self, p: Params, device: torch.device) -> None:
        self.p = p
        self.gen = None
        if p.temperature > 0:
            self.gen = torch.Generator(device=device)
            self.gen.manual_seed(p.seed & MASK64)

    def sample(self, logits: torch.Tensor) -> int:
        """The next token from one row of logits [V]."""
        lf = logits.float()
        if self.gen is None:
            return int(torch.nan_to_num(lf, nan=float("-inf")).argmax().item())
        n = lf.shape[0]
        v = torch.nan_to_num(lf, nan=float("-inf"))
        idx = torch.arange(n, device=v.device)
        top_p = 0 < self.p.top_p < 1
        top_k = 0 < self.p.top_k < n
        if top_p or top_k:
            order = torch.sort(v, descending=True, stable=True).indices
            if top_k:
                order = order[:self.p.top_k]
            idx = order
        vals = v[idx].double()
        probs = torch.exp((vals - vals.max()) / self.p.temperature)
        if top_p:
            cum = torch.cumsum(probs / probs.sum(), 0)
            reach = torch.nonzero(cum >= self.p.top_p)
            keep = int(reach[0].item()) + 1 if reach.numel() else probs.shape[0]
            idx, probs = idx[:keep], probs[:keep]
        u = torch.rand((), generator=self.gen, dtype=torch.float64, device=probs.device) * probs.sum()
        j = int(torch.searchsorted(torch.cumsum(probs, 0), u[None], right=True).item())
        return int(idx[min(j, idx.shape[0] - 1)].item())
