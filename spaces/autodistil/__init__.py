"""AutoDistil (Xu et al., 2022): Transformer students of all-MiniLM-L6-v2 in K=3 sub-spaces, and SuperLMs."""

from spaces._lazy import lazy_exports

from ._arch import (
    HEAD_SIZE,
    PAD_ID,
    SEQ_LEN,
    SPACE_PREFIX,
    SUBSPACES,
    TEACHER_ARCH,
    TEACHER_SHAPE,
    UNION,
    UNION_SIZE,
    Grid,
    GridUnion,
    StudentArch,
    check_arch,
    grid_for,
    kept_layers,
    parse_arch_str,
    scaled_grids,
    to_arch_str,
)
from ._extra import INSTALL_TEXT, missing_text_packages, require_text_extra
from ._shape import MINILM_SHAPE, TEACHER_ENV, TeacherShape, configured_shape, shape_of
from ._space import DATASET_CLASSES, AutoDistilSpace

# The networks, relations and SuperLMs need torch: imported on first use.
_ON_USE = {
    **dict.fromkeys(
        ("TransformerFeatures", "TransformerStudent", "embedding_params", "network_cost", "non_embedding_params"),
        "._network",
    ),
    **dict.fromkeys(
        ("RELATION_HEADS", "relation_kl", "relation_log_probs", "relation_loss", "teacher_relations"), "._relation"
    ),
    **dict.fromkeys(("load_sliced", "slice_state", "sliced_student"), "._slicing"),
    **dict.fromkeys(
        ("SUPERLM_DIR_ENV", "SuperLM", "checkpoint_path", "grid_of", "load_superlm", "sandwich", "superlm_dir"),
        "._superlm",
    ),
}
__getattr__, __dir__ = lazy_exports(__name__, _ON_USE)

__all__ = [
    "DATASET_CLASSES",
    "HEAD_SIZE",
    "INSTALL_TEXT",
    "MINILM_SHAPE",
    "PAD_ID",
    "RELATION_HEADS",
    "SEQ_LEN",
    "SPACE_PREFIX",
    "SUBSPACES",
    "SUPERLM_DIR_ENV",
    "TEACHER_ARCH",
    "TEACHER_ENV",
    "TEACHER_SHAPE",
    "UNION",
    "UNION_SIZE",
    "AutoDistilSpace",
    "Grid",
    "GridUnion",
    "StudentArch",
    "SuperLM",
    "TeacherShape",
    "TransformerFeatures",
    "TransformerStudent",
    "check_arch",
    "checkpoint_path",
    "configured_shape",
    "embedding_params",
    "grid_for",
    "grid_of",
    "kept_layers",
    "load_sliced",
    "load_superlm",
    "missing_text_packages",
    "network_cost",
    "non_embedding_params",
    "parse_arch_str",
    "relation_kl",
    "relation_log_probs",
    "relation_loss",
    "require_text_extra",
    "sandwich",
    "scaled_grids",
    "shape_of",
    "slice_state",
    "sliced_student",
    "superlm_dir",
    "teacher_relations",
    "to_arch_str",
]
