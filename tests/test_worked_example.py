"""The seed's worked example: one SGD step of a 2-2-1 ReLU net, through toolkit's own code."""

import numpy as np
import torch

from toolkit._training import TrainingLoop, make_optimizer
from toolkit.neural_network import MLPRegressor
from toolkit.nn import DenseNet


def test_two_two_one_network_forward_loss_and_gradients():
    net = DenseNet(2, 1, hidden=(2,), activation="relu")
    first, second = net.layers[0], net.layers[2]
    with torch.no_grad():
        first.weight.copy_(torch.tensor([[0.5, -0.5], [0.3, 0.8]]))  # rows: hidden units
        first.bias.copy_(torch.tensor([0.1, -0.2]))
        second.weight.copy_(torch.tensor([[0.2, -0.4]]))
        second.bias.copy_(torch.tensor([0.5]))
    x, y = torch.tensor([[1.0, 2.0]]), torch.tensor([[1.0]])

    # The seed states z1 = (-0.9, 1.7), but 0.5 * 1 - 0.5 * 2 + 0.1 = -0.4: a slip in the seed.
    # Both values are negative, so ReLU zeroes them and every later number is unaffected.
    z1 = first(x)
    np.testing.assert_allclose(z1.detach().numpy(), [[-0.4, 1.7]], atol=1e-6)
    np.testing.assert_allclose(net(x).detach().numpy(), [[-0.18]], atol=1e-6)

    learning_rate = 0.1
    optimizer = make_optimizer(
        "sgd", net.parameters(), learning_rate=learning_rate, weight_decay=0.0, momentum=0.0, nesterov=False
    )
    loop = TrainingLoop(
        module=net,
        optimizer=optimizer,
        loss_fn=MLPRegressor._loss,  # 1/2 (yhat - y)^2, the estimator's own loss
        metric_fn=MLPRegressor._metric,
        batch_size=1,
        generator=torch.Generator().manual_seed(0),
    )
    W1, b1, W2, b2 = (p.detach().clone() for p in (first.weight, first.bias, second.weight, second.bias))
    loss = loop.train_step(x, y)

    np.testing.assert_allclose(loss.item(), 0.6962, atol=1e-6)
    assert f"{loss.item():.3f}" == "0.696"  # the seed's 0.697 is a slip: 1/2 (-1.18)^2 = 0.6962 rounds to 0.696
    np.testing.assert_allclose(second.weight.grad.numpy(), [[0.0, -2.006]], atol=1e-6)
    np.testing.assert_allclose(second.bias.grad.numpy(), [-1.18], atol=1e-6)
    np.testing.assert_allclose(first.weight.grad.numpy(), [[0.0, 0.0], [0.472, 0.944]], atol=1e-6)
    np.testing.assert_allclose(first.bias.grad.numpy(), [0.0, 0.472], atol=1e-6)
    # The step itself: w <- w - lr * dL/dw.
    np.testing.assert_allclose(
        second.weight.detach().numpy(), (W2 - learning_rate * torch.tensor([[0.0, -2.006]])).numpy(), atol=1e-6
    )
    np.testing.assert_allclose(
        first.bias.detach().numpy(), (b1 - learning_rate * torch.tensor([0.0, 0.472])).numpy(), atol=1e-6
    )
    np.testing.assert_allclose(
        first.weight.detach().numpy(), W1.numpy() - learning_rate * np.array([[0, 0], [0.472, 0.944]]), atol=1e-6
    )
    np.testing.assert_allclose(second.bias.detach().numpy(), (b2 + learning_rate * 1.18).numpy(), atol=1e-6)
