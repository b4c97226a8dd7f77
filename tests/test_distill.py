"""Training and distillation on real CIFAR-10 images, with budgets small enough for a CPU: learning happens,
KD pulls the student toward the teacher, resume restores the exact state, packed students train exactly as
alone, sharded workers neither skip nor repeat a student, and the results feed the ground truth and tables."""

from __future__ import annotations

import copy
import json
import multiprocessing
import os
import shutil
import subprocess

import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from typer.testing import CliRunner

from bench.cli import app
from bench.distill import DeviceImages, Recipe
from bench.distill._kdbench import KDBench, remaining, run_worker, write_table
from bench.distill._losses import objective, semantic_loss
from bench.distill._run import recipe_data, seeded_students, train_architectures, train_teacher
from bench.ground_truth import load_ground_truth
from bench.scoring import ScoreCache
from spaces import Features, get_space

runner = CliRunner()
SMALL = dict(batch_size=32, lr=0.05, train_images=256, test_images=200)
S1_STUDENTS = ("111", "113", "131")
# Two cheap NAS-Bench-201 cells (one 1x1 convolution each), so that packing and resuming stay fast on a CPU.
NB201_PAIR = [
    "|nor_conv_1x1~0|+|skip_connect~0|avg_pool_3x3~1|+|skip_connect~0|none~1|avg_pool_3x3~2|",
    "|avg_pool_3x3~0|+|skip_connect~0|none~1|+|none~0|skip_connect~1|nor_conv_1x1~2|",
]
TINY = dict(batch_size=32, lr=0.05, train_images=128, test_images=100)


@pytest.fixture(scope="module")
def teacher_file(tmp_path_factory, data_root):
    """A ResNet-20 trained for two epochs on 512 images: weak, but a real trained teacher file."""
    path = tmp_path_factory.mktemp("teacher") / "resnet20-cifar10.pt"
    recipe = Recipe(epochs=2, batch_size=32, lr=0.05, train_images=512, test_images=200, seed=3)
    train_teacher("resnet20", recipe, path, space="resnet_s1", data_root=data_root)
    return path


def kd_recipe(teacher_file, **changes) -> Recipe:
    fields = dict(SMALL, epochs=1, loss="kd", teacher="resnet20", teacher_weights=str(teacher_file))
    fields.update(changes)
    return Recipe(**fields)


# --- recipes and data ---------------------------------------------------------------------------------


def test_recipe_rejects_bad_settings_and_hashes_what_matters():
    with pytest.raises(ValueError, match=r"unknown loss 'mse'\. Valid choices: ce, kd"):
        Recipe(loss="mse")
    with pytest.raises(ValueError, match="distils from a teacher"):
        Recipe(loss="kd")
    with pytest.raises(ValueError, match="alpha"):
        Recipe(loss="kd", teacher="resnet20", alpha=1.5)
    base = Recipe()
    assert base.hash() == Recipe().hash() and base.hash() != Recipe(epochs=10).hash()
    kd = Recipe(loss="kd+sp", teacher="resnet20", beta=2.0)
    # Vanilla training ignores distillation settings: its results are shared by every KD variant.
    assert kd.vanilla().hash() == base.hash() == Recipe(temperature=8.0).hash()
    assert Recipe.from_dict(kd.as_dict()) == kd
    with pytest.raises(ValueError, match="unknown recipe fields bogus"):
        Recipe.from_dict({"bogus": 1})


def test_device_data_augments_per_image_and_reproducibly(data_root):
    data = DeviceImages.load("cifar10", "train", limit=64, seed=0, root=data_root)
    assert data.images.dtype == torch.uint8 and data.images.shape == (64, 3, 32, 32)
    plain = next(data.batches(64))[0]
    reference = (data.images.float() - data.mean) / data.std
    assert torch.equal(plain, reference)

    def batch(seed: int) -> torch.Tensor:
        return next(data.batches(16, generator=torch.Generator().manual_seed(seed), augment=True))[0]

    assert torch.equal(batch(1), batch(1)) and not torch.equal(batch(1), batch(2))
    crops = data.augment(data.images[:256], torch.Generator().manual_seed(0))
    assert crops.shape == data.images.shape
    # Every output is a shifted (and maybe mirrored) window of its own image: its centre pixels exist there.
    image, crop = data.images[0], crops[0]
    padded = F.pad(image, (4, 4, 4, 4))
    windows = [padded[:, y : y + 32, x : x + 32] for y in range(9) for x in range(9)]
    assert any(torch.equal(crop, w) or torch.equal(crop, w.flip(2)) for w in windows)
    test = DeviceImages.load("cifar10", "test", limit=200, root=data_root)
    assert len(set(test.labels.tolist())) == 10  # a subset of the class-sorted test split covers every class


# --- losses -------------------------------------------------------------------------------------------


def _features(seed: int, classes: int = 10, batch: int = 8, width: int = 16) -> Features:
    gen = torch.Generator().manual_seed(seed)
    pre_pool = torch.randn(batch, width, 4, 4, generator=gen, requires_grad=True)
    embedding = pre_pool.mean((2, 3))
    logits = embedding @ torch.randn(width, classes, generator=gen)
    return Features(stages=[pre_pool], pre_pool=pre_pool, embedding=embedding, logits=logits)


@pytest.mark.parametrize("loss", ["kd", "kd+diswot", "kd+sp", "kd+ickd"])
def test_distillation_losses_vanish_on_the_teacher_and_pull_toward_it(loss):
    recipe = Recipe(loss=loss, teacher="t", alpha=1.0)
    labels = torch.arange(8) % 10
    teacher = _features(0)
    same = objective(recipe, _features(0), teacher, labels)
    other_features = _features(1)
    other = objective(recipe, other_features, teacher, labels)
    assert float(same.detach()) == pytest.approx(0.0, abs=1e-5) and float(other.detach()) > 1e-3
    other.backward()
    assert other_features.pre_pool.grad.abs().sum() > 0


def test_diswot_semantic_term_is_the_published_formula_on_the_closed_form_gradient():
    labels = torch.arange(8) % 10
    student, teacher = _features(1), _features(0)
    # The classifier gradient by autograd equals the closed form the loss uses.
    weight = torch.randn(16, 10, generator=torch.Generator().manual_seed(5), requires_grad=True)
    emb = student.embedding.detach()
    (autograd,) = torch.autograd.grad(F.cross_entropy(emb @ weight, labels), weight)
    from bench.distill._losses import classifier_gradient

    closed = classifier_gradient(Features([], emb, emb, emb @ weight), labels)
    assert torch.allclose(closed, autograd.T, atol=1e-6)
    assert float(semantic_loss(student, teacher, labels).detach()) > 0
    with pytest.raises(ValueError, match="C=16 channels and the teacher's C=32"):
        objective(Recipe(loss="kd+ickd", teacher="t"), student, _features(0, width=32), labels)


# --- training -----------------------------------------------------------------------------------------


def test_training_learns_real_images(data_root):
    recipe = Recipe(epochs=4, batch_size=32, lr=0.05, train_images=1024, test_images=500)
    _, result = train_architectures("resnet_s1", ["111"], recipe, data_root=data_root)
    assert len(result.history) == 4
    assert result.test_acc[0] > 20.0  # chance is 10 %
    assert result.history[-1].train_loss[0] < result.history[0].train_loss[0]


def test_kd_moves_the_students_logits_toward_the_teachers(teacher_file, data_root):
    from bench.distill._run import distillation_teacher

    # Pure KD at temperature 1 minimises KL(teacher || student) on the training images, which is measured
    # there, with batch statistics as in training.
    recipe = kd_recipe(teacher_file, alpha=1.0, epochs=2, temperature=1.0)
    teacher = distillation_teacher(recipe, "resnet_s1", "cpu")
    train_data = recipe_data(recipe, "cpu", data_root)[0]
    images = train_data.normalise(train_data.images)

    def divergence(net) -> float:
        net.train()
        with torch.no_grad():
            student, target = net(images).log_softmax(1), teacher(images).log_softmax(1)
            return float(F.kl_div(student, target, log_target=True, reduction="batchmean"))

    before = divergence(seeded_students("resnet_s1", ["113"], recipe)[0])
    distilled, _ = train_architectures("resnet_s1", ["113"], recipe, data_root=data_root)
    vanilla, _ = train_architectures("resnet_s1", ["113"], recipe.vanilla(), data_root=data_root)
    assert divergence(distilled[0]) < 0.25 * before
    assert divergence(distilled[0]) < 0.5 * divergence(vanilla[0])


@pytest.mark.parametrize("pack", [True, False], ids=["packed", "one-by-one"])
def test_resume_restores_the_exact_state(tmp_path, data_root, pack):
    recipe = Recipe(epochs=2, **TINY)
    archs = NB201_PAIR
    straight, uninterrupted = train_architectures("nb201", archs, recipe, data_root=data_root, pack=pack)
    path = tmp_path / "checkpoint.pt"
    _, partial = train_architectures(
        "nb201", archs, recipe, data_root=data_root, checkpoint=path, stop_after=1, pack=pack
    )
    assert len(partial.history) == 1
    resumed, result = train_architectures("nb201", archs, recipe, data_root=data_root, checkpoint=path, pack=pack)
    assert result.resumed_from == 1
    assert [h.test_acc for h in result.history] == [h.test_acc for h in uninterrupted.history]
    for net, ref in zip(resumed, straight):
        for (name, a), b in zip(net.state_dict().items(), ref.state_dict().values()):
            assert torch.equal(a, b), name
    with pytest.raises(ValueError, match="belongs to another run"):
        train_architectures("nb201", archs, Recipe(epochs=3, **TINY), data_root=data_root, checkpoint=path, pack=pack)


def test_packed_students_train_exactly_as_alone():
    torch.set_default_dtype(torch.float64)
    try:
        space = get_space("nb201")
        torch.manual_seed(0)
        nets = [space.build(space.arch_at(i), 10) for i in (0, 123, 5000, 15624)]
        alone = copy.deepcopy(nets)
        initial = copy.deepcopy(nets)
        packed = space.packed(nets)
        images, labels = torch.randn(6, 3, 32, 32), torch.arange(6)

        def steps(forward, params) -> None:
            opt = torch.optim.SGD(params, lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4)
            for _ in range(2):
                opt.zero_grad()
                sum(F.cross_entropy(f.logits, labels) for f in forward(images)).backward()
                opt.step()

        steps(packed.forward_features, packed.parameters())
        for net in alone:
            steps(lambda x, n=net: [n.forward_features(x)], net.parameters())
        for net, ref, start in zip(packed.unpack(), alone, initial):
            for (name, a), b in zip(net.state_dict().items(), ref.state_dict().values()):
                assert torch.allclose(a, b, atol=1e-9, rtol=0), name
            assert not torch.equal(net.stem[0].weight, start.stem[0].weight)
    finally:
        torch.set_default_dtype(torch.float32)


def test_packed_training_matches_training_one_by_one(data_root):
    # Exact in float64 (above). In float32 rounding differs and longer training amplifies it, so the
    # trainer's packed path is compared over a few steps, where the two agree to rounding.
    recipe = Recipe(epochs=2, batch_size=32, lr=0.05, train_images=64, test_images=50)
    archs = NB201_PAIR
    initial = seeded_students("nb201", archs, recipe)
    packed, a = train_architectures("nb201", archs, recipe, data_root=data_root, pack=True)
    alone, b = train_architectures("nb201", archs, recipe, data_root=data_root, pack=False)
    assert a.history[-1].train_loss == pytest.approx(b.history[-1].train_loss, rel=1e-5)
    assert a.test_acc == b.test_acc
    for x, y, start in zip(packed, alone, initial):
        assert not torch.equal(x.classifier.weight, start.classifier.weight)
        for (name, u), v, w in zip(x.state_dict().items(), y.state_dict().values(), start.state_dict().values()):
            if u.is_floating_point():
                # Packed and one by one differ by rounding only: a thousandth of how far training moved it.
                assert (u - v).abs().max() <= 1e-3 * (v - w).abs().max() + 1e-7, name


def test_a_teacher_file_loads_as_trained_weights(teacher_file):
    from bench.teachers import load_teacher

    state = torch.load(teacher_file, weights_only=True)
    assert state["teacher"] == "resnet20" and state["dataset"] == "cifar10" and state["test_acc"] > 10
    net = load_teacher("resnet20", space="nb201", dataset="cifar10", num_classes=10, seed=0, weights=teacher_file)
    assert not net.training
    assert torch.equal(net.classifier.weight, state["state_dict"]["classifier.weight"])


# --- the distillation benchmark ---------------------------------------------------------------------


def _worker(bench: KDBench, root: str) -> None:
    torch.set_num_threads(1)
    run_worker(bench, data_root=root, poll=0.2)


def test_sharded_workers_neither_skip_nor_repeat_students(tmp_path, teacher_file, data_root):
    bench = KDBench(
        space="resnet_s1",
        archs=S1_STUDENTS,
        recipe=kd_recipe(teacher_file, train_images=64, test_images=50),
        storage=f"sqlite:///{tmp_path / 'kd.db'}",
        workdir=tmp_path / "work",
        group_size=1,
    )
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_worker, args=(bench, str(data_root))) for _ in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=300)
        assert w.exitcode == 0
    log = [json.loads(line) for line in (tmp_path / "work" / "trained.jsonl").read_text().splitlines()]
    trained = sorted((entry["mode"], arch) for entry in log for arch in entry["archs"])
    assert trained == sorted((m, a) for m in ("vanilla", "kd") for a in S1_STUDENTS)
    assert remaining(ScoreCache(bench.storage), bench) == 0
    table = pd.read_csv(write_table(bench, tmp_path / "kd.csv"), dtype={"arch": str})
    assert list(table["arch"]) == list(S1_STUDENTS)
    assert table["gain"].tolist() == pytest.approx((table["kd_acc"] - table["vanilla_acc"]).tolist(), abs=1e-3)


def test_a_dead_workers_students_are_taken_over_and_a_failure_is_recorded(tmp_path, teacher_file, data_root):
    bench = KDBench(
        space="resnet_s1",
        archs=S1_STUDENTS[:2],
        recipe=kd_recipe(teacher_file, train_images=64, test_images=50),
        storage=f"sqlite:///{tmp_path / 'kd.db'}",
        workdir=tmp_path / "work",
        group_size=2,
    )
    dead = ScoreCache(bench.storage)
    dead.owner = f"{dead.owner.split(':')[0]}:999999999:gone"  # a process of this host that does not exist
    assert dead.claim(bench.config("vanilla"), "111", bench.proxy("vanilla"))
    run_worker(bench, data_root=data_root, max_groups=1)
    cache = ScoreCache(bench.storage)
    assert cache.get(bench.config("vanilla"), "111", bench.proxy("vanilla")).ok
    # A student whose training fails (a teacher file that is not one) is stored as failed, and work goes on.
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a checkpoint")
    failing = KDBench(**{**bench.__dict__, "recipe": kd_recipe(broken, train_images=64, test_images=50)})
    run_worker(failing, data_root=data_root, max_groups=2)
    record = cache.get(failing.config("kd"), "111", failing.proxy("kd"))
    assert record.status == "failed" and "not a readable PyTorch weights file" in record.error


def test_kd_table_is_a_ground_truth_and_feeds_correlate_and_the_report(tmp_path, data_root):
    space = get_space("nb201")
    archs = [space.to_str(space.arch_at(i)) for i in (10, 200, 3000, 8000)]
    table = pd.DataFrame(
        {
            "arch": archs,
            "dataset": "cifar10",
            "vanilla_acc": [60.0, 70.0, 65.0, 50.0],
            "kd_acc": [66.0, 71.0, 64.0, 58.0],
        }
    ).assign(gain=lambda t: t.kd_acc - t.vanilla_acc, params=1, flops=1, recipe="r", vanilla_recipe="v")
    path = tmp_path / "kd.csv"
    table.to_csv(path, index=False)
    (tmp_path / "kd.recipe.json").write_text(json.dumps({"recipe_hash": "abc123"}))
    truth = load_ground_truth(f"kd:{path}", space="nb201")
    assert truth.default_metric == "kd_acc" and "recipe abc123" in truth.name
    assert truth.accuracy("cifar10").tolist() == [66.0, 71.0, 64.0, 58.0]
    with pytest.raises(ValueError, match="needs the table"):
        load_ground_truth("kd", space="nb201")
    scores = pd.DataFrame(
        [
            {"index": space.index(space.parse(a)), "arch": a, "proxy": p, "score": s, "seconds": 0.0, "status": "ok"}
            for a, good in zip(archs, [3.0, 4.0, 2.0, 1.0])
            for p, s in (("diswot", good), ("synflow", -good))
        ]
    )
    for seed in (0, 1):
        scores.assign(seed=seed, dataset="cifar10", space="nb201").to_csv(tmp_path / f"s{seed}.csv", index=False)
    result = runner.invoke(app, ["correlate", str(tmp_path / "s0.csv"), "-g", f"kd:{path}", "--json"])
    assert result.exit_code == 0, result.output
    out = tmp_path / "report"
    budget = str(space.cost(space.parse(archs[2]), 10).params)
    result = runner.invoke(
        app,
        ["distill-report", str(tmp_path / "s0.csv"), str(tmp_path / "s1.csv"), "-g", f"kd:{path}",
         "--max-params", budget, "--out", str(out), "--data-root", str(data_root)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    picks = pd.read_csv(out / "distillation_picks.csv")
    fits = [a for a in archs if space.cost(space.parse(a), 10).params <= int(budget)]
    assert set(picks["arch"]) <= set(fits)
    diswot = picks[picks["selector"] == "diswot"]
    best = max(fits, key=lambda a: dict(zip(archs, [3.0, 4.0, 2.0, 1.0]))[a])
    assert set(diswot["arch"]) == {best}
    assert set(picks[picks["selector"] == "best KD (trained, bound)"]["kd_acc"]) == {
        max(table.set_index("arch").loc[fits, "kd_acc"])
    }
    assert (out / "distillation.tex").is_file() and (out / "distillation.md").is_file()
    if shutil.which("pdflatex") is None:
        if os.environ.get("CI"):
            pytest.fail("pdflatex is missing on CI: .ci/run installs texlive")
        return
    from tests.test_analysis_render import DOCUMENT

    (out / "doc.tex").write_text(DOCUMENT % "distillation.tex")
    compiled = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "doc.tex"],
        cwd=out, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert compiled.returncode == 0, compiled.stdout[-3000:]


def test_cli_trains_a_teacher_and_distils_with_clear_errors(tmp_path, teacher_file, data_root):
    common = ["--epochs", "1", "--train-images", "64", "--test-images", "50", "--batch-size", "32",
              "--data-root", str(data_root)]  # fmt: skip
    out = tmp_path / "student"
    result = runner.invoke(
        app,
        ["distill", "--space", "resnet_s1", "--arch", "111", "--teacher", str(teacher_file), "--loss", "kd+diswot",
         "--out", str(out), *common],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    record = json.loads((out / "result.json").read_text())
    assert record["recipe"]["loss"] == "kd+diswot" and len(record["test_acc"]) == 1
    assert (out / "student0.pt").is_file()
    bad = runner.invoke(app, ["distill", "--arch", "111", "--space", "resnet_s1", "--teacher", str(teacher_file),
                              "--loss", "ce", *common])  # fmt: skip
    assert bad.exit_code == 2 and "choose --loss from kd" in bad.stderr
    wrong = runner.invoke(app, ["distill", "--arch", "111", "--space", "resnet_s1", "--teacher", str(teacher_file),
                                "--dataset", "cifar100", *common])  # fmt: skip
    assert wrong.exit_code == 2 and "trained on cifar10, not on cifar100" in wrong.stderr
    missing = runner.invoke(app, ["kd-bench", "--teacher", str(tmp_path / "none.pt"), "--sample", "2", *common])
    assert missing.exit_code == 2 and "does not exist" in missing.stderr


def test_a_heartbeat_keeps_a_long_claim_from_being_taken_over(tmp_path):
    import time

    url = f"sqlite:///{tmp_path / 'claims.db'}"
    worker, other = ScoreCache(url, stale_after=1.0), ScoreCache(url, stale_after=1.0)
    assert worker.claim("t1", "111", "train:ce")
    time.sleep(0.6)
    worker.touch("t1", [("111", "train:ce")])
    time.sleep(0.6)
    assert not other.claim("t1", "111", "train:ce")  # renewed 0.6 s ago: still the worker's
    time.sleep(1.1)
    assert other.claim("t1", "111", "train:ce")  # silent for longer than stale_after: taken over


def test_train_teacher_refuses_a_teacher_that_takes_no_images(tmp_path, data_root):
    result = runner.invoke(app, ["train-teacher", "--model", "minilm-l6", "--epochs", "1", "--train-images", "64",
                                 "--out", str(tmp_path / "t.pt"), "--data-root", str(data_root)])  # fmt: skip
    assert result.exit_code == 2
    assert "not an image classifier to train; choices: nb201-best, resnet110, resnet20, resnet56" in result.stderr
