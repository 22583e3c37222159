import json

import numpy as np
import pytest

from evospikenet.data.multimodal import (
    AAMI_DESCRIPTIONS,
    BEAT_CAPTIONS,
    DIGIT_CAPTIONS,
    DIGIT_WORDS,
    beat_caption,
    default_vocab,
    digit_caption,
    digits_split,
    load_image_text_pairs,
    named_classes,
    named_digits,
    tokenize_words,
)


def test_digits_split_fixed_stratified_360():
    a, b = digits_split(0), digits_split(0)
    xte, yte = a["test"]
    assert xte.shape == (360, 1, 8, 8) and len(a["train"][1]) == 1437
    np.testing.assert_array_equal(yte, b["test"][1])
    np.testing.assert_array_equal(xte, b["test"][0])
    assert set(np.bincount(yte)) <= {35, 36, 37}  # stratified: ~36 of each digit
    assert xte.min() >= 0 and xte.max() <= 16
    assert not np.array_equal(digits_split(1)["test"][1], yte)


@pytest.mark.parametrize("label", range(10))
def test_every_digit_caption_names_exactly_its_digit(label):
    for c in DIGIT_CAPTIONS:
        for w in (DIGIT_WORDS[label], str(label)):
            assert named_digits(c.format(w=w, n=w)) == {label}
    q, c = digit_caption(label, np.random.default_rng(label))
    assert named_digits(c) == {label} and named_digits(q) == set()


@pytest.mark.parametrize("label", range(5))
def test_every_beat_caption_names_exactly_its_class(label):
    for c in BEAT_CAPTIONS:
        assert named_classes(c.format(d=AAMI_DESCRIPTIONS[label])) == {label}
    q, c = beat_caption(label, np.random.default_rng(0))
    assert named_classes(c) == {label} and named_classes(q) == set()


def test_scoring_rejects_ambiguous_and_wrong_answers():
    assert named_digits("a 3 or an eight") == {3, 8}
    assert named_digits("the digit") == set()
    assert named_classes("a supraventricular ectopic beat") == {1}  # not V
    assert named_classes("a normal or fusion beat") == {0, 3}


def test_vocab_covers_every_template_word():
    vocab = set(default_vocab())
    texts = [
        c.format(w=w, n=str(i), d=d)
        for c in (*DIGIT_CAPTIONS, *BEAT_CAPTIONS)
        for i, w in enumerate(DIGIT_WORDS)
        for d in AAMI_DESCRIPTIONS
    ]
    assert {w for t in texts for w in tokenize_words(t)} <= vocab


def test_image_text_folder_and_jsonl(tmp_path):
    from PIL import Image

    for i, v in enumerate((0, 255)):
        Image.fromarray(np.full((16, 16), v, dtype=np.uint8)).save(tmp_path / f"im{i}.png")
        (tmp_path / f"im{i}.txt").write_text(f"caption {i}")
    x, caps = load_image_text_pairs(tmp_path, size=8)
    assert x.shape == (2, 1, 8, 8) and caps == ["caption 0", "caption 1"]
    np.testing.assert_allclose(x[0], 0.0)
    np.testing.assert_allclose(x[1], 16.0)
    jl = tmp_path / "pairs.jsonl"
    jl.write_text(json.dumps({"image": "im1.png", "text": "white"}) + "\n")
    x, caps = load_image_text_pairs(jl)
    assert caps == ["white"] and x.shape == (1, 1, 8, 8)
    jl.write_text(json.dumps({"image": "missing.png", "text": "x"}) + "\n")
    with pytest.raises(FileNotFoundError, match="missing.png"):
        load_image_text_pairs(jl)
    jl.write_text(json.dumps({"text": "x"}) + "\n")
    with pytest.raises(ValueError, match="'image' and 'text'"):
        load_image_text_pairs(jl)
    with pytest.raises(FileNotFoundError, match="neither"):
        load_image_text_pairs(tmp_path / "nope")
