"""AutoDistil (Xu et al., 2022): Transformer students of all-MiniLM-L6-v2 in K=3 sub-spaces, and SuperLMs."""

from ._arch import (
    HEAD_SIZE,
    PAD_ID,
    SEQ_LEN,
    SUBSPACES,
    TEACHER_ARCH,
    Grid,
    StudentArch,
    check_arch,
    kept_layers,
    parse_arch_str,
    to_arch_str,
)
from ._network import (
    TransformerFeatures,
    TransformerStudent,
    embedding_params,
    network_cost,
    non_embedding_params,
)
from ._relation import RELATION_HEADS, relation_kl, relation_log_probs, relation_loss, teacher_relations
from ._slicing import load_sliced, slice_state, sliced_student
from ._space import DATASET_CLASSES, AutoDistilSpace
from ._superlm import (
    SPACE_PREFIX,
    SUPERLM_DIR_ENV,
    SuperLM,
    checkpoint_path,
    grid_of,
    load_superlm,
    sandwich,
    superlm_dir,
)

__all__ = [
    "DATASET_CLASSES",
    "HEAD_SIZE",
    "PAD_ID",
    "RELATION_HEADS",
    "SEQ_LEN",
    "SPACE_PREFIX",
    "SUBSPACES",
    "SUPERLM_DIR_ENV",
    "TEACHER_ARCH",
    "AutoDistilSpace",
    "Grid",
    "StudentArch",
    "SuperLM",
    "TransformerFeatures",
    "TransformerStudent",
    "check_arch",
    "checkpoint_path",
    "embedding_params",
    "grid_of",
    "kept_layers",
    "load_sliced",
    "load_superlm",
    "network_cost",
    "non_embedding_params",
    "parse_arch_str",
    "relation_kl",
    "relation_log_probs",
    "relation_loss",
    "sandwich",
    "slice_state",
    "sliced_student",
    "superlm_dir",
    "teacher_relations",
    "to_arch_str",
]
