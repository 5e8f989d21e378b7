"""Image captioning on generated shape scenes: a CNN encoder and an LSTM decoder, against the caption of the nearest
training image."""

from pathlib import Path

import numpy as np
import sacrebleu
from sklearn.neighbors import NearestNeighbors

from toolkit.datasets import make_shape_scenes, score_shape_captions
from toolkit.jobs import Baseline, Job
from toolkit.neural_network import CaptionGenerator

SECONDS = {"quick": 49, "full": 146}
FLOORS = {1: 0.97, 2: 0.90}  # every attribute right, on one-shape and on two-shape scenes


def accuracy_by_count(captions, attributes) -> dict[int, float]:
    """Share of scenes whose caption gets every attribute (and the relation) right, by number of shapes."""
    right = score_shape_captions(captions, attributes)["all"]
    return {n: float(right[attributes["n_shapes"] == n].mean()) for n in (1, 2)}


def run(full: bool = False) -> Job:
    X_train, captions_train, _ = make_shape_scenes(60_000 if full else 24_000, random_state=0)
    X_test, references, attributes = make_shape_scenes(1000, n_captions=3, random_state=1)
    # The defaults' encoder and cosine schedule, over whole epochs of the two-shape scenes.
    model = CaptionGenerator(batch_size=64, max_epochs=8 if full else 6, random_state=0, verbose=True)
    model.fit(X_train, captions_train)
    generated = model.predict(X_test)
    repeated, flat = np.repeat(X_test, 3, axis=0), references.reshape(-1)  # three references per image
    bleu = model.score(repeated, flat)
    # The baseline: each test image gets the caption of its nearest training image in the encoder's feature space.
    neighbours = NearestNeighbors(n_neighbors=1).fit(model.encode(X_train))
    nearest = captions_train[neighbours.kneighbors(model.encode(X_test), return_distance=False)[:, 0]]
    # The scenes' captions are lower-case words already: the tokenisation CaptionGenerator.score applies.
    nearest_bleu = sacrebleu.corpus_bleu(list(nearest), [list(references[:, k]) for k in range(3)]).score / 100
    ours, theirs = accuracy_by_count(generated, attributes), accuracy_by_count(nearest, attributes)
    details = (
        f"every attribute right: one shape {ours[1]:.3f}, two shapes {ours[2]:.3f} "
        f"(nearest neighbour {theirs[1]:.3f}, {theirs[2]:.3f}); {len(X_train):,} training scenes, "
        f"{model.n_iter_} epochs, vocabulary of {len(model.vocabulary_)}"
    )

    def plot(folder: Path) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(4, 4, figsize=(12, 12.5))
        for ax, image, caption in zip(axes.ravel(), X_test, generated):
            ax.imshow(image.transpose(1, 2, 0))
            ax.set_title(caption, fontsize=7, wrap=True)
            ax.axis("off")
        fig.suptitle(f"Generated captions of held-out scenes (BLEU-4 {bleu:.3f})")
        fig.tight_layout()
        fig.savefig(folder / "captions.png", dpi=80)
        plt.close(fig)

    return Job(
        model,
        X_test[:200],
        "bleu4",
        bleu,
        Baseline("nearest training image's caption", nearest_bleu),
        floor=0.5,
        details=details,
        plot=plot,
        requirements={
            f"{n}-shape attribute accuracy {ours[n]:.3f} >= {FLOORS[n]}": ours[n] >= FLOORS[n] for n in (1, 2)
        },
    )
