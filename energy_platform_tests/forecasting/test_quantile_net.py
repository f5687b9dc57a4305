"""The members trained as one StackedMLP are the members trained alone: same forward, same
gradients, and they come back out as the QuantileMLPs that are saved and served."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import polars as pl
import pytest
import torch

from energy_platform.forecasting import MLPForecaster
from energy_platform.forecasting.metrics import mae
from energy_platform.forecasting.quantile_net import QuantileMLP, StackedMLP, pinball_loss, pinball_per_member

from .conftest import TINY
from .test_model import TARGET, TRAIN_END


@pytest.mark.parametrize("hidden, skip", [((16, 8), True), ((12,), False)])
def test_stacked_members_forward_and_learn_as_each_member_alone(hidden, skip):
    torch.manual_seed(0)
    nets = [QuantileMLP(7, hidden, 0.0, skip) for _ in range(3)]
    stack = StackedMLP(nets)
    x, y = torch.randn(3, 5, 7), torch.randn(3, 5, 24)  # each member its own batch
    together = stack(x)
    for m, net in enumerate(nets):
        torch.testing.assert_close(together[m], net(x[m]), rtol=1e-5, atol=1e-6)
    pinball_per_member(together, y).sum().backward()
    for m, net in enumerate(nets):
        net.zero_grad()
        pinball_loss(net(x[m]), y[m]).backward()
        for k, lin in enumerate(x for x in net.body if isinstance(x, torch.nn.Linear)):
            torch.testing.assert_close(stack.weights[k].grad[m], lin.weight.grad.T, rtol=1e-4, atol=1e-6)
            torch.testing.assert_close(stack.biases[k].grad[m, 0], lin.bias.grad, rtol=1e-4, atol=1e-6)
        if skip:
            torch.testing.assert_close(stack.skip_weight.grad[m], net.skip.weight.grad.T, rtol=1e-4, atol=1e-6)


def test_unstacked_members_are_the_trained_weights_and_keep_restore_one_member():
    torch.manual_seed(1)
    stack = StackedMLP([QuantileMLP(4, (8,), 0.1, True) for _ in range(2)])
    saved = stack.snapshot()
    with torch.no_grad():
        for p in stack.parameters():
            p.add_(1.0)  # "training"
    stack.restore(0, saved)  # member 0 back to its best, member 1 keeps what it learnt
    stack.eval()
    x = torch.randn(6, 4)
    out = stack(x.expand(2, *x.shape))
    members = stack.unstack()
    for m, net in enumerate(members):
        assert not net.training
        torch.testing.assert_close(net(x), out[m], rtol=1e-5, atol=1e-6)
    first_layer = [name for name, _ in stack.named_parameters()].index("weights.0")  # snapshot: parameters() order
    assert torch.equal(members[0].body[0].weight, saved[first_layer][0].T)


def test_a_stacked_fit_stops_each_member_on_its_own_and_forecasts_as_one_by_one(prices, tmp_path):
    """The whole fit with `stacked_members`: each member stops at its own epoch on its best
    weights, warm refits work, the saved model forecasts the same, and accuracy is that of
    one-by-one training within a seed's reach."""
    cfg = {**TINY, "n_members": 3, "max_epochs": 40, "patience": 3}
    stacked = MLPForecaster(horizon_days=2, **cfg, stacked_members=True)
    stacked.fit(prices, TRAIN_END, 200)
    assert len(stacked._members) == len(stacked._bases) == 3
    curve = stacked.last_fit["epoch_losses"]
    # member 0's curve: it ran until `patience` epochs without a better validation loss
    assert len(curve) == stacked.last_fit["epochs"][0]
    best = min(v for _, v in curve)
    assert [v for _, v in curve].index(best) == len(curve) - 1 - cfg["patience"] or len(curve) == cfg["max_epochs"]
    # the early-stopped base of member 0 is its best epoch's net, not the last epoch's
    Xva, Yva = _validation_slice(stacked, prices)
    with torch.no_grad():
        assert pinball_loss(stacked._bases[0](Xva), Yva).item() == pytest.approx(best, rel=1e-5)
    stacked.save(tmp_path / "m.pt")
    loaded = MLPForecaster.load(tmp_path / "m.pt")
    assert loaded.predict(prices, TARGET).equals(stacked.predict(prices, TARGET))
    stacked.fit(prices, TRAIN_END + timedelta(days=1), 200)
    assert stacked.last_fit["warm"] and max(stacked.last_fit["epochs"]) <= cfg["warm_max_epochs"]

    alone = MLPForecaster(horizon_days=2, **cfg)
    alone.fit(prices, TRAIN_END, 200)
    stacked = MLPForecaster(horizon_days=2, **cfg, stacked_members=True)
    stacked.fit(prices, TRAIN_END, 200)
    days = [TARGET + timedelta(days=i) for i in range(14)]
    actual = np.concatenate([prices.filter(pl.col("date") == d).sort("hour")["price"].to_numpy() for d in days])

    def err(m):
        return mae(actual, np.concatenate([m.predict(prices, d)["forecast"].to_numpy() for d in days]))

    assert err(stacked) == pytest.approx(err(alone), rel=0.15)
    assert not stacked.predict(prices, TARGET).equals(alone.predict(prices, TARGET))  # dropout's masks differ


def _validation_slice(model, prices):
    data = model._training_data(prices, TRAIN_END, 200)
    X = torch.tensor(model._scale_x(data.X), dtype=torch.float32)
    Y = torch.tensor(model._price_scaler.transform(data.Y), dtype=torch.float32)
    return X[-model.config.val_days:], Y[-model.config.val_days:]
