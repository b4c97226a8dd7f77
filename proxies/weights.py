"""Weight-magnitude proxies: scores of the initial weights alone."""

from __future__ import annotations

from spaces import FeatureNetwork

from ._base import Proxy, ProxyInputs
from ._nets import finite, layer_weights
from ._registry import register_proxy


@register_proxy("l2_norm")
class L2Norm(Proxy):
    """Sum over convolution and linear layers of the L2 norm of the weight (NAS-Bench-Suite-Zero)."""

    description = "sum over layers of the weight's L2 norm (NAS-Bench-Suite-Zero)"
    needs_data = False

    def score(self, student: FeatureNetwork, inputs: ProxyInputs) -> float:
        return finite(sum(w.detach().norm() for w in layer_weights(student)), "l2_norm")
