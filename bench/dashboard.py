"""``bench dashboard``: optuna-dashboard on a run's storage, each trial's record shown as its user attributes.

A trial keeps its record (index, score, cost, ground truth, ...) in one user attribute, ``result``, written
once per trial (see ``bench.search._objective``). The dashboard is served a view of the storage in which
every scalar of that record is a user attribute of its own (``arch``, ``index``, ``val_acc``, ``test_acc``,
``params``, ...): they appear as columns of its trials table, numbers sortable. The run's storage is not
changed; what the dashboard writes (notes, marks) goes to it unchanged.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Container, Sequence
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import optuna
from optuna.storages import BaseStorage
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

#: The user attribute holding a trial's record: ``bench.search._objective.RESULT_ATTR`` (not imported here, which
#: would bring torch with it).
RESULT_ATTR = "result"
SQLITE_HEADER = b"SQLite format 3\x00"
_SCALARS = (str, int, float, bool)


def flat_record(trial: FrozenTrial) -> FrozenTrial:
    """``trial`` with the scalars of its ``result`` record as user attributes of their own (the original is
    left as it is)."""
    record = trial.user_attrs.get(RESULT_ATTR)
    if not isinstance(record, dict):
        return trial
    attrs = {k: v for k, v in trial.user_attrs.items() if k != RESULT_ATTR}
    for key, value in record.items():
        if key not in attrs and isinstance(value, _SCALARS):
            attrs[key] = value
    flat = copy.copy(trial)
    flat.user_attrs = attrs
    return flat


class RecordView(BaseStorage):
    """A storage that reads trials through :func:`flat_record` and passes everything else to ``storage``."""

    def __init__(self, storage: BaseStorage) -> None:
        self.storage = storage

    def get_trial(self, trial_id: int) -> FrozenTrial:
        return flat_record(self.storage.get_trial(trial_id))

    def get_all_trials(
        self, study_id: int, deepcopy: bool = True, states: Container[TrialState] | None = None
    ) -> list[FrozenTrial]:
        return [flat_record(t) for t in self.storage.get_all_trials(study_id, deepcopy=deepcopy, states=states)]

    def get_best_trial(self, study_id: int) -> FrozenTrial:
        return flat_record(self.storage.get_best_trial(study_id))

    # --- everything else as the storage does it ---

    def create_new_study(self, directions: Sequence[StudyDirection], study_name: str | None = None) -> int:
        return self.storage.create_new_study(directions, study_name)

    def delete_study(self, study_id: int) -> None:
        self.storage.delete_study(study_id)

    def set_study_user_attr(self, study_id: int, key: str, value: Any) -> None:
        self.storage.set_study_user_attr(study_id, key, value)

    def set_study_system_attr(self, study_id: int, key: str, value: Any) -> None:
        self.storage.set_study_system_attr(study_id, key, value)

    def get_study_id_from_name(self, study_name: str) -> int:
        return self.storage.get_study_id_from_name(study_name)

    def get_study_name_from_id(self, study_id: int) -> str:
        return self.storage.get_study_name_from_id(study_id)

    def get_study_directions(self, study_id: int) -> list[StudyDirection]:
        return self.storage.get_study_directions(study_id)

    def get_study_user_attrs(self, study_id: int) -> dict[str, Any]:
        return self.storage.get_study_user_attrs(study_id)

    def get_study_system_attrs(self, study_id: int) -> dict[str, Any]:
        return self.storage.get_study_system_attrs(study_id)

    def get_all_studies(self) -> list[optuna.study.FrozenStudy]:
        return self.storage.get_all_studies()

    def create_new_trial(self, study_id: int, template_trial: FrozenTrial | None = None) -> int:
        return self.storage.create_new_trial(study_id, template_trial)

    def set_trial_param(self, trial_id: int, param_name: str, param_value_internal: float, distribution) -> None:
        self.storage.set_trial_param(trial_id, param_name, param_value_internal, distribution)

    def get_trial_id_from_study_id_trial_number(self, study_id: int, trial_number: int) -> int:
        return self.storage.get_trial_id_from_study_id_trial_number(study_id, trial_number)

    def set_trial_state_values(self, trial_id: int, state: TrialState, values: Sequence[float] | None = None) -> bool:
        return self.storage.set_trial_state_values(trial_id, state, values)

    def set_trial_intermediate_value(self, trial_id: int, step: int, intermediate_value: float) -> None:
        self.storage.set_trial_intermediate_value(trial_id, step, intermediate_value)

    def set_trial_user_attr(self, trial_id: int, key: str, value: Any) -> None:
        self.storage.set_trial_user_attr(trial_id, key, value)

    def set_trial_system_attr(self, trial_id: int, key: str, value: Any) -> None:
        self.storage.set_trial_system_attr(trial_id, key, value)


def storage_of(target: str) -> str:
    """The storage a run folder, a sweep folder of one shared storage, a journal file, a SQLite file or a URL
    names: a journal path or a database URL; an error of one line otherwise."""
    if "://" in target:
        return target
    path = Path(target).expanduser()
    if path.is_file():
        with path.open("rb") as fh:
            sqlite = fh.read(len(SQLITE_HEADER)) == SQLITE_HEADER
        return f"sqlite:///{path.resolve()}" if sqlite else str(path.resolve())
    if not path.is_dir():
        raise FileNotFoundError(f"{target} is neither a run folder, a journal file nor a database URL")
    for name, key in (("manifest.json", "storage"), ("sweep.json", "storage")):
        try:
            stored = json.loads((path / name).read_text()).get(key)
        except (OSError, ValueError, AttributeError):
            continue
        if stored == "memory":
            raise ValueError(f"the run in {path} kept its study in memory: there is no storage to show")
        if stored and "***" in stored:
            raise ValueError(f"{path / name} records the storage {stored} without its password; pass the URL")
        if stored:
            return stored
    if (path / "journal.log").is_file():
        return str((path / "journal.log").resolve())
    raise FileNotFoundError(
        f"{path} holds no manifest.json or journal.log: not a run folder (a sweep of one journal per study: "
        "pass one of its run folders)"
    )


def open_view(storage: str) -> RecordView:
    """The storage ``storage`` names, opened without creating anything, seen through :class:`RecordView`."""
    if "://" not in storage:
        if not Path(storage).is_file():
            raise FileNotFoundError(f"journal file {storage} does not exist")
        backend = optuna.storages.journal.JournalFileBackend(storage)
        return RecordView(optuna.storages.JournalStorage(backend))
    if storage.startswith("sqlite:///"):
        database = storage.removeprefix("sqlite:///")
        if not Path(database).is_file():
            raise FileNotFoundError(f"SQLite file {database} does not exist")
    try:
        rdb = optuna.storages.RDBStorage(storage, skip_compatibility_check=True, skip_table_creation=True)
    except Exception as err:  # SQLAlchemy's and the drivers' errors
        raise ValueError(f"cannot open storage {storage}: {str(err).strip().splitlines()[0]}") from None
    return RecordView(rdb)


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # the dashboard polls: one line each is noise
        pass


def dashboard_server(target: str, *, host: str = "127.0.0.1", port: int = 8080) -> tuple[WSGIServer, str]:
    """optuna-dashboard on the storage ``target`` names, listening (not yet serving) on ``host:port`` (0: any free
    port); the server and the storage it shows."""
    try:
        import optuna_dashboard
    except ImportError as err:
        raise ImportError("bench dashboard needs optuna-dashboard: pip install 'diswot-bench[dashboard]'") from err
    storage = storage_of(target)
    app = optuna_dashboard.wsgi(open_view(storage))
    try:
        server = make_server(host, port, app, handler_class=_QuietHandler)
    except OSError as err:
        raise ValueError(f"cannot listen on {host}:{port}: {err.strerror or err}; pick another --port") from None
    return server, storage
