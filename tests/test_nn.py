"""The torch modules: summary formulas, batch norm, dropout, recurrent masking."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from toolkit.nn import ConvNet, DenseNet, RecurrentNet, summarize
from toolkit.nn.cnn import conv_output_size


def test_conv_summary_follows_the_seed_formulas():
    # 3 blocks with different kernels and strides so that every formula is exercised.
    net = ConvNet(
        (3, 32, 32),
        5,
        channels=(8, 16, 4),
        kernel_size=(5, 3, 3),
        stride=(1, 2, 1),
        padding=(0, 1, "same"),
        norm=None,
        pool="max",
        pool_size=2,
    )
    rows = {r["layer"]: r for r in summarize(net, (3, 32, 32))}
    conv1, pool1 = rows["blocks.0.0"], rows["blocks.0.2"]
    conv2, pool2, conv3 = rows["blocks.1.0"], rows["blocks.1.2"], rows["blocks.2.0"]
    # output size = floor((n_in + 2p - k) / s) + 1
    assert conv1["output_shape"] == (8, 28, 28)  # (32 - 5) / 1 + 1
    assert pool1["output_shape"] == (8, 14, 14)
    assert conv2["output_shape"] == (16, 7, 7)  # floor((14 + 2 - 3) / 2) + 1
    assert pool2["output_shape"] == (16, 3, 3)  # floor((7 - 2) / 2) + 1
    assert conv3["output_shape"] == (4, 3, 3)
    # params = n * (h * w * c + 1), equal to torch's own count
    assert conv1["params"] == 8 * (5 * 5 * 3 + 1) == sum(p.numel() for p in net.blocks[0][0].parameters())
    assert conv2["params"] == 16 * (3 * 3 * 8 + 1)
    # FLOPs = (H * W * n) * (h * w * c + 1)
    assert conv1["flops"] == (28 * 28 * 8) * (5 * 5 * 3 + 1)
    assert conv2["flops"] == (7 * 7 * 16) * (3 * 3 * 8 + 1)
    # RF_{l+1} = RF_l + (k_{l+1} - 1) * prod_{i<=l} s_i
    assert conv1["receptive_field"] == 1 + 4 * 1 == 5
    assert pool1["receptive_field"] == 5 + 1 * 1 == 6
    assert conv2["receptive_field"] == 6 + 2 * (1 * 2) == 10
    assert pool2["receptive_field"] == 10 + 1 * (1 * 2 * 2) == 14
    assert conv3["receptive_field"] == 14 + 2 * (1 * 2 * 2 * 2) == 30
    assert math.isnan(rows["head"]["receptive_field"])
    assert rows["head"]["params"] == rows["head"]["flops"] == 5 * (4 + 1)


def test_conv_output_size_formula():
    assert conv_output_size(8, 3, 1, 1) == 8
    assert conv_output_size(7, 3, 2, 0) == 3
    assert conv_output_size(5, 5, 1, 0) == 1


def test_pooling_never_shrinks_an_axis_below_one():
    net = ConvNet((1, 1, 6), 2, channels=(4, 4), norm=None)
    assert net(torch.zeros(3, 1, 1, 6)).shape == (3, 2)
    shapes = [r["output_shape"] for r in summarize(net, (1, 1, 6)) if r["type"] == "MaxPool2d"]
    assert shapes == [(4, 1, 3), (4, 1, 1)]


def test_dense_summary_counts():
    rows = summarize(DenseNet(4, 3, hidden=(5,)), (4,))
    assert [r["params"] for r in rows if r["type"] == "Linear"] == [5 * 5, 3 * 6]


def test_kaiming_initialisation_and_zero_biases():
    torch.manual_seed(0)
    net = DenseNet(400, 10, hidden=(300,))
    first = net.layers[0]
    assert torch.count_nonzero(first.bias) == 0
    # weights ~ N(0, 2 / fan_in): 120,000 draws pin the standard deviation to well under 1 %.
    np.testing.assert_allclose(first.weight.std().item(), math.sqrt(2 / 400), rtol=0.01)
    assert abs(first.weight.mean().item()) < 1e-3
    conv = ConvNet((3, 8, 8), 2, channels=(64,)).blocks[0][0]
    np.testing.assert_allclose(conv.weight.std().item(), math.sqrt(2 / (3 * 3 * 3)), rtol=0.05)
    assert torch.count_nonzero(conv.bias) == 0


@pytest.mark.parametrize("cell, gates", [("rnn", 1), ("gru", 3), ("lstm", 4)])
def test_recurrent_summary_counts(cell, gates):
    rows = summarize(RecurrentNet(3, 2, cell=cell, hidden_size=5), (7, 3))
    layer = rows[0]
    assert layer["params"] == gates * 5 * (3 + 5 + 2)
    assert layer["flops"] == 7 * layer["params"]
    assert layer["output_shape"] == (7, 5)


def test_batch_norm_running_statistics_follow_the_stated_momentum():
    """running = (1 - m) * running + m * batch with PyTorch's m = 0.1 (i.e. 0.9 decay)."""
    net = DenseNet(3, 1, hidden=(4,), norm="batch")
    norm = net.layers[1]
    assert isinstance(norm, nn.BatchNorm1d) and norm.momentum == 0.1
    x = torch.randn(16, 3)
    with torch.no_grad():
        h = net.layers[0](x)
        net.train()
        net(x)
    np.testing.assert_allclose(norm.running_mean, 0.9 * 0 + 0.1 * h.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(norm.running_var, 0.9 * 1 + 0.1 * h.var(0, unbiased=True), rtol=1e-5, atol=1e-6)
    # Inference uses the running statistics, training the batch's: outputs differ.
    with torch.no_grad():
        train_out = net(x)
        net.eval()
        eval_out = net(x)
        normalised = (h - norm.running_mean) / torch.sqrt(norm.running_var + norm.eps) * norm.weight + norm.bias
        expected = net.layers[3](net.layers[2](normalised))
    assert not torch.allclose(train_out, eval_out)
    np.testing.assert_allclose(eval_out, expected, rtol=1e-5, atol=1e-6)


def test_inverted_dropout_scales_kept_units_in_training_and_is_identity_in_eval():
    net = DenseNet(1, 1, hidden=(2000,), dropout=0.25)
    dropout = net.layers[2]
    x = torch.ones(1, 2000)
    dropout.train()
    out = dropout(x)
    kept = out[out != 0]
    np.testing.assert_allclose(kept, 1 / 0.75, rtol=1e-6)
    assert abs((out == 0).float().mean().item() - 0.25) < 0.05
    dropout.eval()
    assert torch.equal(dropout(x), x)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_padded_steps_do_not_change_the_output(cell, bidirectional):
    torch.manual_seed(0)
    net = RecurrentNet(3, 2, cell=cell, hidden_size=5, num_layers=2, bidirectional=bidirectional, mask_value=0.0).eval()
    lengths = [5, 3, 1]
    sequences = [torch.randn(n, 3) + 2 for n in lengths]  # +2: no step is all zeros
    padded = torch.zeros(3, 7, 3)
    for i, s in enumerate(sequences):
        padded[i, : len(s)] = s
    with torch.no_grad():
        batched = net(padded)
        alone = torch.cat([net(s.unsqueeze(0)) for s in sequences])
    np.testing.assert_allclose(batched, alone, rtol=1e-5, atol=1e-6)


def test_bidirectional_net_matches_torch_bidirectional_lstm_without_padding():
    torch.manual_seed(0)
    net = RecurrentNet(3, 2, cell="lstm", hidden_size=4, bidirectional=True).eval()
    reference = nn.LSTM(3, 4, batch_first=True, bidirectional=True)
    with torch.no_grad():
        for suffix, cell in (("", net.forward_cells[0]), ("_reverse", net.backward_cells[0])):
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(reference, f"{name}_l0{suffix}").copy_(getattr(cell, f"{name}_l0"))
        x = torch.randn(4, 6, 3)
        _, (h, _) = reference(x)
        expected = net.head(torch.cat([h[0], h[1]], dim=1))
        np.testing.assert_allclose(net(x), expected, rtol=1e-5, atol=1e-6)
