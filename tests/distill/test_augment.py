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


def _tiny_bert():
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=32, max_position_embeddings=16)  # fmt: skip
    return BertModel(cfg).eval()


def test_static_embeddings_are_the_teachers_output_per_token():
    from types import SimpleNamespace

    from evospikenet.distill import static_token_embeddings

    bert = _tiny_bert()
    framed = static_token_embeddings(bert, SimpleNamespace(cls_token_id=1, sep_token_id=2), batch_size=7)
    assert framed.shape == (50, 16)
    with torch.no_grad():
        want = bert(input_ids=torch.tensor([[1, 33, 2]])).last_hidden_state[0, 1]
        alone = bert(input_ids=torch.tensor([[33]])).last_hidden_state[0, 0]
    assert torch.allclose(framed[33], want, atol=1e-5)
    bare = static_token_embeddings(bert, SimpleNamespace(), batch_size=64, progress=False)
    assert torch.allclose(bare[33], alone, atol=1e-5)  # no special tokens: the token alone
    assert not torch.allclose(bare[33], framed[33])
    with pytest.raises(ValueError, match="batch_size"):
        static_token_embeddings(bert, SimpleNamespace(), batch_size=0)


def test_student_starts_from_static_teacher_embeddings(tmp_path, monkeypatch):
    from transformers import BertTokenizerFast

    from evospikenet.distill import load_teacher_embeddings, project_embeddings, static_token_embeddings
    from training.distill import DistillSequenceClassificationModule

    bert = _tiny_bert()
    bert.save_pretrained(tmp_path)
    vocab = ["[PAD]", "[CLS]", "[SEP]", "[UNK]", "[MASK]"] + [f"w{i}" for i in range(45)]
    (tmp_path / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tok = BertTokenizerFast(vocab_file=str(tmp_path / "vocab.txt"))
    tok.save_pretrained(tmp_path)
    w = load_teacher_embeddings(str(tmp_path), "static")
    assert torch.allclose(w, static_token_embeddings(bert, tok, progress=False), atol=1e-5)
    assert torch.equal(load_teacher_embeddings(str(tmp_path)), bert.get_input_embeddings().weight)
    cfg = dict(vocab_size=50, d_model=8, n_layers=1, n_heads=2, context_length=16, time_steps=2,
               num_labels=2, pad_token_id=0, bos_token_id=1, eos_token_id=2)  # fmt: skip
    m = DistillSequenceClassificationModule(
        model_config=cfg, init_embeddings=str(tmp_path), init_embeddings_kind="static"
    )
    want = project_embeddings(w, 8, m.model.config.embed_init_std)
    assert torch.allclose(m.model.get_input_embeddings().weight, want, atol=1e-5)
    with pytest.raises(ValueError, match="init_embeddings_kind"):
        DistillSequenceClassificationModule(model_config=cfg, init_embeddings_kind="output")
