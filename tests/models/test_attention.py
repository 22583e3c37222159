import math

import pytest
import torch
import torch.nn.functional as F

from evospikenet.models import SpikingEvoSpikeNetForCausalLM
from evospikenet.models.spiking_lm import (
    ChronoAttnParams,
    LIFPopulation,
    chrono_spike_attention,
    temporal_kernel,
)

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _spikes(*shape, rate=0.3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(*shape, generator=g) < rate).float()


def test_kernel_formula():
    k = temporal_kernel(3, torch.tensor([1.0, 2.0]))
    assert k.shape == (2, 3, 3)
    assert k[0, 0, 2].item() == pytest.approx(math.exp(-2.0))
    assert k[1, 2, 1].item() == pytest.approx(math.exp(-0.5))
    assert torch.allclose(k.diagonal(dim1=1, dim2=2), torch.ones(2, 3))


def test_infinite_tau_reduces_to_scaled_dot_product_attention_on_rates():
    T, B, H, L, dh = 6, 2, 2, 7, 8
    q, k, v = (_spikes(T, B, H, L, dh, seed=s) for s in range(3))
    params = ChronoAttnParams(torch.full((H,), math.inf), torch.ones(H))
    o, _ = chrono_spike_attention(q, k, v, params)
    ref = F.scaled_dot_product_attention(q.mean(0), k.mean(0), v.mean(0), is_causal=True)
    assert torch.allclose(o.mean(0), ref, atol=1e-5)


def test_zero_tau_counts_only_synchronous_coincidences():
    T, B, H, L, dh = 4, 1, 1, 5, 6
    q, k, v = (_spikes(T, B, H, L, dh, seed=s) for s in range(3))
    params = ChronoAttnParams(torch.full((H,), 1e-6), torch.ones(H))
    _, attn = chrono_spike_attention(q, k, v, params, return_weights=True)
    scores = torch.einsum("tbhid,tbhjd->bhij", q, k) / (T * math.sqrt(dh))
    scores = scores.masked_fill(~torch.ones(L, L, dtype=torch.bool).tril(), float("-inf"))
    assert torch.allclose(attn, scores.softmax(-1), atol=1e-5)


def test_attention_is_causal_and_respects_key_mask():
    T, B, H, L, dh = 4, 1, 2, 6, 4
    q, k, v = (_spikes(T, B, H, L, dh, seed=s) for s in range(3))
    params = ChronoAttnParams(torch.full((H,), 2.0), torch.ones(H))
    o1, a1 = chrono_spike_attention(q, k, v, params, return_weights=True)
    k2, v2 = k.clone(), v.clone()
    k2[..., 4:, :] = 1 - k2[..., 4:, :]
    v2[..., 4:, :] = 1 - v2[..., 4:, :]
    o2, _ = chrono_spike_attention(q, k2, v2, params)
    assert torch.equal(o1[..., :4, :], o2[..., :4, :])
    assert not torch.equal(o1[..., 4:, :], o2[..., 4:, :])
    assert torch.all(a1.triu(1) == 0)
    mask = torch.ones(B, L, dtype=torch.bool)
    mask[:, 1] = False
    _, a3 = chrono_spike_attention(q, k, v, params, key_mask=mask, return_weights=True)
    assert torch.all(a3[..., 2:, 1] == 0)


def test_bidirectional_attention_reduces_to_unmasked_attention_and_sees_later_tokens():
    T, B, H, L, dh = 6, 2, 2, 7, 8
    q, k, v = (_spikes(T, B, H, L, dh, seed=s) for s in range(3))
    params = ChronoAttnParams(torch.full((H,), math.inf), torch.ones(H), causal=False)
    o, a = chrono_spike_attention(q, k, v, params, return_weights=True)
    ref = F.scaled_dot_product_attention(q.mean(0), k.mean(0), v.mean(0), is_causal=False)
    assert torch.allclose(o.mean(0), ref, atol=1e-5)
    upper = torch.ones(L, L, dtype=torch.bool).triu(1)
    assert torch.all(a[..., upper] > 0)  # earlier tokens attend to later ones
    mask = torch.ones(B, L, dtype=torch.bool)
    mask[:, 5:] = False  # padding
    _, a2 = chrono_spike_attention(q, k, v, params, key_mask=mask, return_weights=True)
    assert torch.all(a2[..., :5, 5:] == 0)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("backend", ["snntorch", "evospikenet"])
def test_model_causality_changing_later_token_keeps_earlier_logits(device, backend, tiny_config):
    torch.manual_seed(0)
    model = SpikingEvoSpikeNetForCausalLM(tiny_config(neuron_backend=backend)).to(device).eval()
    ids = torch.randint(0, 257, (2, 12), device=device)
    ids2 = ids.clone()
    ids2[:, 8:] = (ids2[:, 8:] + 7) % 257
    with torch.no_grad():
        l1, l2 = model(ids).logits, model(ids2).logits
    assert torch.equal(l1[:, :8], l2[:, :8])
    assert not torch.equal(l1[:, 8:], l2[:, 8:])


@pytest.mark.parametrize("readout", ["spikes", "membrane"])
def test_activations_between_blocks_are_binary_spikes(tiny_config, readout):
    torch.manual_seed(0)
    model = SpikingEvoSpikeNetForCausalLM(tiny_config(readout=readout))
    seen = {}

    def hook(name):
        def fn(_m, _inp, out):
            seen[name] = out[0].detach()

        return fn

    for name, mod in model.named_modules():
        if isinstance(mod, LIFPopulation):
            mod.register_forward_hook(hook(name))
    linear_inputs = []
    for mod in model.modules():
        if isinstance(mod, torch.nn.Linear) and mod is not model.spiking.tas.tau_proj:
            if readout == "membrane" and mod is model.lm_head:
                continue  # the membrane readout's head reads the float potential (counted as MACs)
            mod.register_forward_hook(lambda _m, inp, _o: linear_inputs.append(inp[0].detach()))
    out = model(torch.randint(0, 257, (2, 10)))
    assert len(seen) == (readout == "spikes") + 7 * 2  # 7 per block (+ the final population)
    for name, s in seen.items():
        assert set(s.unique().tolist()) <= {0.0, 1.0}, name
    # every synaptic layer (q/k/v, W_o, W_1, W_2, head) reads spikes or spike rates of binary trains
    T = model.config.time_steps
    for x in linear_inputs:
        assert torch.allclose(x * T, (x * T).round(), atol=1e-5)
    assert 0.0 < out.spike_rate.item() < 1.0


def test_centred_query_scores_formula():
    # S_ij = lambda / (Z sqrt(dh)) sum_{t,t'} kappa(t,t') (q_{i,t} - m_i) . k_{j,t'}, m_i the query's mean rate
    T, B, H, L, dh = 3, 1, 2, 5, 4
    q, k, v = (_spikes(T, B, H, L, dh, seed=s) for s in range(3))
    tau, lam = torch.tensor([1.5, 3.0]), torch.tensor([2.0, 5.0])
    _, attn = chrono_spike_attention(q, k, v, ChronoAttnParams(tau, lam, True), return_weights=True)
    kappa = temporal_kernel(T, tau)  # (H, T, T)
    m = q.mean(dim=(0, 4), keepdim=True)  # (1, B, H, L, 1)
    raw = torch.einsum("htu,tbhid,ubhjd->bhij", kappa, q - m, k)
    scores = raw * (lam / (kappa.sum((1, 2)) * math.sqrt(dh))).view(1, H, 1, 1)
    scores = scores.masked_fill(~torch.ones(L, L, dtype=torch.bool).tril(), float("-inf"))
    assert torch.allclose(attn, scores.softmax(-1), atol=1e-5)
    # centring removes the pull of keys that merely fire more: a key firing everywhere no longer wins
    k_all = k.clone()
    k_all[..., 0, :] = 1.0
    _, plain = chrono_spike_attention(q, k_all, v, ChronoAttnParams(tau, lam), return_weights=True)
    _, centred = chrono_spike_attention(q, k_all, v, ChronoAttnParams(tau, lam, True), return_weights=True)
    assert centred[..., 1:, 0].mean() < plain[..., 1:, 0].mean()
