"""Distillation loss (closed forms), soft-label cache (never recomputes, resumes), embeddings projection."""

import math

import pytest
import torch
import torch.nn.functional as F

from evospikenet.distill import (
    DistillParams,
    distillation_loss,
    label_texts,
    load_soft_labels,
    project_embeddings,
    soft_kl,
    soft_label_dir,
)


def test_loss_alpha_zero_is_cross_entropy():
    torch.manual_seed(0)
    s, t, y = torch.randn(5, 3), torch.randn(5, 3), torch.tensor([0, 1, 2, 1, 0])
    got = distillation_loss(s, t, y, DistillParams(temperature=3.0, alpha=0.0))
    assert torch.allclose(got, F.cross_entropy(s, y))


def test_loss_closed_form_two_classes():
    s = torch.tensor([[0.0, 0.0]])
    t = torch.tensor([[0.0, 2.0 * math.log(3.0)]])  # at tau = 2 the teacher is (1/4, 3/4)
    kl = 0.25 * math.log(0.25 / 0.5) + 0.75 * math.log(0.75 / 0.5)
    got = distillation_loss(s, t, torch.tensor([1]), DistillParams(temperature=2.0, alpha=0.25))
    expected = 0.25 * 4.0 * kl + 0.75 * math.log(2.0)
    assert got.item() == pytest.approx(expected, rel=1e-5)


def test_kl_zero_for_equal_logits_and_gradient_flows():
    s = torch.randn(4, 2, requires_grad=True)
    assert soft_kl(s, s.detach(), 5.0).abs().max() < 1e-6
    loss = distillation_loss(s, torch.randn(4, 2), None, DistillParams(alpha=1.0))
    loss.backward()
    assert s.grad.abs().sum() > 0


def test_ignored_labels_take_soft_term_only():
    s, t = torch.randn(3, 2), torch.randn(3, 2)
    p = DistillParams(temperature=1.0, alpha=0.5)
    got = distillation_loss(s, t, torch.tensor([-100, -100, -100]), p)
    assert torch.allclose(got, 0.5 * soft_kl(s, t, 1.0).mean())


@pytest.mark.parametrize("kw", [{"temperature": 0.0}, {"alpha": 1.5}])
def test_loss_bad_params(kw):
    with pytest.raises(ValueError, match=next(iter(kw))):
        distillation_loss(torch.zeros(1, 2), torch.zeros(1, 2), None, DistillParams(**kw))


def test_loss_shape_mismatch():
    with pytest.raises(ValueError, match="teacher_logits"):
        distillation_loss(torch.zeros(2, 2), torch.zeros(2, 3))


def test_cache_never_recomputes(tmp_path, fake_teacher):
    texts = [f"text number {i}" for i in range(10)]
    ds = label_texts(fake_teacher, texts, tmp_path, shard_size=4, progress=False)
    assert fake_teacher.calls == 10
    assert ds["index"] == list(range(10)) and ds["text"] == texts
    assert torch.allclose(torch.tensor(ds["teacher_logits"]), fake_teacher.logits(texts))
    fake_teacher.calls = 0
    again = label_texts(fake_teacher, texts, tmp_path, shard_size=4, progress=False)
    assert fake_teacher.calls == 0
    assert again["teacher_logits"] == ds["teacher_logits"]
    d = soft_label_dir(tmp_path, fake_teacher.name, fake_teacher.revision, texts)
    assert len(list(d.glob("shard_*.parquet"))) == 3 and (d / "meta.json").is_file()


def test_cache_resumes_after_interruption(tmp_path, fake_teacher):
    texts = [f"t{i}" for i in range(9)]
    assert label_texts(fake_teacher, texts, tmp_path, shard_size=3, progress=False, max_shards=1) is None
    assert fake_teacher.calls == 3
    ds = label_texts(fake_teacher, texts, tmp_path, shard_size=3, progress=False)
    assert fake_teacher.calls == 9  # only the two missing shards were computed
    assert ds["text"] == texts


def test_cache_keyed_by_revision(tmp_path, fake_teacher):
    texts = ["a b", "c d"]
    label_texts(fake_teacher, texts, tmp_path, progress=False)
    fake_teacher.revision = "r2"
    label_texts(fake_teacher, texts, tmp_path, progress=False)
    assert fake_teacher.calls == 4
    assert soft_label_dir(tmp_path, "fake/teacher", "r1", texts) != soft_label_dir(
        tmp_path, "fake/teacher", "r2", texts
    )


def test_cache_errors(tmp_path, fake_teacher):
    with pytest.raises(ValueError, match="texts"):
        label_texts(fake_teacher, [], tmp_path)
    with pytest.raises(ValueError, match="shard_size"):
        label_texts(fake_teacher, ["x"], tmp_path, shard_size=0)
    with pytest.raises(ValueError, match="directory"):
        load_soft_labels(tmp_path)


def test_project_embeddings_pca():
    torch.manual_seed(0)
    w = torch.randn(200, 8) * torch.tensor([5.0, 1, 1, 1, 1, 1, 1, 0.1])  # dominant first axis
    out = project_embeddings(w, 2, std=0.5)
    assert out.shape == (200, 2)
    assert out.std().item() == pytest.approx(0.5, rel=1e-4)
    corr = torch.corrcoef(torch.stack([out[:, 0], w[:, 0]]))[0, 1].abs()
    assert corr > 0.99
    assert project_embeddings(w, 12).shape == (200, 12)
    with pytest.raises(ValueError, match="d_model"):
        project_embeddings(w, 0)
