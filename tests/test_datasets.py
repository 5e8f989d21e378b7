"""make_shape_scenes draws what its captions say; parse_shape_caption reads them back."""

import numpy as np
import pytest

from toolkit.datasets import COLOURS, make_shape_scenes, parse_shape_caption, score_shape_captions


def test_images_captions_and_attributes_agree():
    images, captions, attributes = make_shape_scenes(300, n_captions=3, either_order=True, random_state=0)
    assert images.shape == (300, 3, 32, 32) and images.dtype == np.float32
    assert 0 <= images.min() and images.max() <= 1
    assert captions.shape == (300, 3) and set(attributes["n_shapes"]) == {1, 2}
    for k in range(3):  # every caption of every scene states that scene
        assert score_shape_captions(captions[:, k], attributes)["all"].all()
    two = attributes[attributes["n_shapes"] == 2]
    left = two["relation"] == "left of"
    assert (two.loc[left, "x1"] < two.loc[left, "x2"]).all() and (two.loc[~left, "y1"] < two.loc[~left, "y2"]).all()
    assert set(two["relation"]) == {"left of", "above"}
    for (_, row), image in zip(attributes.iterrows(), images):  # the stated colour is drawn at the stated centre
        y, x = int(row["y1"]), int(row["x1"])
        np.testing.assert_allclose(image[:, y, x], COLOURS[row["colour1"]], atol=0.1)


def test_same_seed_same_scenes_and_one_caption_per_image_by_default():
    first = make_shape_scenes(20, image_size=24, max_shapes=1, random_state=3)
    second = make_shape_scenes(20, image_size=24, max_shapes=1, random_state=3)
    np.testing.assert_array_equal(first[0], second[0])
    assert first[1].shape == (20,) and list(first[1]) == list(second[1])
    assert (first[2]["n_shapes"] == 1).all() and first[0].shape[-1] == 24


def test_parse_reads_synonyms_and_either_order():
    parsed = parse_shape_caption("A big red disc, to the left of a little blue box.")
    assert parsed == {
        "shape1": "circle",
        "colour1": "red",
        "size1": "large",
        "relation": "left of",
        "shape2": "square",
        "colour2": "blue",
        "size2": "small",
    }
    assert (
        parse_shape_caption("a green triangle")["size1"] is None
        and parse_shape_caption("a green triangle")["relation"] is None
    )
    _, _, attributes = make_shape_scenes(50, max_shapes=2, random_state=1)
    row = attributes[attributes["n_shapes"] == 2].iloc[:1]
    said = lambda k: f"a {row[f'size{k}'].item()} {row[f'colour{k}'].item()} {row[f'shape{k}'].item()}"  # noqa: E731
    inverse = {"left of": "right of", "above": "below"}[row["relation"].item()]
    assert score_shape_captions([f"{said(2)} {inverse} {said(1)}"], row)["all"].item()  # the other way round
    wrong = score_shape_captions([f"{said(1)} {inverse} {said(2)}"], row).iloc[0]
    assert wrong[["shape", "colour", "size"]].all() and not wrong["relation"] and not wrong["all"]


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="max_shapes must be 1 or 2"):
        make_shape_scenes(5, max_shapes=3)
    with pytest.raises(ValueError, match="image_size must be an int >= 16"):
        make_shape_scenes(5, image_size=8)
    with pytest.raises(ValueError, match="3 captions for 2 scenes"):
        score_shape_captions(["a", "b", "c"], make_shape_scenes(2, random_state=0)[2])
