"""CS231n's layer maths as oracles: numpy forward / backward passes (tests/reference/layers.py)
checked against numerical gradients, then against toolkit's own modules with the same weights,
forward and backward, in float64: the layers of DenseNet (affine, ReLU, dropout), of ConvNet
(convolution, max pooling), of CaptionDecoder (RNN and LSTM steps, temporal affine, the temporal
softmax loss) and make_norm's normalisations."""

import numpy as np
import pytest
import torch
from torch import nn

from tests.reference import layers as ref
from tests.reference.gradient_check import numerical_gradient, relative_error
from toolkit.nn import ConvNet, DenseNet
from toolkit.nn.caption import CaptionDecoder, masked_temporal_cross_entropy
from toolkit.nn.layers import make_norm

GRADIENT_TOLERANCE = 1e-6  # numpy backward vs central differences
TORCH_TOLERANCE = 1e-6  # numpy vs torch, forward and backward

rng = np.random.default_rng(0)


@pytest.fixture(autouse=True)
def seeded():
    """The same draws for a test whichever tests ran before it in its worker."""
    global rng
    rng = np.random.default_rng(0)


def randn(*shape):
    return rng.standard_normal(shape)


def tensor(a):
    return torch.tensor(a, dtype=torch.float64, requires_grad=True)


def check_gradients(forward, backward_grads, inputs: dict, dout):
    """Each analytic gradient (by input name) against central differences of sum(forward * dout)."""
    for name, analytic in backward_grads.items():

        def f(value, name=name):
            return forward(**{**inputs, name: value})

        numeric = numerical_gradient(f, inputs[name].copy(), dout)
        assert relative_error(analytic, numeric) < GRADIENT_TOLERANCE, name


def check_torch(module_out: torch.Tensor, numpy_out, dout, pairs):
    """Forward equal; then backward of sum(out * dout): each (torch leaf, numpy gradient) pair."""
    assert relative_error(module_out.detach().numpy(), numpy_out) < TORCH_TOLERANCE
    (module_out * torch.tensor(dout)).sum().backward()
    for leaf, expected in pairs:
        assert relative_error(leaf.grad.numpy(), expected) < TORCH_TOLERANCE


# -------------------------------------------------------------------------- affine, ReLU
def test_affine():
    x, w, b = randn(4, 2, 3), randn(6, 5), randn(5)
    out, cache = ref.affine_forward(x, w, b)
    dout = randn(*out.shape)
    dx, dw, db = ref.affine_backward(dout, cache)
    forward = lambda x, w, b: ref.affine_forward(x, w, b)[0]  # noqa: E731
    check_gradients(forward, {"x": dx, "w": dw, "b": db}, {"x": x, "w": w, "b": b}, dout)
    net = DenseNet(6, 5, hidden=()).double()  # the output layer of every dense net
    layer = net.layers[0]
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(w.T)), layer.bias.copy_(torch.tensor(b))
    xt = tensor(x)
    check_torch(net(xt.reshape(4, -1)), out, dout, [(xt, dx), (layer.weight, dw.T), (layer.bias, db)])


def test_relu():
    x = randn(5, 7)
    out, cache = ref.relu_forward(x)
    dout = randn(*out.shape)
    dx = ref.relu_backward(dout, cache)
    check_gradients(lambda x: ref.relu_forward(x)[0], {"x": dx}, {"x": x}, dout)
    relu = DenseNet(7, 7, hidden=(7,)).layers[1]  # a dense net's hidden activation
    xt = tensor(x)
    check_torch(relu(xt), out, dout, [(xt, dx)])


def test_the_two_two_one_worked_example_from_the_reference_layers():
    """A 2-2-1 net worked by hand, through the numpy layers: z1 = (0.5 * 1 - 0.5 * 2 + 0.1,
    0.3 * 1 + 0.8 * 2 - 0.2) = (-0.4, 1.7), ReLU, output -0.18, loss 1/2 (yhat - y)^2 = 0.6962,
    and the gradients of that step."""
    x, y = np.array([[1.0, 2.0]]), np.array([[1.0]])
    w1, b1 = np.array([[0.5, 0.3], [-0.5, 0.8]]), np.array([0.1, -0.2])
    w2, b2 = np.array([[0.2], [-0.4]]), np.array([0.5])
    z1, c1 = ref.affine_forward(x, w1, b1)
    np.testing.assert_allclose(z1, [[-0.4, 1.7]], atol=1e-12)
    h, c2 = ref.relu_forward(z1)
    out, c3 = ref.affine_forward(h, w2, b2)
    np.testing.assert_allclose(out, [[-0.18]], atol=1e-12)
    loss = 0.5 * float(((out - y) ** 2).sum())
    assert loss == pytest.approx(0.6962, abs=1e-12)
    assert f"{loss:.3f}" == "0.696"  # the seed's 0.697 is a slip: 0.6962 rounds to 0.696
    dh, dw2, db2 = ref.affine_backward(out - y, c3)
    dx, dw1, db1 = ref.affine_backward(ref.relu_backward(dh, c2), c1)
    np.testing.assert_allclose(dw2.T, [[0.0, -2.006]], atol=1e-12)
    np.testing.assert_allclose(db2, [-1.18], atol=1e-12)
    np.testing.assert_allclose(dw1.T, [[0.0, 0.0], [0.472, 0.944]], atol=1e-12)
    np.testing.assert_allclose(db1, [0.0, 0.472], atol=1e-12)


# -------------------------------------------------------------------------- normalisation
def test_batchnorm_naive_and_simplified_backward():
    x, gamma, beta = 3 * randn(8, 5) + 2, randn(5), randn(5)
    out, cache = ref.batchnorm_forward(x, gamma, beta)
    dout = randn(*out.shape)
    naive = ref.batchnorm_backward(dout, cache)
    simplified = ref.batchnorm_backward_alt(dout, cache)
    for a, b in zip(naive, simplified):
        assert relative_error(a, b) < 1e-10
    # The simplified form's dy is the gradient at x_hat, dout * gamma (not dout): with it, the
    # formula without gamma in front gives dx; with dout itself it does not (gamma is not 1).
    _, x_hat, _, var, _, eps = cache

    def simplified_dx(dy):
        n = len(x)
        return (n * dy - dy.sum(axis=0) - x_hat * (dy * x_hat).sum(axis=0)) / (n * np.sqrt(var + eps))

    assert relative_error(simplified_dx(dout * gamma), naive[0]) < 1e-10
    assert relative_error(simplified_dx(dout), naive[0]) > 1e-2
    forward = lambda x, gamma, beta: ref.batchnorm_forward(x, gamma, beta)[0]  # noqa: E731
    inputs = {"x": x, "gamma": gamma, "beta": beta}
    check_gradients(forward, dict(zip(["x", "gamma", "beta"], naive)), inputs, dout)
    layer = make_norm("batch", 5, spatial=False).double().train()
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(gamma)), layer.bias.copy_(torch.tensor(beta))
    xt = tensor(x)
    check_torch(layer(xt), out, dout, [(xt, naive[0]), (layer.weight, naive[1]), (layer.bias, naive[2])])


def test_layernorm():
    x, gamma, beta = 3 * randn(6, 7) - 1, randn(7), randn(7)
    out, cache = ref.layernorm_forward(x, gamma, beta)
    dout = randn(*out.shape)
    grads = ref.layernorm_backward(dout, cache)
    forward = lambda x, gamma, beta: ref.layernorm_forward(x, gamma, beta)[0]  # noqa: E731
    check_gradients(forward, dict(zip(["x", "gamma", "beta"], grads)), {"x": x, "gamma": gamma, "beta": beta}, dout)
    layer = make_norm("layer", 7, spatial=False).double()
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(gamma)), layer.bias.copy_(torch.tensor(beta))
    xt = tensor(x)
    check_torch(layer(xt), out, dout, [(xt, grads[0]), (layer.weight, grads[1]), (layer.bias, grads[2])])


def test_spatial_batchnorm():
    x, gamma, beta = 2 * randn(3, 4, 5, 5) + 1, randn(4), randn(4)
    out, cache = ref.spatial_batchnorm_forward(x, gamma, beta)
    dout = randn(*out.shape)
    grads = ref.spatial_batchnorm_backward(dout, cache)
    forward = lambda x, gamma, beta: ref.spatial_batchnorm_forward(x, gamma, beta)[0]  # noqa: E731
    check_gradients(forward, dict(zip(["x", "gamma", "beta"], grads)), {"x": x, "gamma": gamma, "beta": beta}, dout)
    layer = make_norm("batch", 4, spatial=True).double().train()
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(gamma)), layer.bias.copy_(torch.tensor(beta))
    xt = tensor(x)
    check_torch(layer(xt), out, dout, [(xt, grads[0]), (layer.weight, grads[1]), (layer.bias, grads[2])])


@pytest.mark.parametrize("kind, groups", [("group", 2), ("layer", 1), ("instance", 6)])
def test_spatial_groupnorm_and_its_layer_and_instance_cases(kind, groups):
    x, gamma, beta = 2 * randn(2, 6, 4, 4) + 1, randn(6), randn(6)
    out, cache = ref.spatial_groupnorm_forward(x, gamma, beta, groups)
    dout = randn(*out.shape)
    grads = ref.spatial_groupnorm_backward(dout, cache)
    forward = lambda x, gamma, beta: ref.spatial_groupnorm_forward(x, gamma, beta, groups)[0]  # noqa: E731
    check_gradients(forward, dict(zip(["x", "gamma", "beta"], grads)), {"x": x, "gamma": gamma, "beta": beta}, dout)
    layer = make_norm(kind, 6, spatial=True, groups=groups).double()
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(gamma)), layer.bias.copy_(torch.tensor(beta))
    xt = tensor(x)
    check_torch(layer(xt), out, dout, [(xt, grads[0]), (layer.weight, grads[1]), (layer.bias, grads[2])])


# -------------------------------------------------------------------------- dropout
def test_inverted_dropout_matches_torchs_with_its_mask():
    x, p = randn(50, 40) + 3, 0.3
    dropout = DenseNet(40, 1, hidden=(40,), dropout=p).layers[2].train()  # after the hidden activation
    assert isinstance(dropout, nn.Dropout)
    torch.manual_seed(0)
    xt = tensor(x)
    out_t = dropout(xt)
    mask = (out_t.detach().numpy() != 0).astype(float)  # x + 3 is never exactly 0 here
    assert abs(mask.mean() - (1 - p)) < 0.03
    out, cache = ref.dropout_forward(x, p, mask)
    dout = randn(*out.shape)
    dx = ref.dropout_backward(dout, cache)
    check_gradients(lambda x: ref.dropout_forward(x, p, mask)[0], {"x": dx}, {"x": x}, dout)
    check_torch(out_t, out, dout, [(xt, dx)])
    np.testing.assert_allclose(ref.dropout_forward(x, p, mask)[0].mean(), x.mean(), rtol=0.05)  # E[out] = x


# -------------------------------------------------------------------------- convolution, pooling
@pytest.mark.parametrize("stride, pad", [(1, 1), (2, 1), (1, 0)])
def test_naive_convolution(stride, pad):
    x, w, b = randn(2, 3, 7, 7), randn(4, 3, 3, 3), randn(4)
    out, cache = ref.conv_forward_naive(x, w, b, stride, pad)
    dout = randn(*out.shape)
    grads = ref.conv_backward_naive(dout, cache)
    forward = lambda x, w, b: ref.conv_forward_naive(x, w, b, stride, pad)[0]  # noqa: E731
    check_gradients(forward, dict(zip(["x", "w", "b"], grads)), {"x": x, "w": w, "b": b}, dout)
    net = ConvNet((3, 7, 7), 1, channels=(4,), kernel_size=3, stride=stride, padding=pad, norm=None, pool=None)
    layer = net.double().blocks[0][0]  # the block is conv -> ReLU: its conv alone here
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(w)), layer.bias.copy_(torch.tensor(b))
    xt = tensor(x)
    check_torch(layer(xt), out, dout, [(xt, grads[0]), (layer.weight, grads[1]), (layer.bias, grads[2])])


def test_naive_max_pooling():
    x = (rng.permutation(2 * 3 * 6 * 6) * 0.01).reshape(2, 3, 6, 6)  # no near-ties: the max is never at a kink
    out, cache = ref.max_pool_forward_naive(x)
    dout = randn(*out.shape)
    dx = ref.max_pool_backward_naive(dout, cache)
    check_gradients(lambda x: ref.max_pool_forward_naive(x)[0], {"x": dx}, {"x": x}, dout)
    pool = ConvNet((3, 6, 6), 1, channels=(3,), norm=None, pool="max").blocks[0][2]  # conv -> ReLU -> pool
    assert isinstance(pool, nn.MaxPool2d)
    xt = tensor(x)
    check_torch(pool(xt), out, dout, [(xt, dx)])


# -------------------------------------------------------------------------- recurrent steps
def test_rnn_step_matches_one_step_of_torchs_rnn():
    x, h, wx, wh, b = randn(3, 4), randn(3, 5), randn(4, 5), randn(5, 5), randn(5)
    out, cache = ref.rnn_step_forward(x, h, wx, wh, b)
    dout = randn(*out.shape)
    grads = ref.rnn_step_backward(dout, cache)
    forward = lambda x, h, wx, wh, b: ref.rnn_step_forward(x, h, wx, wh, b)[0]  # noqa: E731
    inputs = {"x": x, "h": h, "wx": wx, "wh": wh, "b": b}
    check_gradients(forward, dict(zip(inputs, grads)), inputs, dout)
    rnn = CaptionDecoder(2, 7, 4, 5, cell="rnn").double().rnn  # the captioner's recurrent layer
    with torch.no_grad():
        rnn.weight_ih_l0.copy_(torch.tensor(wx.T)), rnn.weight_hh_l0.copy_(torch.tensor(wh.T))
        rnn.bias_ih_l0.copy_(torch.tensor(b)), rnn.bias_hh_l0.zero_()
    xt, ht = tensor(x), tensor(h)
    output, _ = rnn(xt[:, None], ht[None])
    pairs = [(xt, grads[0]), (ht, grads[1]), (rnn.weight_ih_l0, grads[2].T), (rnn.weight_hh_l0, grads[3].T)]
    check_torch(output[:, 0], out, dout, pairs + [(rnn.bias_ih_l0, grads[4])])


def test_lstm_step_matches_one_step_of_torchs_lstm():
    """CS231n stacks the gates (i, f, o, g); torch stacks (i, f, g, o): the weights are reordered."""
    n, d, hidden = 3, 4, 5
    x, h, c = randn(n, d), randn(n, hidden), randn(n, hidden)
    wx, wh, b = randn(d, 4 * hidden), randn(hidden, 4 * hidden), randn(4 * hidden)
    next_h, next_c, cache = ref.lstm_step_forward(x, h, c, wx, wh, b)
    dh, dc = randn(n, hidden), randn(n, hidden)
    grads = ref.lstm_step_backward(dh, dc, cache)

    def both(x, h, c, wx, wh, b):
        next_h, next_c, _ = ref.lstm_step_forward(x, h, c, wx, wh, b)
        return np.concatenate([next_h, next_c], axis=1)

    inputs = {"x": x, "h": h, "c": c, "wx": wx, "wh": wh, "b": b}
    check_gradients(both, dict(zip(inputs, grads)), inputs, np.concatenate([dh, dc], axis=1))
    order = np.r_[0:hidden, hidden : 2 * hidden, 3 * hidden : 4 * hidden, 2 * hidden : 3 * hidden]  # i f g o
    lstm = CaptionDecoder(2, 7, d, hidden, cell="lstm").double().rnn
    with torch.no_grad():
        lstm.weight_ih_l0.copy_(torch.tensor(wx[:, order].T)), lstm.weight_hh_l0.copy_(torch.tensor(wh[:, order].T))
        lstm.bias_ih_l0.copy_(torch.tensor(b[order])), lstm.bias_hh_l0.zero_()
    xt, ht, ct = tensor(x), tensor(h), tensor(c)
    _, (h_t, c_t) = lstm(xt[:, None], (ht[None], ct[None]))
    assert relative_error(c_t[0].detach().numpy(), next_c) < TORCH_TOLERANCE
    pairs = [(xt, grads[0]), (ht, grads[1]), (ct, grads[2]), (lstm.weight_ih_l0, grads[3][:, order].T)]
    pairs += [(lstm.weight_hh_l0, grads[4][:, order].T), (lstm.bias_ih_l0, grads[5][order])]
    check_torch(torch.cat([h_t[0], c_t[0]], dim=1), np.concatenate([next_h, next_c], axis=1), np.c_[dh, dc], pairs)


# -------------------------------------------------------------------------- temporal layers
def test_temporal_affine():
    x, w, b = randn(2, 4, 3), randn(3, 6), randn(6)
    out, cache = ref.temporal_affine_forward(x, w, b)
    dout = randn(*out.shape)
    grads = ref.temporal_affine_backward(dout, cache)
    forward = lambda x, w, b: ref.temporal_affine_forward(x, w, b)[0]  # noqa: E731
    check_gradients(forward, dict(zip(["x", "w", "b"], grads)), {"x": x, "w": w, "b": b}, dout)
    layer = CaptionDecoder(2, 6, 2, 3, cell="rnn").double().temporal_affine  # (N, T, H) -> (N, T, V)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(w.T)), layer.bias.copy_(torch.tensor(b))
    xt = tensor(x)
    check_torch(layer(xt), out, dout, [(xt, grads[0]), (layer.weight, grads[1].T), (layer.bias, grads[2])])


def test_temporal_softmax_loss_matches_the_captioners_loss():
    n, t, v = 4, 6, 9
    x, y = randn(n, t, v), rng.integers(1, v, size=(n, t))
    y[:, -2:] = 0  # <NULL> padding: masked out
    mask = y != 0
    loss, dx = ref.temporal_softmax_loss(x, y, mask)
    numeric = numerical_gradient(lambda x: np.array(ref.temporal_softmax_loss(x, y, mask)[0]), x.copy(), np.array(1.0))
    assert relative_error(dx, numeric) < GRADIENT_TOLERANCE
    xt = tensor(x)
    ours = masked_temporal_cross_entropy(xt, torch.tensor(y), null_index=0)
    assert ours.item() == pytest.approx(loss, rel=1e-12)
    ours.backward()
    assert relative_error(xt.grad.numpy(), dx) < TORCH_TOLERANCE
