"""Where the spiking LM's gap to the float Transformer comes from: a float GPT morphed towards the spiking block.

``python benchmarks/lm_morph.py --switch in_relu --switch qkv_ln`` trains the float baseline of
``benchmarks/lm.py`` (same data, optimiser, schedule and seed) with some of the spiking block's structural
choices switched on, in float arithmetic (ReLU where the spiking block has LIF neurons), and prints
``{"switches": [...], "steps": 600, "val_loss": 2.36}`` as its last stdout line. Comparing runs separates the
cost of the block's structure from the cost of spikes (the spiking model itself: ``benchmarks/lm.py``). It
trains on the benchmark's train part (the first 80 % of the text) and scores the validation part (the next
10 %) only: it is a tool for choosing the block, so it never reads the test part.

Switches (each mirrors one part of ``evospikenet/models/spiking_lm/block.py``):

* ``in_relu``: block inputs ``relu(LN(u))`` (the binary input populations keep only the positive side);
* ``mlp_ln``: ``relu(LN(W_1 h))`` in the MLP, without biases (the hidden population's LayerNorm);
* ``qkv_ln`` / ``qk_ln``: LayerNorm over D on q, k and v / on q and k only;
* ``qkv_relu``: q, k, v non-negative (binary spikes); ``v_relu``: v only;
* ``center``: queries minus their mean over each head's channels (``attn_center``);
* ``ao_gain``: attention output ``relu(1.5 o)`` (``attn_out_gain``); ``ao_ln``: ``relu(LN(o))`` (first design);
* ``emb_scale``: embeddings of std 0.02 times 50 (``embed_scale``); ``emb_std1``: embeddings of std 1.0;
* ``head_bias``: a bias on the LM head.

Measured figures are in docs/spiking_lm.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import types
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import lm as lm_bench  # noqa: E402  (benchmarks/lm.py: the same train / evaluate loop)

from evospikenet.data.text import LM_SPLIT, load_tiny_shakespeare, load_tokenizer  # noqa: E402

SWITCHES = (
    "in_relu",
    "mlp_ln",
    "qkv_ln",
    "qk_ln",
    "qkv_relu",
    "v_relu",
    "center",
    "ao_gain",
    "ao_ln",
    "emb_scale",
    "emb_std1",
    "head_bias",
)


class MorphBlock(nn.Module):
    def __init__(self, d: int, n_heads: int, sw: frozenset) -> None:
        super().__init__()
        self.sw, self.n_heads = sw, n_heads
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d, bias=False)
        self.proj = nn.Linear(d, d, bias=False)
        mlp_ln = "mlp_ln" in sw
        self.fc1 = nn.Linear(d, 4 * d, bias=not mlp_ln)
        self.fc2 = nn.Linear(4 * d, d, bias=not mlp_ln)
        self.ln_q, self.ln_k, self.ln_v, self.ln_o = (nn.LayerNorm(d) for _ in range(4))
        self.ln_hidden = nn.LayerNorm(4 * d)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        sw, (B, L, D), H = self.sw, h.shape, self.n_heads  # h: (B, L, D)
        x = self.ln1(h)
        x = F.relu(x) if "in_relu" in sw else x
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        if "qkv_ln" in sw or "qk_ln" in sw:
            q, k = self.ln_q(q), self.ln_k(k)
        if "qkv_ln" in sw:
            v = self.ln_v(v)
        if "qkv_relu" in sw:
            q, k = F.relu(q), F.relu(k)
        if "qkv_relu" in sw or "v_relu" in sw:
            v = F.relu(v)
        q, k, v = (t.view(B, L, H, D // H).transpose(1, 2) for t in (q, k, v))  # (B, H, L, dh)
        if "center" in sw:
            q = q - q.mean(dim=-1, keepdim=True)
        o = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(B, L, D)
        if "ao_ln" in sw:
            o = F.relu(self.ln_o(o))
        elif "ao_gain" in sw:
            o = F.relu(1.5 * o)
        h = h + self.proj(o)
        x = self.ln2(h)
        x = F.relu(x) if "in_relu" in sw else x
        z = self.fc1(x)
        z = F.relu(self.ln_hidden(z)) if "mlp_ln" in sw else F.gelu(z)
        return h + self.fc2(z)


class MorphLM(nn.Module):
    def __init__(self, vocab: int, d: int, n_layers: int, n_heads: int, context: int, sw: frozenset) -> None:
        super().__init__()
        self.tok_emb, self.pos_emb = nn.Embedding(vocab, d), nn.Embedding(context, d)
        self.blocks = nn.ModuleList(MorphBlock(d, n_heads, sw) for _ in range(n_layers))
        self.ln_f = nn.LayerNorm(d)
        self.head = nn.Linear(d, vocab, bias="head_bias" in sw)
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, std=0.02)
                if isinstance(m, nn.Linear) and m.bias is not None:
                    nn.init.zeros_(m.bias)
        if "emb_std1" in sw:
            nn.init.normal_(self.tok_emb.weight, std=1.0)
            nn.init.normal_(self.pos_emb.weight, std=1.0)
        self.embed_scale = 50.0 if "emb_scale" in sw else 1.0

    def forward(self, ids: torch.Tensor, labels: torch.Tensor | None = None):
        L = ids.shape[1]
        h = self.embed_scale * (self.tok_emb(ids) + self.pos_emb(torch.arange(L, device=ids.device))[None])
        for block in self.blocks:
            h = block(h)
        logits = self.head(self.ln_f(h))  # (B, L, V)
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1))
        return logits, loss


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--switch", action="append", default=[], choices=SWITCHES, help="repeatable")
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--context", type=int, default=128)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--warmup", type=int, default=30)
    p.add_argument("--eval-windows", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument(
        "--log-every", type=int, default=0, help="log the training loss every N steps (0: 10 times)"
    )
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    tok = load_tokenizer("byte")
    train_ids, val_ids, _test = load_tiny_shakespeare(tok, fractions=LM_SPLIT)  # test: never scored here
    torch.manual_seed(args.seed)
    model = MorphLM(len(tok), 128, 2, 4, args.context, frozenset(args.switch))
    loop = types.SimpleNamespace(**vars(args))
    lm_bench.train(model, train_ids, loop, False, args.seed)
    res = {"switches": sorted(args.switch), "steps": args.steps}
    res.update(lm_bench.evaluate(model, val_ids, loop, False, "val"))
    print(json.dumps(res))
    return res


if __name__ == "__main__":
    main()
