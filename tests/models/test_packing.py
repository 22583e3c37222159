"""Packed rows (position_ids restarting at 0) give the outputs of the padded batch, and bad ids fail clearly."""

import pytest
import torch

from evospikenet.models import SpikingEvoSpikeNetForSequenceClassification, SpikingEvoSpikeNetModel
from evospikenet.models.spiking_lm import pack_sequences


def _texts(seed=0, n=7, ctx=16):
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(1, 257, (int(torch.randint(1, ctx + 1, (1,), generator=g)),), generator=g).tolist()
            for _ in range(n)]  # fmt: skip


def _padded(texts):
    L = max(map(len, texts))
    ids, mask = torch.zeros(len(texts), L, dtype=torch.long), torch.zeros(len(texts), L, dtype=torch.long)
    for i, t in enumerate(texts):
        ids[i, : len(t)], mask[i, : len(t)] = torch.tensor(t), 1
    return ids, mask


@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("pooling", ["mean", "last"])
def test_packed_classification_equals_padded(tiny_config, pooling, causal):
    torch.manual_seed(0)
    cfg = tiny_config(classifier_pooling=pooling, attn_causal=causal)
    model = SpikingEvoSpikeNetForSequenceClassification(cfg).eval()
    texts = _texts()
    ids, mask = _padded(texts)
    pids, pos, pmask, order = pack_sequences(texts, 16)
    assert pids.shape[0] < len(texts)  # the texts really share rows
    with torch.no_grad():
        ref = model(input_ids=ids, attention_mask=mask).logits
        out = model(input_ids=pids, attention_mask=pmask, position_ids=pos).logits
    assert out.shape == ref.shape
    assert torch.allclose(out, ref[order], atol=1e-5)


def test_packed_readout_equals_each_text_alone(tiny_config):
    torch.manual_seed(1)
    model = SpikingEvoSpikeNetModel(tiny_config()).eval()
    a, b = [5, 9, 200, 17], [33, 2, 2]
    ids = torch.tensor([a + b])
    pos = torch.tensor([[0, 1, 2, 3, 0, 1, 2]])
    with torch.no_grad():
        packed = model(ids, position_ids=pos)[0]  # (T, 1, 7, D)
        ra = model(torch.tensor([a]))[0]
        rb = model(torch.tensor([b]))[0]
    assert torch.allclose(packed[:, :, :4], ra, atol=1e-5)
    assert torch.allclose(packed[:, :, 4:], rb, atol=1e-5)


def test_packed_labels_give_one_loss_over_texts(tiny_config):
    model = SpikingEvoSpikeNetForSequenceClassification(tiny_config())
    texts = _texts(2, n=5)
    pids, pos, pmask, order = pack_sequences(texts, 16)
    labels = torch.tensor([i % 2 for i in range(len(texts))])
    out = model(input_ids=pids, attention_mask=pmask, position_ids=pos, labels=labels[order])
    out.loss.backward()
    assert torch.isfinite(out.loss) and model.score.weight.grad is not None


def test_pack_sequences_rows():
    texts = _texts(3, n=20)
    ids, pos, mask, order = pack_sequences(texts, 16, pad_id=0)
    assert sorted(order) == list(range(20))
    assert ids.shape[1] <= 16 and int(mask.sum()) == sum(map(len, texts))
    starts = ((pos == 0) & (mask == 1)).flatten().nonzero().flatten().tolist() + [None]
    flat_ids = ids.flatten()
    for i, k in enumerate(order):  # each text sits whole, in output order, with positions 0..n-1
        s = starts[i]
        assert flat_ids[s : s + len(texts[k])].tolist() == texts[k]
        assert pos.flatten()[s : s + len(texts[k])].tolist() == list(range(len(texts[k])))
    with pytest.raises(ValueError, match="1 to 16 tokens"):
        pack_sequences([[1] * 17], 16)
    with pytest.raises(ValueError, match="1 to 16 tokens"):
        pack_sequences([[]], 16)


@pytest.mark.parametrize(
    ("pos", "match"),
    [
        ([[0, 1, 2]], "shape of input_ids"),
        ([[1, 2, 3, 4]], "start every row at 0"),
        ([[0, 1, 3, 4]], "count up by one"),
        ([[0, 1, 2, 99]], r"lie in \[0, 16\)"),
    ],
)
def test_bad_position_ids_name_the_problem(tiny_config, pos, match):
    model = SpikingEvoSpikeNetModel(tiny_config()).eval()
    with pytest.raises(ValueError, match=match):
        model(torch.tensor([[1, 2, 3, 4]]), position_ids=torch.tensor(pos))
