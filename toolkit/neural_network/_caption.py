"""``CaptionGenerator``: an image captioner (CNN encoder, RNN / LSTM / GRU decoder) as an estimator."""

from __future__ import annotations

import copy
import warnings
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted
from torch import nn

from toolkit._export_spec import InferenceSpec
from toolkit._input_checks import check_positive_ints, image_net_shape
from toolkit._net_estimator import BaseNeuralNet, StepBudget, SupervisedNet
from toolkit._param_validation import Interval, StrOptions
from toolkit._text import tokenize
from toolkit._training import inference_batches
from toolkit.neural_network._caption_decoding import beam_search, decode, greedy, sampling
from toolkit.neural_network._caption_export import caption_specs
from toolkit.neural_network._caption_vocabulary import (
    NULL_ID,
    build_vocabulary,
    caption_words,
    encode_captions,
    render,
)
from toolkit.nn.caption import CaptionDecoder, CaptionNet, masked_temporal_cross_entropy
from toolkit.nn.cnn import HEADS, ConvNet
from toolkit.nn.rnn import CELLS


class CaptionGenerator(StepBudget, SupervisedNet):
    """Image captioner: a CNN encoder (or given feature rows) and a recurrent decoder.

    CS231n's captioning net (assignment 3): image features -> the decoder's initial hidden state (and
    cell state) through a learned affine projection; words -> a learned embedding; a
    vanilla RNN, an LSTM or a GRU over time; a temporal affine layer to vocabulary scores
    at every step; trained by teacher forcing on a temporal softmax loss that ignores
    <NULL> padding. Captions are decoded word by word from <START> until <END>: greedily
    (``predict``), by beam search (``beam_width`` > 1) or by sampling (``sample``).

    Captions are tokenised into lower-case words, split on whitespace and punctuation
    ("A big, red disc!" -> a / big / red / disc). The vocabulary (``vocabulary_``, index ->
    word; ``word_index_``, word -> index) holds <NULL>, <START>, <END>, <UNK> (ids 0-3),
    then every word seen ``min_count`` times or more in fit, most frequent first; rarer
    words read as <UNK>. Several captions of one image are repeated rows of X.

    Fitted attributes: ``vocabulary_``, ``word_index_``, ``module_``, ``history_``
    (valid_metric: next-word accuracy under teacher forcing), ``n_iter_``,
    ``n_features_in_``.

    Parameters
    ----------
    encoder : {"cnn", "features"}, default="cnn"
        "cnn": X holds images (N, C, H, W), (N, H, W), or flat rows with ``image_shape``,
        read by a conv net; "features": X holds feature rows (N, D), projected as they are.
    channels : sequence of int, default=(16, 32)
        Output channels of the CNN encoder's blocks [conv -> norm -> relu -> pool].
    kernel_size : int or sequence of int, default=3
    norm : {"batch", "layer", "group", "instance"} or None, default="batch"
    pool : {"max", "avg"} or None, default="max"
    head : {"gap", "flatten"}, default="flatten"
        What the encoder's last layer reads: each channel's global average, or every
        position of the last maps (which keeps where each shape is).
    dense : sequence of int, default=()
        Dense layers of the encoder before its output layer.
    feature_dim : int, default=128
        Width of the encoder's output (with ``encoder="cnn"``).
    image_shape : (H, W) or (C, H, W), optional
        Shape of one image when X holds flat rows.
    cell : {"rnn", "lstm", "gru"}, default="lstm"
    embedding_dim : int, default=64
    hidden_size : int, default=128
    initial_cell : {"learned", "zero"}, default="learned"
        An LSTM's initial cell state c0: an affine map of the features as h0 is, or zero (CS231n's
        captioning LSTM, h0 = features W_proj + b and c0 = 0). Other cells have no c0.
    max_length : int, default=16
        Tokens per caption, its <END> included: decoding stops after ``max_length`` steps,
        and training captions of more than ``max_length - 1`` words are cut to that length
        (with a warning saying how many were).
    min_count : int, default=1
    beam_width : int, default=1
        1 decodes greedily; more keeps that many hypotheses per image and returns the one
        with the best length-normalised log-probability (sum of the log-probabilities of
        its tokens, <END> included, divided by their number).
    dropout : float, default=0.0
        On the embedded words and on the decoder's states before the temporal affine layer.
    optimizer : {"adam", "adamw", "sgd", "rmsprop"}, default="adam"
        torch's optimizers, with g the gradient plus ``weight_decay`` * w: "sgd" is
        b <- momentum b + g (b = g at the first step), then w <- w - lr (g + momentum b)
        with ``nesterov``, else w <- w - lr b; "rmsprop" is v <- 0.99 v + 0.01 g^2, then
        w <- w - lr g / (sqrt(v) + 1e-8), or with momentum b <- momentum b + g / (sqrt(v) +
        1e-8), w <- w - lr b; "adam" is Adam with betas (0.9, 0.999) and eps 1e-8, its moments
        bias-corrected; "adamw" is Adam on the gradient alone after w <- w (1 - lr weight_decay).
    learning_rate : float, default=1e-3
    momentum : float, default=0.9
        Momentum of "sgd" and "rmsprop" (0: none).
    nesterov : bool, default=False
        Nesterov momentum for "sgd".
    weight_decay : float, default=0.0
        L2 penalty: ``weight_decay`` * w added to the gradient, the gradient of
        0.5 * weight_decay * sum w^2 (decoupled weight decay for "adamw").
    weight_decay_on : {"all", "weights"}, default="all"
        The parameters ``weight_decay`` reaches: all, or the weight matrices and kernels alone
        (tensors of two or more dimensions, not biases nor the norms' scales and shifts), the
        penalty 0.5 * reg * (sum W1^2 + W2^2 + ...) of CS231n's nets and scikit-learn's MLP ``alpha``.
    weight_scale : float or None, default=None
        None keeps the default initialisation (Kaiming-normal weights, zero biases); a float
        draws every weight matrix of the linear, convolutional and recurrent layers from
        N(0, weight_scale^2) with zero biases (the initialisation experiment of pipelines/notes_experiments.py).
    batch_size : int or "auto", default=50
        "auto" is min(200, n_samples). Small batches: more steps from each pass over the
        images, which cost the same per image at any batch size on a CPU.
    max_epochs : int or None, default=None
        The budget in epochs when given; otherwise ``max_steps`` sets it.
    max_steps : int, default=600
        Optimizer steps per fit when ``max_epochs`` is None: a budget that does not shrink
        with the data (12.5 passes over 2,400 images at batch 50).
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the training data (stratified for classifiers),
        stop when its loss has not improved by ``tol`` for ``n_iter_no_change`` epochs (and
        with ``restore_best_weights`` return to the best epoch's weights). Without it, the
        training loss is watched the same way.
    validation_fraction : float, default=0.1
    n_iter_no_change : int or None, default=None
        None trains for the whole budget, the learning rate annealed to 0 by the cosine
        schedule: the loss of small batches is noisy, and a patience rule on it stopped a fit
        at a bad point as often as at a good one. An int restores the rule.
    tol : float, default=1e-4
    lr_schedule : str, (str, dict), callable or None, default="cosine"
        Learning rate per epoch: None keeps ``learning_rate``; "step", "exponential",
        "cosine" or "plateau" (torch's StepLR, ExponentialLR, CosineAnnealingLR over the
        budget's epochs, ReduceLROnPlateau on the watched loss), optionally with options as
        ("step", {"step_size": 10, "gamma": 0.5}); or a callable taking the optimizer and
        returning a torch scheduler. ``history_`` records each epoch's rate.
    max_grad_norm : float or None, default=None
        Clip the gradients' global L2 norm to this before each optimizer step.
    restore_best_weights : bool, default=True
        With ``early_stopping``, end with the weights of the epoch with the lowest
        validation loss (False: the last epoch's).
    callbacks : list of objects or None, default=None
        Objects with any of ``on_train_begin(estimator, history)``,
        ``on_epoch_end(estimator, history)`` and ``on_train_end(estimator, history)``;
        ``history`` is ``history_``, and ``on_epoch_end`` returning True stops training.
        ``history_`` holds one dict per epoch: ``epoch``, ``train_loss`` (the mean over the
        epoch's batches), ``train_metric`` (the score, accuracy for classifiers and R^2 for
        regressors, of up to 1,000 training rows in eval mode after the epoch; NaN for the
        generative nets), ``valid_loss`` and ``valid_metric`` (the held-out split's, NaN
        without ``early_stopping``), ``learning_rate`` and ``duration`` in seconds.
    device : str, default="auto"
        "auto" is CUDA when torch sees a GPU, else "cpu"; or any torch device string.
    distributed : {None, "ddp"}, default=None
        "ddp": data-parallel training with torch's DistributedDataParallel in ``n_procs``
        processes started by torch's elastic launcher (gloo on the CPU, NCCL on CUDA, one GPU
        per process); ``batch_size`` stays the global batch, split evenly across processes,
        and the fitted estimator comes back to this process. Under ``torchrun`` (across
        machines) ``fit`` joins the job instead and trains this rank's shard. A worker that
        fails makes ``fit`` raise ``toolkit.DataParallelError``, the estimator left as it was.
        ``partial_fit`` always trains in this process. See toolkit/_distributed.py.
    n_procs : int, default=2
        Processes of a ``distributed="ddp"`` fit launched from this process.
    random_state : int, RandomState instance or None, default=None
        Seeds weights, shuffling, dropout and the validation split; bit-for-bit on CPU.
    verbose : bool, default=False
        A tqdm bar over epochs showing train and validation loss.
    warm_start : bool, default=False
        Continue from the fitted weights and optimizer state on the next ``fit``.
    """

    _parameter_constraints: dict = {
        **BaseNeuralNet._parameter_constraints,
        **StepBudget._budget_constraints,
        "encoder": [StrOptions({"cnn", "features"})],
        "channels": ["array-like"],
        "kernel_size": [Interval(Integral, 1, None, closed="left"), "array-like"],
        "norm": [StrOptions({"batch", "layer", "group", "instance"}), None],
        "pool": [StrOptions({"max", "avg"}), None],
        "head": [StrOptions(set(HEADS))],
        "dense": ["array-like"],
        "feature_dim": [Interval(Integral, 1, None, closed="left")],
        "image_shape": ["array-like", None],
        "cell": [StrOptions(set(CELLS))],
        "embedding_dim": [Interval(Integral, 1, None, closed="left")],
        "hidden_size": [Interval(Integral, 1, None, closed="left")],
        "initial_cell": [StrOptions({"learned", "zero"})],
        "max_length": [Interval(Integral, 2, None, closed="left")],
        "min_count": [Interval(Integral, 1, None, closed="left")],
        "beam_width": [Interval(Integral, 1, None, closed="left")],
        "dropout": [Interval(Real, 0, 1, closed="left")],
    }

    def __init__(
        self,
        encoder="cnn",
        *,
        channels=(16, 32),
        kernel_size=3,
        norm="batch",
        pool="max",
        head="flatten",
        dense=(),
        feature_dim=128,
        image_shape=None,
        cell="lstm",
        embedding_dim=64,
        hidden_size=128,
        initial_cell="learned",
        max_length=16,
        min_count=1,
        beam_width=1,
        dropout=0.0,
        optimizer="adam",
        learning_rate=1e-3,
        momentum=0.9,
        nesterov=False,
        weight_decay=0.0,
        weight_decay_on="all",
        weight_scale=None,
        batch_size=50,
        max_epochs=None,
        max_steps=600,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=None,
        tol=1e-4,
        lr_schedule="cosine",
        max_grad_norm=None,
        restore_best_weights=True,
        callbacks=None,
        device="auto",
        distributed=None,
        n_procs=2,
        random_state=None,
        verbose=False,
        warm_start=False,
    ):
        self.encoder = encoder
        self.channels = channels
        self.kernel_size = kernel_size
        self.norm = norm
        self.pool = pool
        self.head = head
        self.dense = dense
        self.feature_dim = feature_dim
        self.image_shape = image_shape
        self.cell = cell
        self.embedding_dim = embedding_dim
        self.hidden_size = hidden_size
        self.initial_cell = initial_cell
        self.max_length = max_length
        self.min_count = min_count
        self.beam_width = beam_width
        self.dropout = dropout
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.nesterov = nesterov
        self.weight_decay = weight_decay
        self.weight_decay_on = weight_decay_on
        self.weight_scale = weight_scale
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.max_steps = max_steps
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.lr_schedule = lr_schedule
        self.max_grad_norm = max_grad_norm
        self.restore_best_weights = restore_best_weights
        self.callbacks = callbacks
        self.device = device
        self.distributed = distributed
        self.n_procs = n_procs
        self.random_state = random_state
        self.verbose = verbose
        self.warm_start = warm_start

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        return tags

    # ------------------------------------------------------------------ the net
    def _check_parameters(self) -> None:
        super()._check_parameters()
        check_positive_ints(self.channels, "channels")
        check_positive_ints(self.dense, "dense", allow_empty=True)

    def _net_shape(self, sample_shape: tuple[int, ...]) -> tuple[int, ...]:
        if self.encoder == "cnn":
            return image_net_shape(sample_shape, self.image_shape)
        if len(sample_shape) != 1:
            raise ValueError(
                f'encoder="features" needs feature rows (n_samples, n_features); got samples of shape {sample_shape}'
            )
        return sample_shape

    def _n_outputs(self) -> int:
        return len(self.vocabulary_)

    def _build_net(self, net_shape: tuple[int, ...], n_outputs: int) -> nn.Module:
        if self.encoder == "cnn":
            encoder = ConvNet(
                net_shape,
                self.feature_dim,
                channels=check_positive_ints(self.channels, "channels"),
                kernel_size=self.kernel_size,
                norm=self.norm,
                pool=self.pool,
                head=self.head,
                dense=check_positive_ints(self.dense, "dense", allow_empty=True),
            )
            n_features = self.feature_dim
        else:
            encoder, n_features = nn.Identity(), net_shape[0]
        decoder = CaptionDecoder(
            n_features,
            n_outputs,
            self.embedding_dim,
            self.hidden_size,
            self.cell,
            self.dropout,
            NULL_ID,
            initial_cell=self.initial_cell,
        )
        return CaptionNet(encoder, decoder)

    # ------------------------------------------------------------------ targets
    def _encode_targets(self, y, n_samples: int, *, reset: bool, classes=None) -> np.ndarray:
        """Captions -> (n_samples, max_length + 1) int64 rows [<START>, words, <END>, <NULL>...]."""
        words = caption_words(y, n_samples)
        if reset:
            self.vocabulary_ = build_vocabulary(words, self.min_count)
            self.word_index_ = {w: i for i, w in enumerate(self.vocabulary_)}
        longest = self.max_length - 1
        cut = sum(len(w) > longest for w in words)
        if cut:
            warnings.warn(
                f"{cut} caption(s) have more than max_length - 1 = {longest} words and were cut to that length; "
                "raise max_length to keep them whole",
                UserWarning,
                stacklevel=4,
            )
        return encode_captions(words, self.word_index_, self.max_length)

    def _loss(self, state, tokens: torch.Tensor) -> torch.Tensor:
        scores = self.module_.decoder(state, tokens[:, :-1])  # (N, max_length, V), teacher forced
        return masked_temporal_cross_entropy(scores, tokens[:, 1:], NULL_ID)

    def _metric(self, state, tokens: torch.Tensor) -> float:
        """Next-word accuracy over the non-<NULL> positions, teacher forced."""
        predicted = self.module_.decoder(state, tokens[:, :-1]).argmax(dim=2)
        target = tokens[:, 1:]
        valid = target != NULL_ID
        return float((predicted[valid] == target[valid]).float().mean())

    @torch.no_grad()
    def encode(self, X) -> np.ndarray:
        """The encoder's features of each image (the feature rows themselves with
        ``encoder="features"``): what the decoder's initial state is projected from.

        Returns
        -------
        features : ndarray of shape (n_samples, feature_dim) (or (n_samples, n_features))
        """
        check_is_fitted(self, "module_")
        X = self._check_X(X, reset=False)
        self.module_.eval()
        return np.concatenate(
            [self.module_.encoder(self._to_tensor(X[a:b])).cpu().numpy() for a, b in inference_batches(len(X))]
        )

    # ------------------------------------------------------------------ decoding
    @torch.no_grad()
    def _decode(self, X, choose) -> np.ndarray:
        """Token rows (n, max_length) of each image's caption, word by word with ``choose``
        (see :func:`toolkit.neural_network._caption_decoding.decode`)."""
        check_is_fitted(self, "module_")
        X = self._check_X(X, reset=False)
        self.module_.eval()
        states = (self.module_(self._to_tensor(X[a:b])) for a, b in inference_batches(len(X)))
        return np.concatenate([decode(self.module_.decoder, state, choose, self.max_length) for state in states])

    @torch.no_grad()
    def _beam_search(self, X) -> np.ndarray:
        """Token rows (n, max_length) by beam search, ``beam_width`` hypotheses per image."""
        check_is_fitted(self, "module_")
        X = self._check_X(X, reset=False)
        self.module_.eval()
        tokens = np.full((len(X), self.max_length), NULL_ID, dtype=np.int64)
        for i in range(len(X)):
            best = beam_search(
                self.module_.decoder, self.module_(self._to_tensor(X[i : i + 1])), self.beam_width, self.max_length
            )
            tokens[i, : len(best)] = best
        return tokens

    def predict_tokens(self, X) -> np.ndarray:
        """Token ids of each image's caption: greedy, or by beam search when ``beam_width`` > 1.

        Parameters
        ----------
        X : array-like
            Images or feature rows, in the layout used at fit.

        Returns
        -------
        tokens : ndarray of int64, shape (n_samples, max_length)
            The ids after <START>, its <END> included when produced, then <NULL> (0).
        """
        if self.beam_width > 1:
            return self._beam_search(X)
        return self._decode(X, greedy)

    def predict(self, X) -> np.ndarray:
        """Each image's caption (see :meth:`predict_tokens`), as a string of words.

        Returns
        -------
        captions : ndarray of str (object dtype), shape (n_samples,)
        """
        return render(self.predict_tokens(X), self.vocabulary_)

    def sample(self, X, temperature: float = 1.0, random_state=None) -> np.ndarray:
        """Captions drawn word by word from softmax(scores / ``temperature``).

        Parameters
        ----------
        X : array-like
        temperature : float, default=1.0
            > 0; lower is closer to greedy decoding, higher more varied.
        random_state : int, RandomState instance or None

        Returns
        -------
        captions : ndarray of str (object dtype), shape (n_samples,)
        """
        if not isinstance(temperature, Real) or isinstance(temperature, bool) or not temperature > 0:
            raise ValueError(f"temperature must be a float > 0, got {temperature!r}")
        generator = torch.Generator().manual_seed(int(check_random_state(random_state).randint(np.iinfo(np.int32).max)))
        return render(self._decode(X, sampling(temperature, generator)), self.vocabulary_)

    def score(self, X, y) -> float:
        """Corpus BLEU-4 of the predicted captions (sacrebleu), in [0, 1].

        Rows of X that hold the same image form one prediction whose references are all
        of their captions; captions are compared as tokenised (lower-case words).

        Parameters
        ----------
        X : array-like
        y : sequence of str
            One reference caption per row.
        """
        import sacrebleu

        X_checked = self._check_X(X, reset=False)
        references = np.asarray(y.to_numpy() if hasattr(y, "to_numpy") else y, dtype=object)
        if len(references) != len(X_checked):
            raise ValueError(f"X has {len(X_checked)} rows but y has {len(references)} captions")
        groups: dict[bytes, list[int]] = {}
        for i, row in enumerate(X_checked):
            groups.setdefault(np.ascontiguousarray(row).tobytes(), []).append(i)
        firsts = [rows[0] for rows in groups.values()]
        hypotheses = [" ".join(tokenize(c)) for c in self.predict(X_checked[firsts])]
        n_refs = max(len(rows) for rows in groups.values())
        streams = [
            [" ".join(tokenize(references[rows[k]])) if k < len(rows) else None for rows in groups.values()]
            for k in range(n_refs)
        ]
        return sacrebleu.corpus_bleu(hypotheses, streams).score / 100

    # ------------------------------------------------------------------- export
    def __onnx_spec__(self) -> list[InferenceSpec]:
        """ONE graph, ``model``: the encoder, then a Loop of greedy steps (see
        :mod:`toolkit.neural_network._caption_export`); outputs ``tokens`` (= ``predict_tokens``)
        and ``captions`` (= ``predict``)."""
        check_is_fitted(self, "module_")
        if self.beam_width != 1:
            raise ValueError(
                f"the exported decoder is greedy; export with beam_width=1 (this one has beam_width={self.beam_width})"
            )
        return caption_specs(self, copy.deepcopy(self.module_).cpu().eval())
