"""The forecaster's nets: a QuantileMLP per ensemble member, and the members stacked to train as one.

A member is a small MLP, and a training step of one is mostly Python and kernel-launch overhead
(bench/results/forecaster.md, session 15: ~0.8 of ~4.3 ms per step is arithmetic). `StackedMLP`
holds the members' weights on a member axis, so one `baddbmm` per layer steps all of them at
once. Each member keeps its own initialisation, its own shuffled batches, its own loss and its
own early stopping; after training the members are unstacked into QuantileMLPs, which are what
is saved and served, so a stacked fit's model loads and forecasts as any other.
"""

from __future__ import annotations

import torch
from torch import nn

from energy_platform.forecasting.base import QUANTILES
from energy_platform.forecasting.features import HOURS


class QuantileMLP(nn.Module):
    """Inputs -> hidden layers -> (24 hours x [p50, lower offset, upper offset])."""

    def __init__(self, n_inputs: int, hidden: tuple[int, ...], dropout: float, linear_skip: bool = False):
        super().__init__()
        self.n_inputs, self.hidden, self.dropout_p = n_inputs, tuple(hidden), dropout
        # A linear path from inputs to the median (LEAR inside the net): the MLP learns the rest.
        self.skip = nn.Linear(n_inputs, HOURS) if linear_skip else None
        layers: list[nn.Module] = []
        width = n_inputs
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU(), nn.Dropout(dropout)]
            width = h
        layers.append(nn.Linear(width, HOURS * 3))
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x).view(-1, HOURS, 3)
        mid = out[..., 0] if self.skip is None else out[..., 0] + self.skip(x)
        return _ordered_quantiles(mid, out)


def _ordered_quantiles(mid: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """(p10, p50, p90) that never cross: p50 minus / plus softplus offsets."""
    lo = mid - nn.functional.softplus(out[..., 1])
    hi = mid + nn.functional.softplus(out[..., 2])
    return torch.stack([lo, mid, hi], dim=-1)


_QUANTILE_TENSOR = torch.tensor(QUANTILES, dtype=torch.float32)  # built once: the loss runs at every step


def pinball_loss(pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    q = _QUANTILE_TENSOR.to(pred.dtype)  # the same tensor for float32 nets
    diff = y.unsqueeze(-1) - pred
    return torch.maximum(q * diff, (q - 1) * diff).mean()


def pinball_per_member(pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Each member's mean pinball loss: pred (members, batch, 24, 3), y (members, batch, 24)."""
    q = _QUANTILE_TENSOR.to(pred.dtype)
    diff = y.unsqueeze(-1) - pred
    return torch.maximum(q * diff, (q - 1) * diff).mean(dim=(1, 2, 3))


class StackedMLP(nn.Module):
    """QuantileMLPs of one shape as (members, in, out) weights; input (members, batch, inputs)."""

    def __init__(self, nets: list[QuantileMLP]):
        super().__init__()
        first = nets[0]
        self.n_inputs, self.hidden, self.dropout_p = first.n_inputs, first.hidden, first.dropout_p
        self.linear_skip = first.skip is not None
        layers = [[m for m in net.body if isinstance(m, nn.Linear)] for net in nets]
        self.weights = nn.ParameterList(
            nn.Parameter(torch.stack([ls[k].weight.detach().T for ls in layers]).contiguous()) for k in range(len(layers[0]))
        )
        self.biases = nn.ParameterList(
            nn.Parameter(torch.stack([ls[k].bias.detach() for ls in layers]).unsqueeze(1).contiguous())
            for k in range(len(layers[0]))
        )
        if self.linear_skip:
            self.skip_weight = nn.Parameter(torch.stack([net.skip.weight.detach().T for net in nets]).contiguous())
            self.skip_bias = nn.Parameter(torch.stack([net.skip.bias.detach() for net in nets]).unsqueeze(1).contiguous())
        self.drop = nn.Dropout(self.dropout_p)

    @property
    def n_members(self) -> int:
        return self.weights[0].shape[0]

    def forward(self, x: torch.Tensor, members: torch.Tensor | None = None) -> torch.Tensor:
        """x: (members, batch, inputs); with `members` (indices) only those run, x holding their rows."""
        def pick(p: torch.Tensor) -> torch.Tensor:
            return p if members is None else p.index_select(0, members)

        h = x
        for w, b in zip(self.weights[:-1], self.biases[:-1], strict=True):
            h = self.drop(torch.relu(torch.baddbmm(pick(b), h, pick(w))))
        out = torch.baddbmm(pick(self.biases[-1]), h, pick(self.weights[-1])).view(x.shape[0], x.shape[1], HOURS, 3)
        mid = out[..., 0]
        if self.linear_skip:
            mid = mid + torch.baddbmm(pick(self.skip_bias), x, pick(self.skip_weight))
        return _ordered_quantiles(mid, out)

    def snapshot(self) -> list[torch.Tensor]:
        return [p.detach().clone() for p in self.parameters()]

    def restore(self, member: int, snapshot: list[torch.Tensor]) -> None:
        """Member `member`'s weights back to those in `snapshot`."""
        with torch.no_grad():
            for p, s in zip(self.parameters(), snapshot, strict=True):
                p[member].copy_(s[member])

    def keep(self, member: int, snapshot: list[torch.Tensor]) -> None:
        """Member `member`'s current weights into `snapshot`."""
        with torch.no_grad():
            for p, s in zip(self.parameters(), snapshot, strict=True):
                s[member].copy_(p[member])

    def unstack(self) -> list[QuantileMLP]:
        nets = []
        for m in range(self.n_members):
            net = QuantileMLP(self.n_inputs, self.hidden, self.dropout_p, self.linear_skip)
            with torch.no_grad():
                for lin, w, b in zip([x for x in net.body if isinstance(x, nn.Linear)], self.weights, self.biases, strict=True):
                    lin.weight.copy_(w[m].T)
                    lin.bias.copy_(b[m, 0])
                if self.linear_skip:
                    net.skip.weight.copy_(self.skip_weight[m].T)
                    net.skip.bias.copy_(self.skip_bias[m, 0])
            net.eval()
            nets.append(net)
        return nets
