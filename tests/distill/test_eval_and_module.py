"""``evospikenet-eval sst2`` (JSON keys, energy formula, errors) and the Lightning distillation module."""

import json

import pytest
import torch

from evospikenet.data.sst2 import read_sst2_tsv
from evospikenet.distill import DistillParams, distillation_loss
from evospikenet.energy import HOROWITZ_45NM
from training import evaluate
from training.eval_sst2 import bert_base_macs, dense_macs, evaluate_sst2, transformer_macs

KEYS = ["n", "accuracy", "f1", "spike_rate", "energy_per_sentence_j", "bert_base_energy_per_sentence_j"]


def _tsv(path, rows):
    path.write_text("sentence\tlabel\n" + "".join(f"{s}\t{y}\n" for s, y in rows), encoding="utf-8")
    return path


def test_bert_base_macs_closed_form():
    d, f = 768, 3072
    assert bert_base_macs(1) == 12 * (4 * d * d + 2 * d * f + 2 * d) + d * d + 2 * d
    per_token = bert_base_macs(2) - bert_base_macs(1)  # about 85 M MACs per extra token (short input)
    assert 84e6 < per_token < 86e6
    with pytest.raises(ValueError, match="length"):
        bert_base_macs(0)


def test_dense_macs_of_float_classifiers():
    from types import SimpleNamespace

    from transformers import BertConfig, GPT2Config

    # GPT-2: causal (L (L + 1) / 2 pairs), no pooler, head on the last token
    g = GPT2Config(n_embd=16, n_layer=2, n_head=2, n_inner=None, num_labels=2)
    L, d = 5, 16
    assert dense_macs(g, L) == 2 * (4 * d * d * L + 2 * d * 4 * d * L + 2 * d * L * (L + 1) // 2) + 2 * d
    # BERT: every pair, pooler: the BERT-base formula when the sizes are BERT-base's
    b = BertConfig(num_hidden_layers=12, hidden_size=768, intermediate_size=3072, num_labels=2)
    assert dense_macs(b, 7) == bert_base_macs(7) == transformer_macs(7, 12, 768, 3072)
    assert dense_macs(SimpleNamespace(num_labels=2), 7) is None  # unknown kind: not counted


def test_evaluate_counts_a_float_model_by_its_macs(byte_tok):
    from transformers import GPT2Config, GPT2ForSequenceClassification

    torch.manual_seed(0)
    cfg = GPT2Config(vocab_size=257, n_embd=16, n_layer=1, n_head=2, n_positions=32, pad_token_id=0)
    model = GPT2ForSequenceClassification(cfg)
    texts, labels = ["good", "bad movie", "a fine film"], [1, 0, 1]
    r = evaluate_sst2(model, byte_tok, texts, labels)
    lens = [len(byte_tok(t)["input_ids"]) for t in texts]
    assert r["spike_rate"] is None
    want = sum(HOROWITZ_45NM.compute_j(macs=dense_macs(cfg, n)) for n in lens) / 3
    assert r["energy_per_sentence_j"] == pytest.approx(want)


def test_evaluate_counts_every_sentence(tiny_spiking_cls, byte_tok):
    texts, labels = ["good", "bad movie", "ok", "a fine film"], [1, 0, 1, 1]
    r = evaluate_sst2(tiny_spiking_cls, byte_tok, texts, labels, batch_size=2)
    assert list(r) == KEYS and r["n"] == 4
    with torch.no_grad():
        pred = [
            int(tiny_spiking_cls(input_ids=torch.tensor([byte_tok(t)["input_ids"]])).logits.argmax())
            for t in texts
        ]
    assert r["accuracy"] == sum(p == y for p, y in zip(pred, labels)) / 4
    tp = sum(p == 1 and y == 1 for p, y in zip(pred, labels))
    fp_fn = sum(p != y for p, y in zip(pred, labels))
    assert r["f1"] == pytest.approx(2 * tp / (2 * tp + fp_fn) if tp + fp_fn else 0.0)  # F1 of class 1
    lens = [len(byte_tok(t)["input_ids"]) for t in texts]
    want = sum(HOROWITZ_45NM.compute_j(macs=bert_base_macs(n)) for n in lens) / 4
    assert r["bert_base_energy_per_sentence_j"] == pytest.approx(want)
    assert 0 < r["spike_rate"] < 1 and 0 < r["energy_per_sentence_j"] < r["bert_base_energy_per_sentence_j"]


def test_cli_prints_json_last_line(tmp_path, tiny_spiking_cls, byte_tok, capsys):
    model_dir = tmp_path / "m"
    tiny_spiking_cls.save_pretrained(model_dir)
    byte_tok.save_pretrained(model_dir)
    tsv = _tsv(tmp_path / "dev.tsv", [("a great movie", 1), ("dull", 0), ("fun", 1)])
    assert evaluate.main(["sst2", "--model", str(model_dir), "--tsv", str(tsv)]) == 0
    last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert list(last) == KEYS and last["n"] == 3


def test_cli_errors(tmp_path, capsys):
    tsv = _tsv(tmp_path / "x.tsv", [("a", 1)])
    assert evaluate.main(["sst2", "--model", str(tmp_path / "missing"), "--tsv", str(tsv)]) == 2
    assert "--model" in capsys.readouterr().err
    bad = tmp_path / "bad.tsv"
    bad.write_text("sentence\tlabel\ngood\t1\nx\t7\n")
    with pytest.raises(ValueError, match=r"bad.tsv:3: .*label.*0 or 1.*'7'"):
        read_sst2_tsv(bad)
    bad.write_text("sentence\tlabel\ngood\t1\nno tab here\n")
    with pytest.raises(ValueError, match=r"bad.tsv:3: .*2 tab-separated fields"):
        read_sst2_tsv(bad)
    with pytest.raises(ValueError, match="path"):
        read_sst2_tsv(tmp_path / "none.tsv")


def _module(**kw):
    from training.distill import DistillSequenceClassificationModule

    cfg = {
        "vocab_size": 257,
        "d_model": 16,
        "n_layers": 1,
        "n_heads": 2,
        "context_length": 16,
        "time_steps": 2,
    }
    return DistillSequenceClassificationModule(model_config=cfg, **kw)


def _batch() -> dict:
    """Four texts of 8 tokens (no [PAD] id 0), labels and teacher logits."""
    return {
        "input_ids": torch.randint(1, 257, (4, 8)),
        "attention_mask": torch.ones(4, 8, dtype=torch.long),
        "labels": torch.tensor([0, 1, 1, 0]),
        "teacher_logits": torch.randn(4, 2),
    }


def test_module_uses_distillation_loss():
    torch.manual_seed(0)
    m = _module(temperature=3.0, alpha=0.7)
    m.log = lambda *a, **k: None
    m.model.config.tas_mode = "deterministic"
    batch = _batch()
    out = m._step(batch, "train")
    want = distillation_loss(out.logits, batch["teacher_logits"], batch["labels"], DistillParams(3.0, 0.7))
    assert torch.allclose(out.loss, want)
    val = m._step(batch, "val")  # validation: plain cross-entropy
    assert torch.allclose(val.loss, torch.nn.functional.cross_entropy(val.logits, batch["labels"]))


def test_module_distils_a_float_student():
    """A registered float student (gpt2: no spike_stats on its output) trains through the same loss."""
    from training.distill import DistillSequenceClassificationModule

    torch.manual_seed(0)
    cfg = {"vocab_size": 257, "n_embd": 16, "n_layer": 1, "n_head": 2, "n_positions": 16, "pad_token_id": 0}
    m = DistillSequenceClassificationModule(model="gpt2", model_config=cfg, temperature=2.0, alpha=0.5)
    m.log = lambda *a, **k: None
    batch = _batch()
    out = m._step(batch, "train")
    want = distillation_loss(out.logits, batch["teacher_logits"], batch["labels"], DistillParams(2.0, 0.5))
    assert torch.allclose(out.loss, want)
    assert getattr(m, "_last_stats", None) is None  # nothing spiked, nothing recorded


def test_module_fit_two_steps(tmp_path):
    import lightning.pytorch as pl
    from torch.utils.data import DataLoader

    rows = [
        {
            "input_ids": torch.randint(0, 257, (8,)),
            "attention_mask": torch.ones(8, dtype=torch.long),
            "labels": torch.tensor(i % 2),
            "teacher_logits": torch.randn(2),
        }
        for i in range(8)
    ]
    m = _module(alpha=0.5)
    before = m.model.score.weight.detach().clone()
    trainer = pl.Trainer(
        max_steps=2,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    trainer.fit(m, DataLoader(rows, batch_size=4))
    assert not torch.equal(before, m.model.score.weight)


def test_module_bad_arguments():
    with pytest.raises(ValueError, match="alpha"):
        _module(alpha=2.0)
    with pytest.raises(ValueError, match="temperature"):
        _module(temperature=-1.0)


def test_length_buckets_cover_every_row_once_with_little_padding():
    from training.distill import LengthBuckets, _Rows

    g = torch.Generator().manual_seed(0)
    n, L = 203, 24
    lengths = torch.randint(1, L + 1, (n,), generator=g)
    mask = (torch.arange(L)[None] < lengths[:, None]).long()  # (N, L) right-padded
    ids = torch.randint(1, 100, (n, L), generator=g) * mask
    rows = _Rows({"input_ids": ids.tolist(), "attention_mask": mask.tolist()}, list(range(n)), None)
    buckets = LengthBuckets(rows, batch_size=16, seed=0)
    seen = []
    padded = 0
    for i in range(len(buckets)):
        b = buckets[i]
        width = b["input_ids"].shape[1]
        assert width == int(b["attention_mask"].sum(1).max())  # trimmed to its longest row
        for j, row in enumerate(b["labels"].tolist()):
            assert torch.equal(b["input_ids"][j], ids[row, :width])
        seen.extend(b["labels"].tolist())
        padded += b["input_ids"].numel()
    assert sorted(seen) == list(range(n))
    assert padded < 0.6 * n * L  # far less than padding every row to max_len
    again = LengthBuckets(rows, batch_size=16, seed=0)
    assert all(torch.equal(a, b) for a, b in zip(buckets.batches, again.batches))  # seeded
