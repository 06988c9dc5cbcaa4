"""Speed and memory of IMF on this machine: the same library code as ``imf bench``.

Usage::

    python benchmarks/speed.py [--presets tiny-64,small-128,paper-256] [--threads 2] \\
        [--json benchmarks/results/speed_cpu.json] [--quick] [--device cpu]

Per preset and stage: wall time (median after warm-up), frames/s, GFLOP/s and the fraction of this
machine's fp32 matmul peak (measured in the same run); decoding at batch 1 and 8; peak memory of decoding
(fresh subprocess per measurement); streaming decode vs forward per frame; training samples/s for
tiny-64 and small-128, in fp32 and, where the CPU has fast bf16 (detected), under bf16 autocast.
``python benchmarks/speed.py --help`` lists every option.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # run from a checkout without install


def main(argv: list[str] | None = None) -> int:
    from imf.cli.bench import add_arguments, run
    from imf.errors import user_errors

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except user_errors() as e:
        print(f"speed.py: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
