"""The captioner's torch pieces against CS231n's equations (assignment 3), written out in numpy."""

import numpy as np
import pytest
import torch

from toolkit.nn.caption import CaptionDecoder, masked_temporal_cross_entropy
from toolkit.nn.layers import count_parameters


def rnn_step(x, h, Wx, Wh, b):
    """CS231n's vanilla RNN step: h' = tanh(x Wx + h Wh + b)."""
    return np.tanh(x @ Wx + h @ Wh + b)


def lstm_step(x, h, c, Wx, Wh, b):
    """CS231n's LSTM step: a = x Wx + h Wh + b split into i, f, o, g; c' = f * c + i * g; h' = o * tanh(c')."""
    a = x @ Wx + h @ Wh + b
    H = h.shape[1]
    sigmoid = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    i, f, o, g = sigmoid(a[:, :H]), sigmoid(a[:, H : 2 * H]), sigmoid(a[:, 2 * H : 3 * H]), np.tanh(a[:, 3 * H :])
    c_next = f * c + i * g
    return o * np.tanh(c_next), c_next


def notes_weights(rnn: torch.nn.RNNBase, lstm: bool):
    """(Wx, Wh, b) in CS231n's layout from torch's: transposed, biases summed, and for an LSTM
    the gate blocks reordered from torch's i, f, g, o to CS231n's i, f, o, g."""
    Wx, Wh = rnn.weight_ih_l0.detach().double().numpy().T, rnn.weight_hh_l0.detach().double().numpy().T
    b = (rnn.bias_ih_l0 + rnn.bias_hh_l0).detach().double().numpy()
    if lstm:
        H = Wh.shape[0]
        order = np.r_[0 : 2 * H, 3 * H : 4 * H, 2 * H : 3 * H]  # i, f, o, g
        Wx, Wh, b = Wx[:, order], Wh[:, order], b[order]
    return Wx, Wh, b


@pytest.mark.parametrize("cell", ["rnn", "lstm"])
def test_one_step_of_our_cell_is_the_notes_step(cell):
    torch.manual_seed(0)
    decoder = CaptionDecoder(n_features=5, vocabulary_size=11, embedding_dim=4, hidden_size=6, cell=cell).double()
    for param in decoder.rnn.parameters():  # nonzero biases, so that their sum matters
        torch.nn.init.normal_(param, std=0.5)
    features, words = torch.randn(3, 5, dtype=torch.float64), torch.tensor([1, 4, 7])
    state = decoder.initial_state(features)
    _, (h_next, *rest) = decoder.step(words, state)
    x = decoder.embedding(words).detach().numpy()
    Wx, Wh, b = notes_weights(decoder.rnn, cell == "lstm")
    h0 = state[0].detach().numpy()
    np.testing.assert_allclose(h0, features.numpy() @ decoder.initial_hidden.weight.detach().numpy().T, atol=1e-12)
    if cell == "rnn":
        np.testing.assert_allclose(h_next.detach().numpy(), rnn_step(x, h0, Wx, Wh, b), atol=1e-6)
    else:
        h_want, c_want = lstm_step(x, h0, state[1].detach().numpy(), Wx, Wh, b)
        np.testing.assert_allclose(h_next.detach().numpy(), h_want, atol=1e-6)
        np.testing.assert_allclose(rest[0].detach().numpy(), c_want, atol=1e-6)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_gradients_of_a_step_and_of_the_sequence(cell):
    torch.manual_seed(1)
    decoder = CaptionDecoder(n_features=3, vocabulary_size=7, embedding_dim=4, hidden_size=5, cell=cell).double()
    features = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    words = torch.tensor([[1, 5, 6, 2], [1, 3, 2, 0]])

    def sequence(features):
        return decoder(decoder.initial_state(features), words)

    def one_step(features):
        return decoder.step(words[:, 1], decoder.initial_state(features))[0]

    assert torch.autograd.gradcheck(sequence, (features,))
    assert torch.autograd.gradcheck(one_step, (features,))


def test_masked_loss_ignores_null_positions_in_value_and_gradient():
    torch.manual_seed(2)
    scores = torch.randn(3, 6, 9, dtype=torch.float64, requires_grad=True)
    targets = torch.tensor([[4, 5, 2, 0, 0, 0], [3, 2, 0, 0, 0, 0], [7, 8, 6, 5, 2, 0]])
    loss = masked_temporal_cross_entropy(scores, targets)
    log_p = torch.log_softmax(scores, dim=2)
    unpadded = -sum(log_p[n, t, targets[n, t]] for n in range(3) for t in range(6) if targets[n, t] != 0) / 3
    torch.testing.assert_close(loss, unpadded)
    loss.backward()
    padded = targets == 0
    assert torch.all(scores.grad[padded] == 0) and torch.all(scores.grad[~padded].abs().sum(dim=1) > 0)
    longer = torch.cat([scores.detach(), torch.randn(3, 4, 9, dtype=torch.float64)], dim=1)  # more padding: same loss
    torch.testing.assert_close(
        masked_temporal_cross_entropy(longer, torch.cat([targets, torch.zeros(3, 4, dtype=torch.long)], dim=1)), loss
    )


def test_the_null_word_embeds_to_zero_and_learns_nothing():
    decoder = CaptionDecoder(n_features=3, vocabulary_size=7, embedding_dim=4, hidden_size=5, cell="gru")
    words = torch.tensor([[1, 4, 2, 0, 0]])
    scores = decoder(decoder.initial_state(torch.randn(1, 3)), words)
    masked_temporal_cross_entropy(scores[:, :-1], words[:, 1:]).backward()
    assert torch.all(decoder.embedding.weight[0] == 0) and torch.all(decoder.embedding.weight.grad[0] == 0)


def test_the_notes_initial_state_projects_h0_and_starts_c0_at_zero():
    """CS231n's captioning LSTM: h0 = features W_proj + b_proj, c0 = 0 (no parameters for c0)."""
    torch.manual_seed(0)
    learned = CaptionDecoder(n_features=5, vocabulary_size=11, embedding_dim=4, hidden_size=6, cell="lstm")
    notes = CaptionDecoder(
        n_features=5, vocabulary_size=11, embedding_dim=4, hidden_size=6, cell="lstm", initial_cell="zero"
    )
    assert count_parameters(learned) - count_parameters(notes) == 5 * 6 + 6  # c0's projection
    features = torch.randn(3, 5)
    h0, c0 = notes.initial_state(features)
    proj = notes.initial_hidden
    torch.testing.assert_close(h0, features @ proj.weight.T + proj.bias)
    assert torch.equal(c0, torch.zeros(3, 6))
    assert (learned.initial_state(features)[1] != 0).any()
    gru = CaptionDecoder(5, 11, 4, 6, cell="gru", initial_cell="zero")
    assert len(gru.initial_state(features)) == 1
    with pytest.raises(ValueError, match="initial_cell"):
        CaptionDecoder(5, 11, 4, 6, initial_cell="random")
