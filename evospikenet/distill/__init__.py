"""LLM data distillation: teachers, cached soft labels, synthetic data, the distillation loss and
the per-token hidden-state loss."""

from .augment import AugmentConfig, augment_texts
from .block_init import init_blocks_from_bert
from .features import BlockTaps, default_layer_map, hidden_state_loss
from .finetune import accuracy_of, finetune_classifier, project_embeddings
from .loss import DistillParams, distillation_loss, soft_kl
from .soft_labels import label_texts, load_soft_labels, soft_label_dir, texts_digest
from .static_embeddings import EMBEDDING_KINDS, load_teacher_embeddings, static_token_embeddings
from .synthetic import SynthConfig, generate_synthetic, normalise
from .teacher import Teacher, find_minilm_dir, model_revision, resolve_tokenizer_dir

__all__ = [
    "Teacher",
    "AugmentConfig",
    "augment_texts",
    "find_minilm_dir",
    "model_revision",
    "label_texts",
    "load_soft_labels",
    "soft_label_dir",
    "texts_digest",
    "SynthConfig",
    "generate_synthetic",
    "normalise",
    "DistillParams",
    "distillation_loss",
    "soft_kl",
    "finetune_classifier",
    "project_embeddings",
    "static_token_embeddings",
    "load_teacher_embeddings",
    "EMBEDDING_KINDS",
    "resolve_tokenizer_dir",
    "init_blocks_from_bert",
    "BlockTaps",
    "default_layer_map",
    "hidden_state_loss",
    "accuracy_of",
]
