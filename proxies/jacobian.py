"""Input-Jacobian proxies: how differently a network responds to the images of one batch.

Both take ``J``, the gradient of the summed logits w.r.t. each input image (NASWOT's first version,
Mellor et al. 2020), flattened to one row per image, and score the correlations between rows.
"""

from __future__ import annotations

import numpy as np
import torch

from spaces import FeatureNetwork

from ._base import Proxy, ProxyError, ProxyInputs
from ._nets import finite
from ._registry import register_proxy

#: The reference's regulariser of eigenvalues and correlations.
EPS = 1e-5


def input_jacobian(net: FeatureNetwork, images: torch.Tensor) -> np.ndarray:
    """One row per image: d(sum of the image's logits)/d(image), float64."""
    x = images.detach().clone().requires_grad_(True)
    out = net(x)
    (jac,) = torch.autograd.grad(out, x, torch.ones_like(out), allow_unused=True)
    if jac is None:
        raise ProxyError("the output does not depend on the input (no path from input to output)")
    return jac.flatten(1).double().cpu().numpy()


def _correlations(rows: np.ndarray, what: str) -> np.ndarray:
    if (rows.std(axis=1) == 0).any():
        raise ProxyError(f"{what}: a Jacobian row is constant, so the output does not depend on that input image")
    return np.corrcoef(rows)


@register_proxy("jacob_cov")
class JacobCov(Proxy):
    """``-sum_i log(v_i + k) + 1/(v_i + k)`` over the eigenvalues ``v`` of the Jacobian rows' correlation
    matrix, ``k = 1e-5`` (zero-cost-nas's ``jacob_cov``). Eigenvalues come from ``eigvalsh``, the
    symmetric solver, where the reference used the general ``eig`` on the same symmetric matrix."""

    description = "Jacobian covariance: -sum(log(v+k) + 1/(v+k)) over correlation eigenvalues (Mellor et al. 2020)"

    def score(self, student: FeatureNetwork, inputs: ProxyInputs) -> float:
        eigenvalues = np.linalg.eigvalsh(_correlations(input_jacobian(student, inputs.images), "jacob_cov"))
        shifted = eigenvalues + EPS
        if (shifted <= 0).any():
            raise ProxyError(f"jacob_cov: correlation matrix has eigenvalue {eigenvalues.min():.3g} below -{EPS}")
        return finite(-np.sum(np.log(shifted) + 1.0 / shifted), "jacob_cov")


@register_proxy("epe_nas")
class EPENAS(Proxy):
    """EPE-NAS (Lopes et al. 2021), as NAS-Bench-Suite-Zero computes it: for each class ``c`` seen in the
    batch, ``s_c = sum log(|corr| + k)`` over the correlation matrix of that class's Jacobian rows;
    score ``sum_c |s_c|`` for at most 100 classes, else ``sum_{c, c'} |s_c - s_c'| / (#classes)`` with
    each ``s_c`` divided by the class's number of images."""

    description = "EPE-NAS: per-class Jacobian correlation score (Lopes et al. 2021)"
    needs_labels = True

    def score(self, student: FeatureNetwork, inputs: ProxyInputs) -> float:
        jac = input_jacobian(student, inputs.images)
        labels = inputs.labels.cpu().numpy()
        per_class: dict[int, float] = {}
        for c in np.unique(labels):
            rows = jac[labels == c]
            if len(rows) == 1:
                # The reference's np.corrcoef of one row is the scalar 1; its len() fails in the
                # many-class branch, which then skips the class.
                if inputs.num_classes > 100:
                    continue
                corrs = np.ones((1, 1))
            else:
                corrs = _correlations(rows, "epe_nas")
            s = float(np.sum(np.log(np.abs(corrs) + EPS)))
            if inputs.num_classes > 100:
                s /= len(corrs)
            per_class[int(c)] = s
        if not per_class:
            raise ProxyError("epe_nas: no class has two images in the batch")
        values = np.array(list(per_class.values()))
        if inputs.num_classes <= 100:
            total = np.abs(values).sum()
        else:
            total = np.abs(values[:, None] - values[None, :]).sum() / len(values)
        return finite(total, "epe_nas")
