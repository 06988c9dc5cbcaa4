"""Speed and memory benchmarks: per-stage timings against the machine's own matmul peak,
streaming decode against ``forward``, peak memory, training throughput, and a GPU suite.

Used by ``imf bench`` and ``benchmarks/speed.py`` (the same code); ``benchmarks/gpu.sh`` runs the GPU suite.
"""

from imf.bench.report import format_report, write_json
from imf.bench.runner import BenchOptions, run_benchmark

__all__ = ["BenchOptions", "run_benchmark", "format_report", "write_json"]
