"""Plain ``torch.nn`` modules and layer factories. No scikit-learn, pandas or onnx here."""

from toolkit.nn.cnn import ConvNet
from toolkit.nn.heads import AffineOutput, ClassifierOutput, InputReshape
from toolkit.nn.layers import ACTIVATIONS, init_weights, make_activation, make_norm
from toolkit.nn.mlp import DenseNet
from toolkit.nn.rnn import RecurrentNet
from toolkit.nn.summary import summarize

__all__ = [
    "ACTIVATIONS",
    "AffineOutput",
    "ClassifierOutput",
    "ConvNet",
    "DenseNet",
    "InputReshape",
    "RecurrentNet",
    "init_weights",
    "make_activation",
    "make_norm",
    "summarize",
]
