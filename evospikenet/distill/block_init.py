r"""Start a spiking student from a BERT-style teacher's layers (teacher-weight initialisation).

Spiking language models in the literature often start from a pretrained float Transformer of the same shape
and then learn in the spike domain. When the student has the teacher's width (``d_model = E``), head layout
(``n_heads``) and MLP width (``mlp_ratio * d_model`` = the teacher's intermediate size), every synaptic
matrix of a spiking block has a teacher counterpart, and the student's token and position embeddings can be
the teacher's own, *in the teacher's basis* (no PCA rotation, which would break the correspondence):

.. math::

    W_{qkv}^{(b)} = [W_Q; W_K; W_V]^{(l_b)}, \quad W_o^{(b)} = W_O^{(l_b)}, \quad
    W_1^{(b)} = W_{\mathrm{in}}^{(l_b)}, \quad W_2^{(b)} = W_{\mathrm{out}}^{(l_b)}

    E_{tok} = s\,(E^{T}_{tok} - \bar E^{T}_{tok}) / \sigma, \qquad E_{pos} = s\, E^{T}_{pos}[{:}L] / \sigma

with ``l_b`` the teacher layer chosen for student block ``b``, ``s`` the student's ``embed_init_std`` and
``sigma`` the standard deviation of the centred teacher token table (the student multiplies its embeddings
by ``embed_scale``, so they must start at its own scale). Biases have no place to go (the student's
synapses have none), and the teacher's post-residual LayerNorms none either (the student normalises each
population's input current instead); both are left out. The spiking block reads spikes where the teacher
read floats, so the copy is a starting point in the right basis, not an equivalent network.
"""

from __future__ import annotations

import torch

__all__ = ["init_blocks_from_bert"]


def _bert_layers(teacher):
    """The encoder layers and embeddings of a ``transformers`` BERT-style model (with or without a head)."""
    base = getattr(teacher, "base_model", teacher)
    enc, emb = getattr(base, "encoder", None), getattr(base, "embeddings", None)
    layers = getattr(enc, "layer", None)
    if layers is None or emb is None:
        raise ValueError(
            f"{type(teacher).__name__} is not a BERT-style encoder (no encoder.layer / embeddings)"
        )
    return layers, emb


@torch.no_grad()
def init_blocks_from_bert(student, teacher, layers: list[int] | None = None) -> dict:
    """Copy ``teacher``'s layers ``layers`` (default: the first ``n_layers``) and embeddings into ``student``.

    ``student``: a ``SpikingEvoSpikeNetFor*`` model; ``teacher``: a BERT-style ``transformers`` model.
    Returns ``{"blocks": {student block: teacher layer}, "embeddings": True}``. Raises ``ValueError`` naming
    the mismatch when the sizes do not correspond.
    """
    cfg = student.config
    t_layers, t_emb = _bert_layers(teacher)
    tc = teacher.config
    n = cfg.n_layers
    layers = list(range(n)) if layers is None else [int(i) for i in layers]
    problems = []
    if len(layers) != n:
        problems.append(f"{len(layers)} teacher layers given for {n} student blocks")
    if any(i < 0 or i >= len(t_layers) for i in layers):
        problems.append(f"teacher layers {layers} outside 0..{len(t_layers) - 1}")
    if cfg.d_model != tc.hidden_size:
        problems.append(f"d_model {cfg.d_model} != the teacher's hidden_size {tc.hidden_size}")
    if cfg.n_heads != tc.num_attention_heads:
        problems.append(
            f"n_heads {cfg.n_heads} != the teacher's num_attention_heads {tc.num_attention_heads}"
        )
    if cfg.mlp_ratio * cfg.d_model != tc.intermediate_size:
        problems.append(
            f"mlp_ratio * d_model = {cfg.mlp_ratio * cfg.d_model} != the teacher's intermediate_size "
            f"{tc.intermediate_size}"
        )
    if cfg.vocab_size != tc.vocab_size:
        problems.append(f"vocab_size {cfg.vocab_size} != the teacher's vocab_size {tc.vocab_size}")
    n_pos, L = t_emb.position_embeddings.weight.shape[0], student.spiking.pos_emb.weight.shape[0]
    if n_pos < L:
        problems.append(f"context_length {L} exceeds the teacher's {n_pos} positions")
    if problems:  # every check before the first copy: a refused call leaves the student as it was
        raise ValueError("cannot start the student from the teacher's layers: " + "; ".join(problems))
    spiking = student.spiking
    for b, li in enumerate(layers):
        blk, tl = spiking.blocks[b], t_layers[li]
        att = tl.attention
        qkv = torch.cat([att.self.query.weight, att.self.key.weight, att.self.value.weight], dim=0)  # (3D, D)
        blk.w_qkv.weight.copy_(qkv)
        blk.w_o.weight.copy_(att.output.dense.weight)  # (D, D)
        blk.w_1.weight.copy_(tl.intermediate.dense.weight)  # (4D, D)
        blk.w_2.weight.copy_(tl.output.dense.weight)  # (D, 4D)
    tok = t_emb.word_embeddings.weight.float()  # (V, D)
    tok = tok - tok.mean(0, keepdim=True)
    scale = float(getattr(cfg, "embed_init_std", 1.0)) / float(tok.std().clamp_min(1e-12))
    spiking.tok_emb.weight.copy_(tok * scale)
    pos = t_emb.position_embeddings.weight.float()  # (P, D)
    spiking.pos_emb.weight.copy_(pos[:L] * scale)
    return {"blocks": dict(enumerate(layers)), "embeddings": True}
