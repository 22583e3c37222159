"""The feature term of the distillation module: the frozen teacher encoder whose per-token hidden states
the student's layers learn to carry (``evospikenet.distill.hidden_state_loss`` has the equation)."""

from __future__ import annotations

import lightning.pytorch as pl
import torch

from evospikenet.distill import resolve_tokenizer_dir

__all__ = ["FeatureTeacher"]


class FeatureTeacher:
    """The frozen encoder, the student's layer outputs and the trained ``D -> E`` maps of the feature loss.

    A spiking LM student's layers are its blocks, read by ``BlockTaps`` (time-averaged residual stream); a
    float ``transformers`` student (the float twin) is run with ``output_hidden_states`` and its layers'
    outputs are read from there. The maps live on ``module`` (``module.feature_proj``: trained and
    checkpointed with it); the encoder is kept off it, so it is neither trained nor written into checkpoints
    or the exported student.
    """

    def __init__(self, module: pl.LightningModule, teacher_dir: str, layers: list[int] | None):
        from transformers import AutoModel

        from evospikenet.distill import BlockTaps, default_layer_map

        cfg = module.model.config
        blocks = getattr(getattr(module.model, "spiking", None), "blocks", None)
        n_student = len(blocks) if blocks is not None else getattr(cfg, "num_hidden_layers", None)
        if not n_student:
            raise ValueError(
                "feature_teacher needs a student with layers to read: the spiking LM or a transformers "
                f"model with num_hidden_layers ({type(module.model).__name__} has neither)"
            )
        encoder = AutoModel.from_pretrained(resolve_tokenizer_dir(teacher_dir)).eval().requires_grad_(False)
        v_s, v_t = getattr(cfg, "vocab_size", None), getattr(encoder.config, "vocab_size", None)
        if v_s != v_t:
            raise ValueError(
                f"feature_teacher reads the student's token ids, so the vocabularies must agree: student "
                f"vocab_size {v_s}, teacher {v_t}; give the student the teacher's tokenizer"
            )
        n_teacher = int(encoder.config.num_hidden_layers)
        layers = list(layers) if layers is not None else default_layer_map(n_student, n_teacher)
        if len(layers) != n_student or not all(0 <= m <= n_teacher for m in layers):
            raise ValueError(
                f"feature_layers must give one teacher layer in [0, {n_teacher}] per student layer "
                f"({n_student}), got {layers}"
            )
        e, d = int(encoder.config.hidden_size), int(cfg.hidden_size)
        module.feature_proj = torch.nn.ModuleList(torch.nn.Linear(d, e) for _ in layers)
        self.encoder, self.layers, self.module = encoder, layers, module
        self.taps = BlockTaps(blocks) if blocks is not None else None

    @property
    def forward_kwargs(self) -> dict:
        """What the student's forward call needs so that ``loss`` finds its layers' outputs."""
        return {} if self.taps is not None else {"output_hidden_states": True}

    def loss(self, out, input_ids: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        """``L_feat`` of the student's forward pass ``out`` just made on ``input_ids`` (B, L)."""
        from evospikenet.distill import hidden_state_loss

        student = self.taps.take() if self.taps is not None else out.hidden_states[1:]  # K x (B, L, D)
        if next(self.encoder.parameters()).device != input_ids.device:
            self.encoder.to(input_ids.device)
        with torch.no_grad():
            hidden = self.encoder(
                input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True
            ).hidden_states  # (n_teacher + 1) x (B, L, E)
        terms = [
            hidden_state_loss(s, hidden[m], p, attention_mask)
            for s, m, p in zip(student, self.layers, self.module.feature_proj)
        ]
        return torch.stack(terms).mean()
