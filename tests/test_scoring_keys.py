"""What a score's cache key holds, and which failures the cache keeps."""

from __future__ import annotations

from pathlib import Path

import pytest

import proxies
from bench.scoring import FAILED, OK, TRANSIENT, ScoreCache, ScoreRecord, ScoringConfig, score_key


def test_the_key_holds_the_device_type_and_precision_but_not_the_device_index() -> None:
    cpu = ScoringConfig(device="cpu")
    assert cpu.key_fields()["device"] == "cpu" and cpu.key_fields()["precision"] == "fp32"
    assert ScoringConfig(device="cuda:0").key() == ScoringConfig(device="cuda:1").key()
    assert ScoringConfig(device="cuda").key() != cpu.key()
    assert ScoringConfig(device="cuda", precision="tf32").key() != ScoringConfig(device="cuda").key()


def test_precision_is_checked() -> None:
    with pytest.raises(ValueError, match="Valid choices: fp32, tf32"):
        ScoringConfig(precision="fp16")
    with pytest.raises(ValueError, match="CUDA devices only"):
        ScoringConfig(device="cpu", precision="tf32")


def test_the_key_changes_with_the_proxys_version(monkeypatch: pytest.MonkeyPatch) -> None:
    before = score_key("c", "arch", "synflow")
    cls = proxies.PROXIES.factory("synflow").proxy_class
    monkeypatch.setattr(cls, "version", cls.version + 1)
    assert proxies.proxy_version("synflow") == cls.version
    assert score_key("c", "arch", "synflow") != before


def test_transient_failures_are_not_kept_deterministic_ones_are(tmp_path: Path) -> None:
    cache = ScoreCache(f"sqlite:///{tmp_path / 'c.db'}")

    def record(arch: str, status: str) -> ScoreRecord:
        score = 1.0 if status == OK else None
        return ScoreRecord(arch=arch, proxy="params", score=score, seconds=0.1, status=status, config="k")

    for arch, status in (("a", OK), ("b", FAILED), ("c", TRANSIENT)):
        assert cache.claim("k", arch, "params")
        cache.put(record(arch, status))
    assert {(r.arch, r.status) for r in cache.records("k")} == {("a", OK), ("b", FAILED)}
    assert cache.claim("k", "c", "params"), "the next run computes a transient failure again"
    cache.put_many([record("c", TRANSIENT)])
    assert cache.get("k", "c", "params") is None and cache.claim("k", "c", "params")
    assert cache.configs() == {}
    cache.register_config("k", {"space": "nb201"})
    cache.register_config("k", {"space": "nb201"})
    assert cache.configs() == {"k": {"space": "nb201"}}


def test_workers_on_one_list_share_it_rather_than_queue_behind_a_claim(tmp_path: Path, nb201) -> None:
    """A pair another (live) worker is computing is passed over and waited for at the end: the rest of the list
    is scored meanwhile, and the other worker's result is the one returned."""
    import threading
    import time

    from bench.scoring import Scorer

    url = f"sqlite:///{tmp_path / 'scores.db'}"
    other, mine = ScoreCache(url), ScoreCache(url)
    scorer = Scorer(ScoringConfig(batch_size=4), ["params"], cache=mine)
    archs = [nb201.arch_at(i) for i in range(3)]
    held = nb201.to_str(archs[0])
    assert other.claim(scorer.config_key, held, "params", 0)  # another worker is on the first cell
    result: list = []
    worker = threading.Thread(target=lambda: result.extend(scorer.score_many(archs)), daemon=True)
    worker.start()
    deadline = time.monotonic() + 30
    rest = [nb201.to_str(a) for a in archs[1:]]
    while len(other.get_many(scorer.config_key, rest, ["params"])) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(other.get_many(scorer.config_key, rest, ["params"])) == 2, "the list waited behind the claimed cell"
    assert worker.is_alive()  # still waiting for the other worker's cell
    theirs = ScoreRecord(arch=held, proxy="params", score=-1.0, seconds=0.0, status=OK, error="", index=0,
                         config=scorer.config_key)  # fmt: skip
    other.put(theirs)
    worker.join(30)
    assert not worker.is_alive()
    assert [r.arch for r in result] == [nb201.to_str(a) for a in archs]  # in the list's order
    assert result[0].score == -1.0  # the other worker's result, not computed twice
