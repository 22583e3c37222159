"""Model cards for published EvoSpikeNet models, written with ``huggingface_hub.ModelCard``.

A card states the task, data sets, metrics, spike rates and energy estimates (from the core's accounting:
``OpCounter`` SOPs/MACs priced by ``EnergyModel``, measured on a probe input at publish time), the license,
the recipe that made the model, a usage snippet that runs with ``pip install evospikenet`` and nothing else, and
the ``exports/`` of the release (format, file, verification figure, command).
Metrics and the recipe come from the model directory when present (``metrics.json``, ``recipe.yaml`` or
``recipe.json``) or from the caller.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from huggingface_hub import ModelCard, ModelCardData

from evospikenet.energy import HOROWITZ_45NM, OpCounter

from .models import DIGITS_TYPE, verify_dir

__all__ = ["TASKS", "probe_stats", "build_card", "exports_section"]

# model type -> (pipeline tag, task sentence, data sets)
TASKS = {
    "spiking_evospikenet": (
        "text-generation",
        "language modelling (spiking Transformer LM)",
        ["tiny_shakespeare"],
    ),
    "multimodal_evospikenet": (
        "image-text-to-text",
        "questions about 8x8 digit images and ECG beats (multimodal spiking LM)",
        ["sklearn-digits", "mit-bih-arrhythmia"],
    ),
    "evospikenet_ecg_snn": ("other", "ECG beat classification, AAMI N/S/V/F/Q", ["mit-bih-arrhythmia"]),
    "evospikenet_ecg_resnet18": (
        "other",
        "ECG beat classification (float ResNet-18-1D baseline)",
        ["mit-bih-arrhythmia"],
    ),
    DIGITS_TYPE: (
        "image-classification",
        "8x8 digit classification with an STDP-trained SNN",
        ["sklearn-digits"],
    ),
}


@torch.no_grad()
def probe_stats(model, model_type: str) -> dict:
    """Spike rate and compute energy per sample of one probe forward (seeded random input)."""
    g = torch.Generator().manual_seed(0)
    if model_type == "spiking_evospikenet":
        c = model.config
        ids = torch.randint(0, c.vocab_size, (1, min(16, c.context_length)), generator=g)
        s = model(input_ids=ids).spike_stats.summary()
        return {
            "spike_rate": s["spike_rate"],
            "energy_per_token_j": s["energy_per_token_j"],
            "sops_per_token": s["sops_per_token"],
        }
    if model_type == "multimodal_evospikenet":
        c = model.config
        ids = torch.tensor([model.tokenizer.prompt("what digit is this?")])
        image = torch.randint(0, 17, (1, c.image_channels, c.image_size, c.image_size), generator=g).float()
        s = model(input_ids=ids, images=image).spike_stats.summary()
        return {
            "spike_rate": s["spike_rate"],
            "energy_per_token_j": s["energy_per_token_j"],
            "sops_per_token": s["sops_per_token"],
        }
    if model_type.startswith("evospikenet_ecg"):
        c = model.config
        x, rr = torch.randn(4, c.window, generator=g), torch.rand(4, c.n_rr, generator=g)
        counter = OpCounter()
        if model_type == "evospikenet_ecg_snn":
            _, spikes = model(x, rr, counter=counter, return_spikes=True)
            rate = float(sum(s.sum() for s in spikes) / sum(s.numel() for s in spikes))
        else:
            model(x, rr, counter=counter)
            rate = None
        rep = HOROWITZ_45NM.report(counter)
        return {
            "spike_rate": rate,
            "energy_per_sample_j": rep.compute_j / 4,
            "sops_per_sample": counter.total_sops / 4,
            "macs_per_sample": counter.total_macs / 4,
        }
    # digits: Bernoulli inputs at the model's rate, one dense input projection per step
    net = model.net
    spikes_in = torch.bernoulli(torch.full((net.time_steps, 4, net.n_in), 0.25), generator=g)
    _, s = model(spikes_in, return_spikes=True)
    sops = float(spikes_in.sum()) * net.n_exc / 4
    return {
        "spike_rate": float(s.mean()),
        "energy_per_sample_j": HOROWITZ_45NM.compute_j(sops=sops),
        "sops_per_sample": sops,
    }


def _usage(repo_id: str, model_type: str) -> str:
    if model_type == "spiking_evospikenet":
        return (
            "```python\nimport evospikenet  # registers the spiking LM with transformers' Auto classes\n"
            "from transformers import AutoModelForCausalLM, AutoTokenizer\n\n"
            f'model = AutoModelForCausalLM.from_pretrained("{repo_id}", use_safetensors=True)\n'
            f'tok = AutoTokenizer.from_pretrained("{repo_id}")\n'
            'ids = tok("The spiking network", return_tensors="pt").input_ids\n'
            "print(tok.decode(model.generate(ids, max_new_tokens=20)[0]))\n```\n"
        )
    return (
        "```python\nfrom hub import load_pretrained  # ships with evospikenet\n\n"
        f'model = load_pretrained("{repo_id}")  # verified safetensors, eval mode\n```\n'
        "or from the shell: `evospikenet-hub pull " + repo_id + "`\n"
    )


def _fmt(v) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _verification(v) -> str:
    if isinstance(v, str):
        return v
    return ", ".join(f"{k} {_fmt(x)}" for k, x in v.items())


def exports_section(rows: list[dict]) -> str:
    """The card's "Exports" section: one row per export with its verification figure and command."""
    if not rows:
        return ""
    lines = [
        "## Exports",
        "",
        "Built and verified when this model was published (`exports/verification.json` holds the figures);",
        "every file is listed with its SHA-256 in `evospikenet_manifest.json`, which `evospikenet-hub pull`",
        "checks before anything is loaded.",
        "",
        "| format | file | verification | command |",
        "|---|---|---|---|",
    ]
    for r in rows:
        f = f"`{r['file']}`" if r["file"] else "none"
        cmd = f"`{r['command']}`" if r["command"] else ""
        lines.append(f"| {r['format']} | {f} | {_verification(r['verification'])} | {cmd} |")
    return "\n".join(lines) + "\n"


def build_card(
    model_dir,
    repo_id: str,
    model=None,
    metrics: dict | None = None,
    recipe: str | None = None,
    license: str = "apache-2.0",
    stats: dict | None = None,
    exports: list[dict] | None = None,
) -> ModelCard:
    """A ``ModelCard`` for the model in ``model_dir`` as published under ``repo_id``."""
    d = Path(model_dir)
    cfg, mt = verify_dir(d)
    tag, task, datasets = TASKS[mt]
    if metrics is None and (d / "metrics.json").is_file():
        metrics = json.loads((d / "metrics.json").read_text())
    if recipe is None:
        for name in ("recipe.yaml", "recipe.json"):
            if (d / name).is_file():
                recipe = (d / name).read_text()
    if stats is None and model is not None:
        stats = probe_stats(model, mt)
    data = ModelCardData(
        license=license,
        library_name="evospikenet",
        pipeline_tag=tag,
        datasets=datasets,
        tags=["spiking-neural-network", "snn", "evospikenet", mt],
    )
    metric_rows = (
        "\n".join(f"| {k} | {_fmt(v)} |" for k, v in (metrics or {}).items()) or "| (none recorded) | |"
    )
    stat_rows = "\n".join(f"| {k} | {_fmt(v)} |" for k, v in (stats or {}).items()) or "| (not measured) | |"
    body = f"""
# {repo_id.split("/")[-1]}

An EvoSpikeNet model: {task}. Model type `{mt}`, weights in safetensors only.

## Data

{", ".join(datasets)}

## Metrics

| metric | value |
|---|---|
{metric_rows}

## Spike activity and energy

Measured on a probe input with the core's accounting (SOPs and MACs priced by the 45 nm Horowitz energy
model: compute energy only, memory traffic excluded).

| quantity | value |
|---|---|
{stat_rows}

## Recipe

```
{(recipe or "not recorded").strip()}
```

## Usage

{_usage(repo_id, mt)}
{exports_section(exports or [])}
## License

{license}
"""
    return ModelCard(f"---\n{data.to_yaml()}\n---\n{body}")
