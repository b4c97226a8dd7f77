"""The Transformer side of the suite (AutoDistil): the teacher, the corpus, GLUE, SuperLM training and the
ground truth of distilled, fine-tuned students."""

from . import _truth  # noqa: F401  (the "autodistil" ground truth bench.ground_truth registers)
from ._batches import TEXT_DATASETS, encode_pairs, text_proxy_batch, trim
from ._corpus import TokenCorpus, build_corpus, glue_sentences, load_corpus, strip_markup, token_batch, wiki_articles
from ._finetune import (
    FinetuneResult,
    FinetuneSettings,
    finetune,
    glue_average,
    majority_result,
    part_rows,
    score_classifier,
    train_classifier,
)
from ._glue import TASKS, Example, glue_metrics, read_task, task_path
from ._ground_truth import (
    METRICS,
    GroundTruthSettings,
    build_ground_truth,
    default_table_path,
    evaluate,
    heldout_sample,
    measure_student,
    sample_students,
    truncated_teacher,
)
from ._headline import HeadlineSettings, Pick, narrowed_arch, select, truncated_layers
from ._headline_run import headline_tables, run_headline
from ._protocol import Protocol, TaskOutcome, choose_lr, majority_outcomes, run_protocol, run_task, summary_row
from ._report import average_label, majority_model_row, model_row, protocol_table
from ._superlm import SuperLMSettings, TrainResult, train_superlm
from ._teacher import TEACHER_NAME, load_hf_teacher, load_tokenizer, teacher_folder, teacher_network, teacher_state
from ._training import distil_student, heldout_loss, resolve_device, student_loss, teacher_targets, warmup_lr

__all__ = [
    "METRICS",
    "TASKS",
    "TEACHER_NAME",
    "TEXT_DATASETS",
    "Example",
    "FinetuneResult",
    "FinetuneSettings",
    "GroundTruthSettings",
    "HeadlineSettings",
    "Pick",
    "Protocol",
    "SuperLMSettings",
    "TaskOutcome",
    "TokenCorpus",
    "TrainResult",
    "average_label",
    "build_corpus",
    "build_ground_truth",
    "choose_lr",
    "default_table_path",
    "distil_student",
    "encode_pairs",
    "evaluate",
    "finetune",
    "glue_average",
    "glue_metrics",
    "glue_sentences",
    "headline_tables",
    "heldout_loss",
    "heldout_sample",
    "load_corpus",
    "load_hf_teacher",
    "load_tokenizer",
    "majority_model_row",
    "majority_outcomes",
    "majority_result",
    "measure_student",
    "model_row",
    "narrowed_arch",
    "part_rows",
    "protocol_table",
    "read_task",
    "resolve_device",
    "run_headline",
    "run_protocol",
    "run_task",
    "sample_students",
    "score_classifier",
    "select",
    "strip_markup",
    "student_loss",
    "summary_row",
    "task_path",
    "teacher_folder",
    "teacher_network",
    "teacher_state",
    "teacher_targets",
    "text_proxy_batch",
    "token_batch",
    "train_classifier",
    "train_superlm",
    "trim",
    "truncated_layers",
    "truncated_teacher",
    "warmup_lr",
    "wiki_articles",
]
