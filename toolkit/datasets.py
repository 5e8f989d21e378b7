"""Data sets no package ships, generated on the spot (no downloads): captioned scenes of shapes.

``make_shape_scenes`` draws one or two coloured shapes per image and describes each image
in words from a small grammar with synonyms ("a big red disc to the left of a small blue
square"); ``parse_shape_caption`` reads such a caption back into attributes, and
``score_shape_captions`` checks captions (a model's, say) against the true scenes,
attribute by attribute.
"""

from __future__ import annotations

from numbers import Integral

import numpy as np
import pandas as pd
from sklearn.utils import check_random_state

from toolkit._text import tokenize

__all__ = ["make_gaussian_ring", "make_shape_scenes", "parse_shape_caption", "score_shape_captions"]

SHAPES = ("circle", "square", "triangle")
COLOURS = {"red": (0.85, 0.12, 0.1), "green": (0.1, 0.65, 0.15), "blue": (0.12, 0.25, 0.9)}
SIZES = {"small": 0.11, "large": 0.2}  # radius as a share of the image side
# relation of the first-mentioned shape to the second, and the same fact said the other way round
INVERSE = {"left of": "right of", "right of": "left of", "above": "below", "below": "above"}

# The grammar's words: canonical attribute -> the words that say it.
SHAPE_WORDS = {"circle": ("circle", "disc"), "square": ("square", "box"), "triangle": ("triangle",)}
SIZE_WORDS = {"small": ("small", "little"), "large": ("large", "big")}
COLOUR_WORDS = {colour: (colour,) for colour in COLOURS}
RELATION_WORDS = {
    "left of": ("to the left of", "left of"),
    "right of": ("to the right of", "right of"),
    "above": ("above", "over"),
    "below": ("below", "under"),
}
ATTRIBUTES = ("shape", "colour", "size")


def _draw_mask(kind: str, cx: float, cy: float, radius: float, y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Boolean mask of one shape centred at (cx, cy) on the pixel centres (y, x); y grows downwards."""
    if kind == "circle":
        return (x - cx) ** 2 + (y - cy) ** 2 <= radius**2
    if kind == "square":
        half = 0.85 * radius
        return (np.abs(x - cx) <= half) & (np.abs(y - cy) <= half)
    top = cy - radius  # an upward triangle: apex at the top, base of width 2 r at the bottom
    return (y >= top) & (y <= cy + radius) & (np.abs(x - cx) <= (y - top) / 2)


def _pick(options: tuple, rng: np.random.RandomState):
    return options[rng.randint(len(options))]


def _describe(obj: dict, rng: np.random.RandomState) -> str:
    return f"a {_pick(SIZE_WORDS[obj['size']], rng)} {obj['colour']} {_pick(SHAPE_WORDS[obj['shape']], rng)}"


def _caption(objects: list[dict], relation: str | None, either_order: bool, rng: np.random.RandomState) -> str:
    """One caption of a scene: its shape, or its two shapes with the relation (the left or
    upper one first, or with ``either_order`` either one first)."""
    if relation is None:
        return _describe(objects[0], rng)
    first, second, said = objects[0], objects[1], relation
    if either_order and rng.rand() < 0.5:  # mention the second shape first: the relation turns round
        first, second, said = second, first, INVERSE[relation]
    return f"{_describe(first, rng)} {_pick(RELATION_WORDS[said], rng)} {_describe(second, rng)}"


def make_shape_scenes(
    n_samples: int = 1000,
    *,
    image_size: int = 32,
    max_shapes: int = 2,
    n_captions: int = 1,
    either_order: bool = False,
    noise: float = 0.02,
    random_state=None,
) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """Images of 1 to ``max_shapes`` coloured shapes on a light background, with captions.

    Each shape is a circle, square or triangle; red, green or blue; small or large. Two
    shapes lie in opposite halves of the image, side by side or one above the other, so
    that their relation ("left of", "right of", "above", "below") is never ambiguous. Each
    caption comes from a small grammar with synonyms (disc for circle, box for square, big
    for large, little for small, over for above, ...) and mentions the left (or upper) of two
    shapes first: "a big red disc to the left of a small blue square". With
    ``either_order`` it mentions either first, "a little blue box right of a large red
    circle" describing the same scene.

    Parameters
    ----------
    n_samples : int, default=1000
    image_size : int, default=32
        Images are (3, image_size, image_size), at least 16 pixels a side.
    max_shapes : {1, 2}, default=2
        Each image holds 1 to ``max_shapes`` shapes, equally often.
    n_captions : int, default=1
        Captions per image, drawn independently from the grammar.
    either_order : bool, default=False
        Whether a caption may mention the right (or lower) shape first, with the relation
        turned round ("right of", "below").
    noise : float, default=0.02
        Standard deviation of the Gaussian pixel noise (values are clipped to [0, 1]).
    random_state : int, RandomState instance or None

    Returns
    -------
    images : ndarray of shape (n_samples, 3, image_size, image_size), float32 in [0, 1]
    captions : ndarray of str, shape (n_samples,), or (n_samples, n_captions) when n_captions > 1
    attributes : DataFrame
        One row per image: ``n_shapes``; ``shape1``, ``colour1``, ``size1``, ``x1``, ``y1``
        (the left or upper shape of two) and the same for shape 2 (None with one shape);
        ``relation`` of shape 1 to shape 2 ("left of" or "above"; None with one shape).
    """
    for name, value, low in (
        ("n_samples", n_samples, 1),
        ("image_size", image_size, 16),
        ("n_captions", n_captions, 1),
    ):
        if not isinstance(value, Integral) or isinstance(value, bool) or value < low:
            raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    if max_shapes not in (1, 2):
        raise ValueError(f"max_shapes must be 1 or 2, got {max_shapes!r}")
    if not 0 <= noise < 1:
        raise ValueError(f"noise must be in [0, 1), got {noise!r}")
    rng = check_random_state(random_state)
    size = int(image_size)
    images = np.full((n_samples, 3, size, size), 0.95, dtype=np.float32)
    y, x = np.mgrid[0:size, 0:size] + 0.5  # pixel centres
    colours, sizes = list(COLOURS), list(SIZES)
    rows, captions = [], []
    for index in range(n_samples):
        n_shapes = rng.randint(1, max_shapes + 1)
        objects = [
            {"shape": _pick(SHAPES, rng), "colour": _pick(colours, rng), "size": _pick(sizes, rng)}
            for _ in range(n_shapes)
        ]
        radii = [SIZES[o["size"]] * size for o in objects]
        relation = None
        if n_shapes == 1:
            r = radii[0]
            objects[0]["x"], objects[0]["y"] = rng.uniform(r + 1, size - r - 1, size=2)
        else:
            horizontal = rng.rand() < 0.5
            relation = "left of" if horizontal else "above"
            for k, (obj, r) in enumerate(zip(objects, radii)):
                # the first shape in the first half along the axis, the second in the other half
                along = rng.uniform(r + 1, size / 2 - r - 1) + k * size / 2
                across = rng.uniform(r + 1, size - r - 1)
                obj["x"], obj["y"] = (along, across) if horizontal else (across, along)
        for obj, r in zip(objects, radii):
            mask = _draw_mask(obj["shape"], obj["x"], obj["y"], r, y, x)
            images[index][:, mask] = np.asarray(COLOURS[obj["colour"]], dtype=np.float32)[:, None]
        captions.append([_caption(objects, relation, either_order, rng) for _ in range(n_captions)])
        row = {"n_shapes": n_shapes, "relation": relation}
        for k in (1, 2):
            obj = objects[k - 1] if k <= n_shapes else {}
            row |= {f"{a}{k}": obj.get(a) for a in (*ATTRIBUTES, "x", "y")}
        rows.append(row)
    if noise > 0:  # drawn in float32 by a Generator seeded from random_state: 4x faster than RandomState's
        images += noise * np.random.default_rng(rng.randint(2**31)).standard_normal(images.shape, dtype=np.float32)
        np.clip(images, 0, 1, out=images)
    captions = np.asarray(captions, dtype=object)
    columns = ["n_shapes"] + [f"{a}{k}" for k in (1, 2) for a in (*ATTRIBUTES, "x", "y")] + ["relation"]
    return images, captions[:, 0] if n_captions == 1 else captions, pd.DataFrame(rows, columns=columns)


def make_gaussian_ring(
    n_samples: int = 1000, *, n_components: int = 8, radius: float = 2.0, std: float = 0.1, random_state=None
) -> tuple[np.ndarray, np.ndarray]:
    """A mixture of ``n_components`` equal isotropic Gaussians evenly spaced on a circle: the
    2-D benchmark of generative models whose true density is known (a Gaussian mixture).

    Parameters
    ----------
    n_samples : int, default=1000
    n_components : int, default=8
    radius : float, default=2.0
    std : float, default=0.1
        Standard deviation of each component along each axis.
    random_state : int, RandomState instance or None

    Returns
    -------
    X : ndarray of shape (n_samples, 2)
    component : ndarray of int of shape (n_samples,)
    """
    if not isinstance(n_samples, Integral) or n_samples < 1:
        raise ValueError(f"n_samples must be an int >= 1, got {n_samples!r}")
    rng = check_random_state(random_state)
    component = rng.randint(n_components, size=n_samples)
    angle = 2 * np.pi * component / n_components
    centres = radius * np.c_[np.cos(angle), np.sin(angle)]
    return centres + std * rng.standard_normal((n_samples, 2)), component


def _lookup(words: dict[str, tuple[str, ...]]) -> dict[str, str]:
    return {word: canonical for canonical, said in words.items() for word in said}


_SHAPE, _SIZE, _COLOUR = _lookup(SHAPE_WORDS), _lookup(SIZE_WORDS), _lookup(COLOUR_WORDS)
# Relation phrases as token tuples, longest first so that "to the left of" wins over "left of".
_RELATIONS = sorted(
    ((tuple(phrase.split()), relation) for relation, phrases in RELATION_WORDS.items() for phrase in phrases),
    key=lambda pair: -len(pair[0]),
)


def _parse_object(tokens: list[str]) -> dict:
    obj = {"shape": None, "colour": None, "size": None}
    for token in tokens:
        for attribute, table in (("shape", _SHAPE), ("colour", _COLOUR), ("size", _SIZE)):
            if token in table and obj[attribute] is None:
                obj[attribute] = table[token]
    return obj


def parse_shape_caption(caption: str) -> dict:
    """The attributes a caption states, in the order it mentions the shapes.

    Parameters
    ----------
    caption : str
        Words of ``make_shape_scenes``' grammar (synonyms are mapped to their attribute);
        words outside it are ignored.

    Returns
    -------
    dict
        ``shape1``, ``colour1``, ``size1``, ``relation`` (of the first-mentioned shape to
        the second), ``shape2``, ``colour2``, ``size2``: canonical values, or None for what
        the caption does not say.
    """
    tokens = tokenize(caption)
    relation, split = None, None
    for start in range(len(tokens)):
        for phrase, said in _RELATIONS:
            if tuple(tokens[start : start + len(phrase)]) == phrase:
                relation, split = said, (start, start + len(phrase))
                break
        if relation is not None:
            break
    first = _parse_object(tokens if split is None else tokens[: split[0]])
    second = _parse_object([] if split is None else tokens[split[1] :])
    return {f"{a}1": first[a] for a in ATTRIBUTES} | {"relation": relation} | {f"{a}2": second[a] for a in ATTRIBUTES}


def score_shape_captions(captions, attributes: pd.DataFrame) -> pd.DataFrame:
    """Which attributes each caption gets right about its scene.

    A two-shape caption may mention the shapes in either order; it is matched to the scene
    the way round that gets more right, and its relation is read accordingly ("a disc left
    of a box" and "a box right of a disc" state the same scene).

    Parameters
    ----------
    captions : sequence of str, one per row of ``attributes``
    attributes : DataFrame
        As ``make_shape_scenes`` returns it.

    Returns
    -------
    DataFrame
        One row per caption with boolean columns ``shape``, ``colour``, ``size`` (of every
        shape in the scene), ``relation`` (True for one-shape scenes whose caption states
        none; otherwise the stated relation is the true one), ``count`` (as many shapes
        mentioned as there are) and ``all`` (every one of those).
    """
    captions = list(captions)
    if len(captions) != len(attributes):
        raise ValueError(f"{len(captions)} captions for {len(attributes)} scenes")
    rows = []
    for caption, (_, truth) in zip(captions, attributes.iterrows()):
        parsed = parse_shape_caption(caption)
        mentioned = sum(parsed[f"shape{k}"] is not None for k in (1, 2))
        n = int(truth["n_shapes"])
        orders = [(1, 2), (2, 1)] if n == 2 else [(1,)]
        best = None
        for order in orders:
            right = {a: all(parsed[f"{a}{k}"] == truth[f"{a}{t}"] for k, t in enumerate(order, 1)) for a in ATTRIBUTES}
            if n == 2:
                said = parsed["relation"]
                right["relation"] = said == (truth["relation"] if order == (1, 2) else INVERSE[truth["relation"]])
            else:
                right["relation"] = parsed["relation"] is None
            if best is None or sum(right.values()) > sum(best.values()):
                best = right
        best["count"] = mentioned == n
        best["all"] = all(best.values())
        rows.append(best)
    return pd.DataFrame(rows, columns=[*ATTRIBUTES, "relation", "count", "all"])
