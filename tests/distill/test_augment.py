"""Rule-based augmentation: what is perturbed, how often, reproducibly, and the data module's labelling."""

import pytest
import torch

from evospikenet.distill import AugmentConfig, augment_texts

TEXTS = [
    "a gripping and heartfelt story about two brothers who never give up ",
    "dull",
    "the acting is wooden and the plot makes no sense at all from start to finish",
]


def test_only_long_texts_get_variants_and_none_repeats():
    out, src = augment_texts(TEXTS, AugmentConfig(copies=3, min_words=5, p_mask=0.3, p_replace=0.2))
    assert set(src) <= {0, 2} and len(out) == len(src) and len(out) >= 4
    assert len(set(out)) == len(out)
    normalised = {" ".join(t.split()) for t in TEXTS}
    assert not normalised & set(out)  # a variant never equals an original, trailing blanks ignored
    for text, i in zip(out, src):
        assert len(text.split()) == len(TEXTS[i].split())  # word for word: no insertion or deletion


def test_rates_follow_the_probabilities():
    texts = [" ".join(f"w{i}_{j}" for j in range(40)) for i in range(200)]
    out, src = augment_texts(texts, AugmentConfig(copies=1, min_words=1, p_mask=0.2, p_replace=0.1, seed=3))
    masked = changed = total = 0
    for text, i in zip(out, src):
        for new, old in zip(text.split(), texts[i].split()):
            total += 1
            masked += new == "[MASK]"
            changed += new not in ("[MASK]", old)
    assert masked / total == pytest.approx(0.2, abs=0.01)
    assert changed / total == pytest.approx(0.1, abs=0.01)  # distinct words: a replacement always shows


def test_mask_everything_and_seed_reproducibility():
    cfg = AugmentConfig(copies=1, min_words=1, p_mask=1.0, p_replace=0.0, mask_token="<m>")
    out, _ = augment_texts(["x y z"], cfg)
    assert out == ["<m> <m> <m>"]
    a = augment_texts(TEXTS, AugmentConfig(copies=2, min_words=5, seed=1))
    assert a == augment_texts(TEXTS, AugmentConfig(copies=2, min_words=5, seed=1))
    assert a != augment_texts(TEXTS, AugmentConfig(copies=2, min_words=5, seed=2))
    assert augment_texts(TEXTS, AugmentConfig(copies=0)) == ([], [])


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"copies": -1}, "copies"),
        ({"min_words": 1.5}, "min_words"),
        ({"p_mask": 1.5}, "p_mask"),
        ({"p_mask": 0.6, "p_replace": 0.6}, "p_mask \\+ p_replace"),
        ({"p_mask": 0.0, "p_replace": 0.0}, "nothing would change"),
    ],
)
def test_bad_settings_name_the_field(kw, match):
    with pytest.raises(ValueError, match=match):
        AugmentConfig(**kw)


ROWS = [  # under 64 bytes: the tiny teacher reads bytes
    ("a warm and funny film that i would see again and again", 1),
    ("dull", 0),
    ("so slow and so long that i left it before the end", 0),
    ("fine but forgettable fun for the whole family", 1),
]


def _sst2_dir(root, rows=ROWS):
    d = root / "sst2"
    d.mkdir()
    for name in ("train.tsv", "dev.tsv"):
        (d / name).write_text("sentence\tlabel\n" + "".join(f"{s}\t{y}\n" for s, y in rows))
    return root


def test_data_module_adds_teacher_labelled_variants(tmp_path, tiny_spiking_cls, byte_tok):
    from evospikenet.distill import Teacher
    from training.distill import SST2DistillDataModule

    teacher_dir = tmp_path / "teacher"
    tiny_spiking_cls.save_pretrained(teacher_dir)
    byte_tok.save_pretrained(teacher_dir)
    kw = dict(
        data_dir=str(_sst2_dir(tmp_path)),
        tokenizer=str(teacher_dir),
        max_len=64,
        batch_size=2,
        teacher=str(teacher_dir),
        soft_label_cache=str(tmp_path / "cache"),
    )
    plain = SST2DistillDataModule(**kw)
    plain.setup("fit")
    dm = SST2DistillDataModule(**kw, augment_copies=2, augment_min_words=10)
    dm.setup("fit")
    variants, src = augment_texts([r[0] for r in ROWS], AugmentConfig(2, 10))
    assert variants and set(src) <= {0, 2}  # the two phrases of 12 words
    n = len(plain.train_set)
    assert len(dm.train_set) == n + len(variants)
    assert torch.equal(dm.train_set.teacher[:n], plain.train_set.teacher)
    z = Teacher(str(teacher_dir), kind="classifier", device="cpu").logits(variants)
    assert torch.allclose(dm.train_set.teacher[n:], z, atol=1e-5)
    assert torch.equal(dm.train_set.labels[n:], z.argmax(-1))  # hard labels: the teacher's argmax
    assert len(dm.val_set) == 4  # dev untouched
    with pytest.raises(ValueError, match="teacher"):
        SST2DistillDataModule(**{**kw, "teacher": None}, augment_copies=1)
    with pytest.raises(ValueError, match="p_mask"):
        SST2DistillDataModule(**kw, augment_copies=1, augment_p_mask=2.0)
