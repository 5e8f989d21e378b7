"""
Captioning generated shape scenes: a CNN encoder and an LSTM decoder in one ONNX graph
======================================================================================

:func:`toolkit.datasets.make_shape_scenes` draws small images of one or two shapes with a
caption each ("a big red disc left of a small blue box"). A
:class:`~toolkit.neural_network.CaptionGenerator` (a CNN encoder, an LSTM decoder) learns to
caption them; ``predict`` decodes greedily or by beam search, ``sample`` word by word from the
softmax, and the export is one graph: the encoder, then a ``Loop`` of greedy steps.

600 optimizer steps take about 20 s on 2 cores.
"""

import tempfile
from pathlib import Path

import matplotlib.pyplot as plt

from toolkit.datasets import make_shape_scenes
from toolkit.neural_network import CaptionGenerator
from toolkit.onnx import export, load

X, captions, attributes = make_shape_scenes(3000, random_state=0)  # (3000, 3, 32, 32) images, a caption each
X_new, captions_new, _ = make_shape_scenes(6, random_state=1)
model = CaptionGenerator(random_state=0).fit(X, captions)
print("greedy:", model.predict(X_new[:2]))
print("beam search:", model.set_params(beam_width=3).predict(X_new[:2]))
print("sampled:", model.sample(X_new[:2], temperature=0.8, random_state=0))

fig, axes = plt.subplots(1, 6, figsize=(12, 2.6))
for ax, image, caption in zip(axes, X_new, model.set_params(beam_width=1).predict(X_new)):
    ax.imshow(image.transpose(1, 2, 0))
    ax.set_title("\n".join([" ".join(caption.split()[:4]), " ".join(caption.split()[4:])]), fontsize=7)
    ax.axis("off")
fig.tight_layout()

# %%
# The exported graph gives the same captions by onnxruntime alone.
folder = Path(tempfile.mkdtemp()) / "captioner"
export(model, folder)
print(load(folder).predict(X_new[:2]))
