"""Neural-network estimators with scikit-learn's interface, trained with PyTorch."""

from toolkit.neural_network._caption import CaptionGenerator
from toolkit.neural_network._cnn import CNNClassifier, CNNRegressor
from toolkit.neural_network._mlp import MLPClassifier, MLPRegressor
from toolkit.neural_network._rnn import RNNClassifier, RNNRegressor

__all__ = [
    "CaptionGenerator",
    "CNNClassifier",
    "CNNRegressor",
    "MLPClassifier",
    "MLPRegressor",
    "RNNClassifier",
    "RNNRegressor",
]
