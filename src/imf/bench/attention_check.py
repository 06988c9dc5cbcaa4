"""Which SDPA kernels a call runs: the check that attention never materialises an n×m score matrix.

``torch.nn.functional.scaled_dot_product_attention`` dispatches to a fused kernel (flash or memory-
efficient: scores live in tiles) or to its math fallback (the full score matrix). The profiler names the
kernel of every call; a decode whose attention all runs on fused kernels shows no
``_scaled_dot_product_attention_math`` event.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from torch.profiler import ProfilerActivity, profile

from imf.bench.profile import native_output_filtered

MATH_FALLBACK = "aten::_scaled_dot_product_attention_math"


def sdpa_kernels(fn: Callable[[], object]) -> dict[str, int]:
    """Run ``fn`` once under the profiler; calls per SDPA backend op (the dispatcher entry excluded)."""
    with native_output_filtered(), profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    counts = Counter(e.name for e in prof.events()
                     if "scaled_dot_product" in e.name and e.name != "aten::scaled_dot_product_attention")
    return dict(sorted(counts.items()))


def attention_report(fn: Callable[[], object]) -> dict:
    """SDPA kernels of ``fn`` and whether any call fell back to the score-materialising math path."""
    kernels = sdpa_kernels(fn)
    return {"sdpa_kernels": kernels, "math_fallback_calls": kernels.get(MATH_FALLBACK, 0),
            "fused_only": kernels.get(MATH_FALLBACK, 0) == 0 and bool(kernels)}
