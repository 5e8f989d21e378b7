"""CS231n's layers (assignments 2 and 3) in numpy, forward and backward, written from their formulas (float64).

Each ``*_forward`` returns (out, cache) and each ``*_backward`` takes (dout, cache) and returns
the gradients of its inputs and parameters, in CS231n's conventions: an affine layer's
weight is (D, M) (x @ w + b), images are (N, C, H, W), sequences (N, T, D), LSTM gates stacked
as (input, forget, output, candidate). These are test oracles: clarity over speed.
"""

from __future__ import annotations

import numpy as np


# ------------------------------------------------------------------ affine, ReLU
def affine_forward(x, w, b):
    out = x.reshape(len(x), -1) @ w + b
    return out, (x, w)


def affine_backward(dout, cache):
    x, w = cache
    dx = (dout @ w.T).reshape(x.shape)
    return dx, x.reshape(len(x), -1).T @ dout, dout.sum(axis=0)


def relu_forward(x):
    return np.maximum(0, x), x


def relu_backward(dout, x):
    return dout * (x > 0)


# ------------------------------------------------------------------ normalisation
def batchnorm_forward(x, gamma, beta, eps=1e-5):
    """Training mode: the batch's mean and biased variance."""
    mean = x.mean(axis=0)
    var = x.var(axis=0)
    x_hat = (x - mean) / np.sqrt(var + eps)
    return gamma * x_hat + beta, (x, x_hat, mean, var, gamma, eps)


def batchnorm_backward(dout, cache):
    """Naive: the chain rule through every node of the computation graph."""
    x, x_hat, mean, var, gamma, eps = cache
    n = len(x)
    dgamma = (dout * x_hat).sum(axis=0)
    dbeta = dout.sum(axis=0)
    dx_hat = dout * gamma
    inv_std = 1 / np.sqrt(var + eps)
    dvar = (dx_hat * (x - mean) * -0.5 * inv_std**3).sum(axis=0)
    dmean = (-dx_hat * inv_std).sum(axis=0) + dvar * (-2 * (x - mean)).mean(axis=0)
    dx = dx_hat * inv_std + dvar * 2 * (x - mean) / n + dmean / n
    return dx, dgamma, dbeta


def batchnorm_backward_alt(dout, cache):
    """The simplified form: dx = gamma / (N sigma) (N dout - sum(dout) - x_hat sum(dout x_hat)).

    ``dout`` is the upstream gradient, dL/dy for y = gamma x_hat + beta. Derivations that write
    dx = 1 / (N sigma) (N dy - sum(dy) - x_hat sum(dy x_hat)) mean by ``dy`` the gradient at
    x_hat, dout * gamma, not dout: gamma moves in front here.
    """
    x, x_hat, mean, var, gamma, eps = cache
    n = len(x)
    dgamma = (dout * x_hat).sum(axis=0)
    dbeta = dout.sum(axis=0)
    dx = gamma / (n * np.sqrt(var + eps)) * (n * dout - dbeta - x_hat * dgamma)
    return dx, dgamma, dbeta


def layernorm_forward(x, gamma, beta, eps=1e-5):
    """Batch norm on the transposed problem: statistics over each sample's features."""
    out_t, cache = batchnorm_forward(x.T, 1.0, 0.0, eps)
    x_hat = out_t.T
    return gamma * x_hat + beta, (cache, x_hat, gamma)


def layernorm_backward(dout, cache):
    bn_cache, x_hat, gamma = cache
    dgamma = (dout * x_hat).sum(axis=0)
    dbeta = dout.sum(axis=0)
    dx_t, _, _ = batchnorm_backward_alt((dout * gamma).T, bn_cache)
    return dx_t.T, dgamma, dbeta


def spatial_batchnorm_forward(x, gamma, beta, eps=1e-5):
    """Per channel over (N, H, W): the (N H W, C) batch-norm problem."""
    n, c, h, w = x.shape
    flat = x.transpose(0, 2, 3, 1).reshape(-1, c)
    out, cache = batchnorm_forward(flat, gamma, beta, eps)
    return out.reshape(n, h, w, c).transpose(0, 3, 1, 2), (cache, x.shape)


def spatial_batchnorm_backward(dout, cache):
    bn_cache, (n, c, h, w) = cache
    dx, dgamma, dbeta = batchnorm_backward_alt(dout.transpose(0, 2, 3, 1).reshape(-1, c), bn_cache)
    return dx.reshape(n, h, w, c).transpose(0, 3, 1, 2), dgamma, dbeta


def spatial_groupnorm_forward(x, gamma, beta, groups, eps=1e-5):
    """Statistics per sample and group of C / G channels over (C / G, H, W); gamma, beta per channel."""
    n, c, h, w = x.shape
    grouped = x.reshape(n * groups, -1)  # one row per (sample, group)
    out_t, cache = batchnorm_forward(grouped.T, 1.0, 0.0, eps)
    x_hat = out_t.T.reshape(x.shape)
    g, b = gamma.reshape(1, c, 1, 1), beta.reshape(1, c, 1, 1)
    return g * x_hat + b, (cache, x_hat, g, groups)


def spatial_groupnorm_backward(dout, cache):
    bn_cache, x_hat, g, groups = cache
    n, c, h, w = dout.shape
    dgamma = (dout * x_hat).sum(axis=(0, 2, 3))
    dbeta = dout.sum(axis=(0, 2, 3))
    dx_t, _, _ = batchnorm_backward_alt((dout * g).reshape(n * groups, -1).T, bn_cache)
    return dx_t.T.reshape(dout.shape), dgamma, dbeta


# ------------------------------------------------------------------ dropout
def dropout_forward(x, p, mask):
    """Inverted dropout with drop probability p and the keep-mask given: x * mask / (1 - p)."""
    return x * mask / (1 - p), (mask, p)


def dropout_backward(dout, cache):
    mask, p = cache
    return dout * mask / (1 - p)


# ------------------------------------------------------------------ convolution, pooling
def conv_forward_naive(x, w, b, stride=1, pad=0):
    n, c, h, width = x.shape
    f, _, hh, ww = w.shape
    padded = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    out_h, out_w = 1 + (h + 2 * pad - hh) // stride, 1 + (width + 2 * pad - ww) // stride
    out = np.zeros((n, f, out_h, out_w))
    for i in range(out_h):
        for j in range(out_w):
            window = padded[:, :, i * stride : i * stride + hh, j * stride : j * stride + ww]
            out[:, :, i, j] = np.tensordot(window, w, axes=([1, 2, 3], [1, 2, 3])) + b
    return out, (x, w, stride, pad)


def conv_backward_naive(dout, cache):
    x, w, stride, pad = cache
    f, _, hh, ww = w.shape
    padded = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    dpadded, dw = np.zeros_like(padded), np.zeros_like(w)
    for i in range(dout.shape[2]):
        for j in range(dout.shape[3]):
            rows, cols = slice(i * stride, i * stride + hh), slice(j * stride, j * stride + ww)
            dw += np.tensordot(dout[:, :, i, j], padded[:, :, rows, cols], axes=([0], [0]))
            dpadded[:, :, rows, cols] += np.tensordot(dout[:, :, i, j], w, axes=([1], [0]))
    dx = dpadded[:, :, pad : pad + x.shape[2], pad : pad + x.shape[3]]
    return dx, dw, dout.sum(axis=(0, 2, 3))


def max_pool_forward_naive(x, size=2, stride=2):
    n, c, h, w = x.shape
    out_h, out_w = 1 + (h - size) // stride, 1 + (w - size) // stride
    out = np.zeros((n, c, out_h, out_w))
    for i in range(out_h):
        for j in range(out_w):
            out[:, :, i, j] = x[:, :, i * stride : i * stride + size, j * stride : j * stride + size].max(axis=(2, 3))
    return out, (x, size, stride)


def max_pool_backward_naive(dout, cache):
    """The gradient goes to the (first) maximum of each window."""
    x, size, stride = cache
    dx = np.zeros_like(x)
    for i in range(dout.shape[2]):
        for j in range(dout.shape[3]):
            window = x[:, :, i * stride : i * stride + size, j * stride : j * stride + size]
            flat = window.reshape(*window.shape[:2], -1)
            first = flat.argmax(axis=2)
            a, b = np.unravel_index(first, (size, size))
            for n_ in range(x.shape[0]):
                for c_ in range(x.shape[1]):
                    dx[n_, c_, i * stride + a[n_, c_], j * stride + b[n_, c_]] += dout[n_, c_, i, j]
    return dx


# ------------------------------------------------------------------ recurrent steps
def rnn_step_forward(x, prev_h, wx, wh, b):
    next_h = np.tanh(x @ wx + prev_h @ wh + b)
    return next_h, (x, prev_h, wx, wh, next_h)


def rnn_step_backward(dnext_h, cache):
    x, prev_h, wx, wh, next_h = cache
    da = dnext_h * (1 - next_h**2)
    return da @ wx.T, da @ wh.T, x.T @ da, prev_h.T @ da, da.sum(axis=0)


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def lstm_step_forward(x, prev_h, prev_c, wx, wh, b):
    """Gates a = x wx + h wh + b split as (i, f, o, g): c' = f c + i g, h' = o tanh(c')."""
    a = x @ wx + prev_h @ wh + b
    h = prev_h.shape[1]
    i, f, o, g = _sigmoid(a[:, :h]), _sigmoid(a[:, h : 2 * h]), _sigmoid(a[:, 2 * h : 3 * h]), np.tanh(a[:, 3 * h :])
    next_c = f * prev_c + i * g
    next_h = o * np.tanh(next_c)
    return next_h, next_c, (x, prev_h, prev_c, wx, wh, i, f, o, g, next_c)


def lstm_step_backward(dnext_h, dnext_c, cache):
    x, prev_h, prev_c, wx, wh, i, f, o, g, next_c = cache
    tanh_c = np.tanh(next_c)
    dc = dnext_c + dnext_h * o * (1 - tanh_c**2)
    da = np.concatenate(
        [dc * g * i * (1 - i), dc * prev_c * f * (1 - f), dnext_h * tanh_c * o * (1 - o), dc * i * (1 - g**2)], axis=1
    )
    return da @ wx.T, da @ wh.T, dc * f, x.T @ da, prev_h.T @ da, da.sum(axis=0)


# ------------------------------------------------------------------ temporal layers
def temporal_affine_forward(x, w, b):
    out = x @ w + b
    return out, (x, w)


def temporal_affine_backward(dout, cache):
    x, w = cache
    return dout @ w.T, np.einsum("ntd,ntm->dm", x, dout), dout.sum(axis=(0, 1))


def temporal_softmax_loss(x, y, mask):
    """Sum over the masked-in steps of -log softmax(x)[y], divided by N; and dx."""
    n, t, v = x.shape
    flat, targets, keep = x.reshape(-1, v), y.reshape(-1), mask.reshape(-1)
    shifted = flat - flat.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = -(keep * log_probs[np.arange(len(targets)), targets]).sum() / n
    dx = np.exp(log_probs)
    dx[np.arange(len(targets)), targets] -= 1
    dx *= keep[:, None] / n
    return loss, dx.reshape(x.shape)
