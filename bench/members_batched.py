"""The ensemble's members trained one by one and as one StackedMLP (`MLPConfig.stacked_members`), timed.

    .venv/bin/python bench/members_batched.py [MEMBERS] [INPUTS] [EPOCHS]

The forecaster trains its members one after another, ~5 ms of Python and kernel-launch overhead
per step for a net this small. Stacking the members' weights into (members, in, out) tensors and
training them with `baddbmm` does the same arithmetic per member (each member its own shuffled
batches; the loss is the sum of the members' means, so each member's gradient is its own) in one
step for all. Prints the time of E epochs over 1400 rows, batch 64, one thread, both ways.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from energy_platform.forecasting.quantile_net import QuantileMLP, StackedMLP, pinball_loss, pinball_per_member


def main(members: int = 4, inputs: int = 250, epochs: int = 10, rows: int = 1400, batch: int = 64) -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    X, Y = torch.randn(rows, inputs), torch.randn(rows, 24)
    nets = [QuantileMLP(inputs, (256, 128), 0.1, True) for _ in range(members)]
    batched = StackedMLP(nets)

    started = time.perf_counter()
    for m, net in enumerate(nets):
        opt = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=1e-4, fused=True)
        gen = torch.Generator().manual_seed(m)
        for _ in range(epochs):
            net.train()
            perm = torch.randperm(rows, generator=gen)
            for i in range(0, rows, batch):
                b = perm[i : i + batch]
                loss = pinball_loss(net(X[b]), Y[b])
                opt.zero_grad()
                loss.backward()
                opt.step()
    one_by_one = time.perf_counter() - started

    opt = torch.optim.AdamW(batched.parameters(), lr=1e-3, weight_decay=1e-4, fused=True)
    gens = [torch.Generator().manual_seed(m) for m in range(members)]
    started = time.perf_counter()
    for _ in range(epochs):
        batched.train()
        perms = torch.stack([torch.randperm(rows, generator=g) for g in gens])
        for i in range(0, rows, batch):
            b = perms[:, i : i + batch]
            loss = pinball_per_member(batched(X[b]), Y[b]).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
    together = time.perf_counter() - started
    print(f"{members} members x {epochs} epochs, {rows} rows x {inputs} inputs: one by one {one_by_one:.2f} s, "
          f"batched {together:.2f} s ({one_by_one / together:.2f}x)")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:4]))
