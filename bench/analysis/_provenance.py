"""Where a table came from: the command, a hash of its settings and inputs, package versions, the commit.

Nothing here depends on the time or the machine's state beyond the code and its inputs, so the same
command on the same inputs writes the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import platform
import shlex
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import metadata
from pathlib import Path

#: Packages whose versions can change a table's numbers or its rendering.
VERSIONED = ("diswot-bench", "numpy", "scipy", "pandas", "optuna", "matplotlib", "torch")
_REPO = Path(__file__).resolve().parents[2]


def package_versions(names: Sequence[str] = VERSIONED) -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


@cache
def git_commit(repo: Path = _REPO) -> str:
    """The checkout's commit, marked ``+changes`` when tracked files differ from it."""
    try:
        head = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True, check=True, timeout=30
        ).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(repo), "diff", "--quiet", "HEAD", "--"], timeout=30).returncode != 0
    except (OSError, subprocess.SubprocessError):
        return "unknown (not a git checkout)"
    return f"{head}+changes" if dirty else head


def command_line(argv: Sequence[str] | None = None) -> str:
    """The command as the user typed it, with the console script's path shortened to its name."""
    argv = list(sys.argv if argv is None else argv)
    if not argv:
        return ""
    program = Path(argv[0]).name
    if program == "__main__.py":
        program = "python -m bench"
    return " ".join([program, *(shlex.quote(a) for a in argv[1:])])


@dataclass(frozen=True)
class Provenance:
    """What a table records about its making. ``config`` holds the settings and the inputs' digests."""

    command: str
    config: Mapping[str, object]
    versions: Mapping[str, str] = field(default_factory=package_versions)
    commit: str = field(default_factory=git_commit)

    @classmethod
    def capture(
        cls, config: Mapping[str, object], *, command: str | None = None, commit: str | None = None
    ) -> Provenance:
        """``commit`` replaces the checkout's commit, e.g. for tables that must not change with it."""
        made = cls(command=command_line() if command is None else command, config=dict(config))
        return made if commit is None else cls(made.command, made.config, made.versions, commit)

    @property
    def config_hash(self) -> str:
        text = json.dumps(self.config, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def lines(self) -> list[str]:
        """The provenance as plain lines, for a comment block at the top of every output file."""
        return [
            f"made by: {self.command}",
            f"config hash: {self.config_hash} = sha256 of {json.dumps(self.config, sort_keys=True, default=str)}",
            "versions: " + ", ".join(f"{k} {v}" for k, v in self.versions.items()),
            f"git commit: {self.commit}",
        ]
