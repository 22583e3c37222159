"""Teacher-weight initialisation: a tiny BERT's layers and embeddings copied into the spiking student."""

import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification

from evospikenet.distill import init_blocks_from_bert
from evospikenet.models import SpikingEvoSpikeNetConfig, SpikingEvoSpikeNetForSequenceClassification


def _bert(**kw):
    torch.manual_seed(0)
    cfg = dict(vocab_size=50, hidden_size=16, num_hidden_layers=3, num_attention_heads=2,
               intermediate_size=64, max_position_embeddings=32, num_labels=2)  # fmt: skip
    return BertForSequenceClassification(BertConfig(**{**cfg, **kw})).eval()


def _student(**kw):
    cfg = dict(vocab_size=50, d_model=16, n_layers=2, n_heads=2, mlp_ratio=4, context_length=12,
               time_steps=2, num_labels=2, pad_token_id=0, bos_token_id=1, eos_token_id=2)  # fmt: skip
    return SpikingEvoSpikeNetForSequenceClassification(SpikingEvoSpikeNetConfig(**{**cfg, **kw}))


def test_layers_and_embeddings_land_in_the_teachers_basis():
    teacher, student = _bert(), _student()
    info = init_blocks_from_bert(student, teacher, layers=[2, 0])
    assert info["blocks"] == {0: 2, 1: 0}
    t = teacher.bert.encoder.layer
    b0 = student.spiking.blocks[0]
    q, k, v = b0.w_qkv.weight.chunk(3, dim=0)
    assert torch.equal(q, t[2].attention.self.query.weight) and torch.equal(
        v, t[2].attention.self.value.weight
    )
    assert torch.equal(k, t[2].attention.self.key.weight)
    assert torch.equal(b0.w_o.weight, t[2].attention.output.dense.weight)
    assert torch.equal(student.spiking.blocks[1].w_1.weight, t[0].intermediate.dense.weight)
    assert torch.equal(student.spiking.blocks[1].w_2.weight, t[0].output.dense.weight)
    # embeddings: the teacher's table centred and rescaled, not rotated: each row is a fixed multiple of the
    # centred teacher row, and positions share that multiple
    tok_t = teacher.bert.embeddings.word_embeddings.weight
    tok_t = tok_t - tok_t.mean(0)
    tok_s = student.spiking.tok_emb.weight
    ratio = tok_s / tok_t
    assert torch.allclose(ratio, ratio.flatten()[0].expand_as(ratio), rtol=1e-4)
    assert tok_s.std().item() == pytest.approx(student.config.embed_init_std, rel=1e-4)
    pos_t = teacher.bert.embeddings.position_embeddings.weight[:12]
    assert torch.allclose(student.spiking.pos_emb.weight, pos_t * ratio.flatten()[0], rtol=1e-4)
    # the student still runs and trains from there
    ids = torch.randint(3, 50, (2, 8))
    out = student(ids, labels=torch.tensor([0, 1]))
    out.loss.backward()
    assert student.spiking.blocks[0].w_qkv.weight.grad.abs().sum() > 0


def test_default_layers_are_the_first_blocks():
    teacher, student = _bert(), _student()
    assert init_blocks_from_bert(student, teacher)["blocks"] == {0: 0, 1: 1}
    assert torch.equal(
        student.spiking.blocks[1].w_o.weight, teacher.bert.encoder.layer[1].attention.output.dense.weight
    )


@pytest.mark.parametrize(
    "student_kw, teacher_kw, layers, message",
    [
        (dict(d_model=32), {}, None, "d_model 32 != the teacher's hidden_size 16"),
        (dict(n_heads=4), {}, None, "n_heads 4"),
        (dict(mlp_ratio=2), {}, None, "intermediate_size"),
        (dict(vocab_size=60), {}, None, "vocab_size 60"),
        ({}, {}, [0, 5], "outside 0..2"),
        ({}, {}, [0], "1 teacher layers given for 2 student blocks"),
        (dict(context_length=40), {}, None, "context_length 40 exceeds"),
    ],
)
def test_mismatched_sizes_name_the_problem_and_change_nothing(student_kw, teacher_kw, layers, message):
    teacher, student = _bert(**teacher_kw), _student(**student_kw)
    before = {k: v.clone() for k, v in student.state_dict().items()}
    with pytest.raises(ValueError, match=message):
        init_blocks_from_bert(student, teacher, layers)
    assert all(torch.equal(before[k], v) for k, v in student.state_dict().items())


def test_training_module_starts_from_a_teacher_directory(tmp_path):
    from training.distill import DistillSequenceClassificationModule

    teacher = _bert()
    teacher.save_pretrained(tmp_path / "teacher")
    cfg = dict(vocab_size=50, d_model=16, n_layers=2, n_heads=2, context_length=12, time_steps=2, num_labels=2,
               pad_token_id=0, bos_token_id=1, eos_token_id=2)  # fmt: skip
    module = DistillSequenceClassificationModule(
        model_config=cfg, init_blocks=str(tmp_path / "teacher"), init_blocks_layers=[1, 2]
    )
    t = teacher.bert.encoder.layer
    assert torch.equal(module.model.spiking.blocks[0].w_o.weight, t[1].attention.output.dense.weight)
    assert torch.equal(module.model.spiking.blocks[1].w_1.weight, t[2].intermediate.dense.weight)
    with pytest.raises(ValueError, match="init_blocks or init_embeddings, not both"):
        DistillSequenceClassificationModule(
            model_config=cfg, init_blocks=str(tmp_path / "teacher"), init_embeddings=str(tmp_path / "teacher")
        )


def test_a_teacher_without_bert_layers_is_refused():
    with pytest.raises(ValueError, match="Linear is not a BERT-style encoder"):
        init_blocks_from_bert(_student(), torch.nn.Linear(16, 16))
