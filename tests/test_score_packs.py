"""Score packs: exported, imported, checked, refused by name when their proxy or key format is not this suite's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bench.cli import app
from bench.scoring import PackError, ScoreCache, Scorer, ScoringConfig, export_pack, import_pack, read_pack
from proxies import PROXIES

PROXY_NAMES = ["params", "l2_norm", "synflow"]
runner = CliRunner()


@pytest.fixture
def filled(tmp_path: Path, nb201) -> tuple[ScoreCache, list]:
    cache = ScoreCache(f"sqlite:///{tmp_path / 'made.db'}")
    archs = [nb201.arch_at(i) for i in (0, 1, 341, 6111, 9000)]  # 0 and 341 are not connected
    Scorer(ScoringConfig(batch_size=4), PROXY_NAMES, cache=cache).score_many(archs)
    return cache, archs


def test_a_pack_fills_another_cache_and_nothing_is_computed_again(tmp_path: Path, filled) -> None:
    cache, archs = filled
    summary = export_pack(cache, tmp_path / "pack")
    assert summary.rows == 15 and summary.proxies == dict.fromkeys(sorted(PROXY_NAMES), 5)
    other = ScoreCache(f"sqlite:///{tmp_path / 'other.db'}")
    assert import_pack(tmp_path / "pack", other).imported == 15
    again = import_pack(tmp_path / "pack", other)
    assert again.imported == 0 and again.already_present == 15
    made = {(r.arch, r.proxy): r for r in cache.records()}
    looked_up = Scorer(ScoringConfig(batch_size=4), PROXY_NAMES, cache=other).score_many(archs)
    assert all(r.cached for r in looked_up)
    for record in looked_up:
        original = made[record.arch, record.proxy]
        assert (record.score, record.status, record.seconds) == (original.score, original.status, original.seconds)


def test_the_same_scores_make_the_same_bytes(tmp_path: Path, filled) -> None:
    cache, _ = filled
    export_pack(cache, tmp_path / "a")
    export_pack(cache, tmp_path / "b")
    assert (tmp_path / "a" / "scores.csv.gz").read_bytes() == (tmp_path / "b" / "scores.csv.gz").read_bytes()
    manifest, frame = read_pack(tmp_path / "a")
    assert set(frame["space"]) == {"nb201"} and set(frame["device"]) == {"cpu"} and set(frame["precision"]) == {"fp32"}
    assert manifest["proxies"] == dict.fromkeys(sorted(PROXY_NAMES), 1)


def test_a_pack_of_another_proxy_version_is_refused_by_name(tmp_path, filled, monkeypatch) -> None:
    cache, _ = filled
    export_pack(cache, tmp_path / "pack")
    monkeypatch.setattr(PROXIES.factory("synflow").proxy_class, "version", 2)
    other = ScoreCache(f"sqlite:///{tmp_path / 'other.db'}")
    with pytest.raises(PackError, match=r"synflow \(pack version 1, this suite's 2\).*--exclude synflow"):
        import_pack(tmp_path / "pack", other)
    assert other.records() == []  # nothing mixed in
    summary = import_pack(tmp_path / "pack", other, exclude=["synflow"])
    assert summary.imported == 10 and summary.excluded == {"synflow": 5}
    assert {r.proxy for r in other.records()} == {"params", "l2_norm"}


def test_damaged_edited_and_foreign_packs_are_refused(tmp_path: Path, filled) -> None:
    cache, _ = filled
    pack = tmp_path / "pack"
    export_pack(cache, pack)
    other = ScoreCache(f"sqlite:///{tmp_path / 'other.db'}")
    manifest = json.loads((pack / "pack.json").read_text())
    key = next(iter(manifest["configs"]))
    manifest["configs"][key]["batch_size"] = 64  # fields that no longer give their key
    (pack / "pack.json").write_text(json.dumps(manifest))
    with pytest.raises(PackError, match="another key under this version"):
        import_pack(pack, other)
    data = bytearray((pack / "scores.csv.gz").read_bytes())
    data[-5] ^= 0xFF
    (pack / "scores.csv.gz").write_bytes(bytes(data))
    with pytest.raises(PackError, match="does not match the digest"):
        import_pack(pack, other)
    with pytest.raises(PackError, match="is not a score pack"):
        import_pack(tmp_path, other)


def test_cli_exports_imports_and_says_why_it_refuses(tmp_path: Path, filled) -> None:
    cache, _ = filled
    result = runner.invoke(app, ["scores", "export", "--cache", cache.url, "--out", str(tmp_path / "p"),
                                 "--proxy", "params,synflow"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "wrote 10 scores of 2 proxies" in result.stdout
    target = f"sqlite:///{tmp_path / 't.db'}"
    result = runner.invoke(app, ["scores", "import", str(tmp_path / "p"), "--cache", target])
    assert result.exit_code == 0 and "imported 10 scores" in result.stdout
    result = runner.invoke(app, ["scores", "import", str(tmp_path / "nope"), "--cache", target])
    assert result.exit_code == 2 and result.stderr.strip().startswith("error:") and "not a score pack" in result.stderr
