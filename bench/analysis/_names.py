"""How papers name what the suite calls by its registry keys: proxies, samplers and ground truths.

Tables meant for a paper show these names ("NSGA-II", "DisWOT"); a key without one is shown as it is, so a
newly registered proxy or sampler still appears, under its key.
"""

from __future__ import annotations

PROXY_NAMES: dict[str, str] = {
    "at": "AT",
    "cc": "CC",
    "diswot": "DisWOT",
    "diswot_gram": "DisWOT (Gram)",
    "diswot_relation": "DisWOT relation",
    "diswot_semantic": "DisWOT semantic",
    "diswot_semantic_gram": "DisWOT semantic (Gram)",
    "epe_nas": "EPE-NAS",
    "fisher": "Fisher",
    "fitnet": "FitNet",
    "flops": "FLOPs",
    "grad_norm": "Grad. norm",
    "grasp": "GraSP",
    "ickd": "ICKD",
    "jacob_cov": "Jacob. cov.",
    "kd": "KD",
    "l2_norm": "L2 norm",
    "nst": "NST",
    "nwot": "NASWOT",
    "oracle": "Oracle (val. acc.)",
    "params": "#Params",
    "pkt": "PKT",
    "plain": "Plain",
    "rkd": "RKD",
    "snip": "SNIP",
    "sp": "SP",
    "synflow": "SynFlow",
    "zen": "Zen-score",
    "zico": "ZiCo",
}

SAMPLER_NAMES: dict[str, str] = {
    "brute": "Brute force",
    "gp": "GP (BO)",
    "nsga2": "NSGA-II",
    "qmc": "QMC (Sobol)",
    "random": "Random",
    "re": "RE",
    "tpe": "TPE",
}

DATASET_NAMES: dict[str, str] = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100", "ImageNet16-120": "ImageNet16-120"}

METRIC_NAMES: dict[str, str] = {"test_acc": "test acc.", "val_acc": "valid. acc."}


def proxy_name(key: str) -> str:
    return PROXY_NAMES.get(key, key)


def sampler_name(key: str) -> str:
    return SAMPLER_NAMES.get(key, key)


def truth_name(dataset: str, metric: str) -> str:
    """E.g. ``CIFAR-10 test acc. (%)``."""
    return f"{DATASET_NAMES.get(dataset, dataset)} {METRIC_NAMES.get(metric, metric)} (%)"
