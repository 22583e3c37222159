"""Per-token hidden-state distillation: the loss's closed form, the block taps and the module wiring."""

import pytest
import torch
import torch.nn.functional as F
from transformers import BertConfig, BertModel

from evospikenet.distill import BlockTaps, default_layer_map, hidden_state_loss
from evospikenet.models import SpikingEvoSpikeNetConfig, SpikingEvoSpikeNetForSequenceClassification

STUDENT = dict(vocab_size=50, d_model=16, n_layers=2, n_heads=2, context_length=12, time_steps=3,
               num_labels=2, pad_token_id=0, bos_token_id=1, eos_token_id=2)  # fmt: skip


def _teacher_dir(tmp_path, layers=4):
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=50, hidden_size=24, num_hidden_layers=layers, num_attention_heads=2,
                     intermediate_size=48, max_position_embeddings=32)  # fmt: skip
    BertModel(cfg).eval().save_pretrained(tmp_path / "teacher")
    return str(tmp_path / "teacher")


def test_default_layer_map_is_uniform_and_ends_at_the_last_layer():
    assert default_layer_map(2, 6) == [3, 6]
    assert default_layer_map(3, 6) == [2, 4, 6]
    assert default_layer_map(1, 12) == [12]
    assert default_layer_map(4, 2) == [0, 1, 2, 2]  # round() of 0.5, 1, 1.5, 2
    with pytest.raises(ValueError, match="layer counts"):
        default_layer_map(0, 6)


def test_hidden_state_loss_closed_form_and_mask():
    torch.manual_seed(0)
    s, t = torch.randn(2, 5, 4), torch.randn(2, 5, 6) * 3 + 1
    proj = torch.nn.Linear(4, 6)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    target = (t - t.mean(-1, keepdim=True)) / torch.sqrt(t.var(-1, unbiased=False, keepdim=True) + 1e-5)
    err = (proj(s) - target).pow(2).mean(-1)  # (2, 5)
    want = (err[0, :3].sum() + err[1].sum()) / 8
    assert torch.allclose(hidden_state_loss(s, t, proj, mask), want, atol=1e-6)
    assert torch.allclose(hidden_state_loss(s, t, proj), err.mean(), atol=1e-6)
    # a padded token's student state does not matter
    s2 = s.clone()
    s2[0, 4] += 100.0
    assert torch.allclose(hidden_state_loss(s2, t, proj, mask), want, atol=1e-6)


def test_hidden_state_loss_is_zero_when_the_map_recovers_the_target():
    """The target is standardised, so a teacher state ``2 s + 0.5`` of a standardised ``s`` is matched by
    the identity map: loss 0."""
    torch.manual_seed(1)
    s = F.layer_norm(torch.randn(3, 4, 5), (5,))
    proj = torch.nn.Linear(5, 5)
    with torch.no_grad():
        proj.weight.copy_(torch.eye(5))
        proj.bias.zero_()
    assert hidden_state_loss(s, s * 2.0 + 0.5, proj).item() < 1e-8
    assert hidden_state_loss(s, -s, proj).item() > 3.9  # the sign flipped: |2 s|^2 averages 4
    with pytest.raises(ValueError, match="same tokens"):
        hidden_state_loss(s, s[:, :3], proj)


def test_block_taps_keep_the_time_mean_of_each_block():
    torch.manual_seed(0)
    model = SpikingEvoSpikeNetForSequenceClassification(SpikingEvoSpikeNetConfig(**STUDENT)).eval()
    seen = []
    hook = model.spiking.blocks[1].register_forward_hook(lambda m, a, out: seen.append(out[0]))
    taps = BlockTaps(model.spiking.blocks)
    ids = torch.randint(3, 50, (2, 7))
    with torch.no_grad():
        model(input_ids=ids)
    u0, u1 = taps.take()
    assert u0.shape == u1.shape == (2, 7, 16)
    assert torch.equal(u1, seen[0].mean(0))
    with pytest.raises(RuntimeError, match="before a forward pass"):
        taps.take()  # cleared
    taps.remove()
    hook.remove()
    model(input_ids=ids)
    assert taps.outputs == [None, None]


def _module(tmp_path, **kw):
    from training.distill import DistillSequenceClassificationModule

    return DistillSequenceClassificationModule(
        model_config=STUDENT, alpha=0.5, feature_teacher=_teacher_dir(tmp_path), **kw
    )


def test_module_adds_the_weighted_feature_term(tmp_path):
    torch.manual_seed(0)
    m = _module(tmp_path, feature_weight=0.5, feature_layers=[1, 4])
    m.log = lambda *a, **k: None
    m.model.config.tas_mode = "deterministic"
    assert [p.weight.shape for p in m.feature_proj] == [(24, 16), (24, 16)]
    batch = {
        "input_ids": torch.randint(3, 50, (4, 6)),
        "attention_mask": torch.tensor([[1] * 6, [1] * 6, [1] * 4 + [0] * 2, [1] * 3 + [0] * 3]),
        "labels": torch.tensor([0, 1, 1, 0]),
        "teacher_logits": torch.randn(4, 2),
    }
    batch["input_ids"][batch["attention_mask"] == 0] = 0
    taps = BlockTaps(m.model.spiking.blocks)
    out = m._step(batch, "train")
    u = taps.take()
    hidden = m._features.encoder(
        input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], output_hidden_states=True
    ).hidden_states
    feat = sum(hidden_state_loss(u[k], hidden[j], m.feature_proj[k], batch["attention_mask"])
               for k, j in enumerate([1, 4])) / 2  # fmt: skip
    from evospikenet.distill import DistillParams, distillation_loss

    kd = distillation_loss(out.logits, batch["teacher_logits"], batch["labels"], DistillParams(2.0, 0.5))
    assert torch.allclose(out.loss, kd + 0.5 * feat, atol=1e-5)
    out.loss.backward()
    assert m.feature_proj[0].weight.grad is not None
    assert m.model.spiking.blocks[0].w_qkv.weight.grad.abs().sum() > 0
    assert not any(p.requires_grad for p in m._features.encoder.parameters())
    assert not any(k.startswith("_features") or "encoder" in k for k in m.state_dict())  # teacher not saved


def test_module_refuses_bad_feature_settings(tmp_path):
    from training.distill import DistillSequenceClassificationModule

    with pytest.raises(ValueError, match=r"one teacher layer in \[0, 4\] per student layer \(2\)"):
        _module(tmp_path, feature_layers=[2])
    with pytest.raises(ValueError, match=r"one teacher layer in \[0, 4\]"):
        _module(tmp_path, feature_layers=[2, 5])
    with pytest.raises(ValueError, match="vocab_size 60, teacher 50"):
        DistillSequenceClassificationModule(
            model_config={**STUDENT, "vocab_size": 60}, feature_teacher=_teacher_dir(tmp_path)
        )
    with pytest.raises(ValueError, match="feature_weight"):
        _module(tmp_path, feature_weight=0.0)
    with pytest.raises(ValueError, match="needs a student with layers to read"):
        from training.distill_features import FeatureTeacher

        class Layerless(torch.nn.Module):
            config = BertConfig(num_hidden_layers=0)

        holder = torch.nn.Module()
        holder.model = Layerless()
        FeatureTeacher(holder, _teacher_dir(tmp_path), None)


def test_a_float_student_is_read_through_its_hidden_states(tmp_path):
    """The float twin (a registered gpt2) takes the same feature term, from ``output_hidden_states``."""
    from training.distill import DistillSequenceClassificationModule

    torch.manual_seed(0)
    cfg = {"vocab_size": 50, "n_embd": 16, "n_layer": 2, "n_head": 2, "n_positions": 16}
    cfg.update(pad_token_id=0, bos_token_id=1, eos_token_id=2)
    m = DistillSequenceClassificationModule(
        model="gpt2", model_config=cfg, alpha=0.5, feature_teacher=_teacher_dir(tmp_path)
    ).eval()  # no dropout, so the recomputation below is the same function
    assert m._features.layers == [2, 4] and m._features.taps is None
    m.log = lambda *a, **k: None
    ids = torch.randint(3, 50, (3, 5))
    batch = {"input_ids": ids, "attention_mask": torch.ones(3, 5, dtype=torch.long),
             "labels": torch.tensor([0, 1, 1]), "teacher_logits": torch.randn(3, 2)}  # fmt: skip
    out = m._step(batch, "train")
    hs = m.model(input_ids=ids, output_hidden_states=True).hidden_states
    th = m._features.encoder(input_ids=ids, output_hidden_states=True).hidden_states
    feat = (
        hidden_state_loss(hs[1], th[2], m.feature_proj[0])
        + hidden_state_loss(hs[2], th[4], m.feature_proj[1])
    ) / 2
    from evospikenet.distill import DistillParams, distillation_loss

    kd = distillation_loss(out.logits, batch["teacher_logits"], batch["labels"], DistillParams(2.0, 0.5))
    assert torch.allclose(out.loss, kd + feat, atol=1e-5)
