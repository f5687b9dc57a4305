"""The members trained as one StackedMLP are the members trained alone: same forward, same
gradients, and they come back out as the QuantileMLPs that are saved and served."""

from __future__ import annotations

import pytest
import torch

from energy_platform.forecasting.quantile_net import QuantileMLP, StackedMLP, pinball_loss, pinball_per_member


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
