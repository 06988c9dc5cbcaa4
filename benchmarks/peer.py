"""Per-frame decode speed against the only public peer, johndpope/IMF, in one process, in alternation.

Usage::

    python benchmarks/peer.py --peer-src DIR [--threads 2] [--repeats 5] [--warmup 1] \\
        [--stub torchvision,sklearn,wandb,colored_traceback] [--note TEXT] [--out benchmarks/results/peer.json]

``DIR`` is your own checkout of https://github.com/johndpope/IMF (its ``model.py`` must define ``IMFModel`` with
``decode_latent_tokens(f_r, t_r, t_c)``); nothing of it is vendored here. ``--stub`` names imports of their
code that only training or plotting needs (wandb, torchvision's EfficientNet, sklearn's t-SNE, colored_traceback):
where one is not installed it is replaced by an inert module, and the JSON lists which were.

Both models have random weights (speed only) and run at 256×256, batch 1, under ``torch.inference_mode``:

- ours: the paper-256 preset through the codec decoder's own path (``imf.codec.decoder.codec_pipeline(model,
  precision).decode_tokens(token, reference)``, i.e. ``IMF.decode``), the reference prepared once and cached;
- the peer: ``IMFModel.decode_latent_tokens(f_r, t_r, t_c)`` with the reference features f_r and token t_r
  computed once (its method decodes t_r's motion features again on every frame: that is its API).

Each runs in fp32 and, where this CPU has fast bf16 (``imf.precision.cpu_has_fast_bf16``: AVX512-BF16 / AMX,
confirmed by a probe; never assumed), under bf16 autocast. All runs alternate (ours fp32, ours bf16, peer fp32,
peer bf16, ours fp32, ...), so a load change on a shared machine hits them alike; the median is kept. GFLOP per
frame come from ``torch.utils.flop_counter.FlopCounterMode`` (``imf.info.flop_counter``, which also counts the
CPU flash-attention kernel) around one call of each; the share of peak is against this machine's measured
``torch.mm`` peak in the run's dtype (best call at the start and the end of the run, ``imf.bench.machine``).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import sys
import time
import types
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # run from a checkout without install

import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
GOAL, MOONSHOT = 3.0, 5.0
SIZE = 256
PEER_FILES = ("model.py", "vit.py", "resblocks.py", "lia_resblocks.py", "helper.py")


# ---- inert stand-ins for the peer's training-only imports ---------------------------------------------------------
class _Inert:
    """Any attribute, call or subscript of it is another inert object (a stand-in for an unused import)."""

    def __init__(self, *args, **kwargs):
        pass

    def __call__(self, *args, **kwargs):
        return _Inert()

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _Inert()


class _StubModule(types.ModuleType):
    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _Inert


class _StubFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Serves an inert module for each of ``names`` (and their submodules) that is not installed."""

    def __init__(self, names: set[str]):
        self.names = names
        self.used: set[str] = set()

    def find_spec(self, fullname, path=None, target=None):
        if fullname.split(".")[0] not in self.names:
            return None
        return importlib.machinery.ModuleSpec(fullname, self, is_package=True)

    def create_module(self, spec):
        module = _StubModule(spec.name)
        module.__path__ = []
        return module

    def exec_module(self, module):
        self.used.add(module.__name__.split(".")[0])


def import_peer(src: Path, stubs: set[str]):
    """The peer's ``model`` module from ``src`` (first on sys.path), with missing ``stubs`` made inert."""
    if not (src / "model.py").is_file():
        sys.exit(f"peer.py: error: {src} has no model.py (expected a checkout of github.com/johndpope/IMF)")
    missing = {name for name in stubs if importlib.util.find_spec(name) is None}
    finder = _StubFinder(missing)
    sys.meta_path.append(finder)  # after the real finders: only what is not installed reaches it
    sys.path.insert(0, str(src))
    os.environ.setdefault("MPLBACKEND", "Agg")
    try:
        import model as peer_model  # noqa: PLC0415  (their module name)
    except ImportError as e:
        sys.exit(f"peer.py: error: importing the peer's model.py failed ({e}); if that module is only needed for "
                 f"training or plots, add it to --stub")
    finally:
        sys.meta_path.remove(finder)
        sys.path.remove(str(src))
    if not hasattr(getattr(peer_model, "IMFModel", None), "decode_latent_tokens"):
        sys.exit(f"peer.py: error: {src / 'model.py'} has no IMFModel.decode_latent_tokens")
    return peer_model, sorted(finder.used)


# ---- measurement ----------------------------------------------------------------------------------------------------
def _params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _count_flops(fn) -> tuple[int, dict[str, int]]:
    """Total FLOPs of one call of ``fn`` and the FLOPs per outermost module it calls (named by class: the
    decode methods are not modules, so their parts are the roots; instances of one class are summed)."""
    from imf.info import flop_counter

    with flop_counter() as counter:
        fn()
    per_module = {name: int(sum(ops.values())) for name, ops in counter.get_flop_counts().items()
                  if "." not in name and name != "Global"}
    return int(counter.get_total_flops()), per_module


def _autocast(precision: str):
    from imf.precision import autocast_context

    return autocast_context(precision, "cpu")


def build(peer_model, seed: int, precisions: list[str]) -> dict:
    """Both models, their cached reference state per precision and one callable per run name."""
    import imf
    from imf.codec.decoder import codec_pipeline

    gen = torch.Generator().manual_seed(seed)
    x_r = torch.rand(3, SIZE, SIZE, generator=gen)  # the reference frame
    x_c = torch.rand(1, 3, SIZE, SIZE, generator=gen)  # a current frame (its token is what the decoder gets)

    torch.manual_seed(seed)
    ours = imf.IMF(imf.IMFConfig.preset("paper-256")).eval().requires_grad_(False)
    torch.manual_seed(seed)
    peer = peer_model.IMFModel().eval().requires_grad_(False)

    runs, checks = {}, {}
    with torch.inference_mode():
        t_ours = ours.encode_token(x_c)  # (1, d_m)
        f_r = peer.dense_feature_encoder(x_r[None])
        t_r = peer.latent_token_encoder(x_r[None])
        t_c = peer.latent_token_encoder(x_c)
    for p in precisions:
        pipe = codec_pipeline(ours, p)  # the codec decoder's own path: inference_mode + autocast, batch 1
        ref = pipe.prepare_reference(x_r)  # once, as the decoder does per keyframe
        runs[f"ours_{p}"] = lambda pipe=pipe, ref=ref: pipe.decode_tokens(t_ours, ref)

        def peer_call(p=p):
            with torch.inference_mode(), _autocast(p):
                return peer.decode_latent_tokens(f_r, t_r, t_c)

        runs[f"peer_{p}"] = peer_call
    for name, fn in runs.items():
        out = fn()
        checks[name] = {"shape": list(out.shape), "finite": bool(torch.isfinite(out.float()).all())}

    with torch.inference_mode():
        ref32 = codec_pipeline(ours, "fp32").prepare_reference(x_r)
        ours_flops, ours_parts = _count_flops(lambda: ours.decode(t_ours, ref32))
        peer_flops, peer_parts = _count_flops(lambda: peer.decode_latent_tokens(f_r, t_r, t_c))
    return {"runs": runs, "checks": checks,
            "ours": {"parameters": _params(ours), "gflop_per_frame": ours_flops / 1e9,
                     "gflop_per_part": {k: v / 1e9 for k, v in ours_parts.items()}},
            "peer": {"parameters": _params(peer), "gflop_per_frame": peer_flops / 1e9,
                     "gflop_per_part": {k: v / 1e9 for k, v in peer_parts.items()}}}


def machine() -> dict:
    from imf.bench.machine import machine_info
    from imf.precision import BF16_CPU_FLAGS, bf16_matmul_speedup, cpu_flags, cpu_has_fast_bf16

    flags = cpu_flags()
    return {**machine_info(torch.device("cpu")), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "bf16_flags": sorted(flags.intersection(BF16_CPU_FLAGS)) if flags is not None else None,
            "amx_flags": sorted(f for f in flags if f.startswith("amx")) if flags is not None else None,
            "cpu_has_fast_bf16": cpu_has_fast_bf16(), "bf16_matmul_probe_speedup": bf16_matmul_speedup(),
            "load_average_at_start": os.getloadavg()}


def run(args: argparse.Namespace) -> dict:
    import imf  # noqa: F401  (ours first: the peer's checkout has a folder named imf/ too)
    from imf.bench.machine import matmul_peak
    from imf.bench.timing import time_interleaved
    from imf.precision import PRECISIONS, cpu_has_fast_bf16

    torch.set_num_threads(args.threads)
    src = Path(args.peer_src).resolve()
    peer_model, stubbed = import_peer(src, {s.strip() for s in args.stub.split(",") if s.strip()})
    started = time.time()
    result: dict = {"what": "per-frame decode at 256x256, batch 1: ours (paper-256, the codec's decode path) against "
                            "johndpope/IMF's IMFModel.decode_latent_tokens; random weights, speed only",
                    "note": args.note, "machine": machine(), "options": {k: v for k, v in vars(args).items()}}
    precisions = ["fp32"]
    if cpu_has_fast_bf16():
        precisions.append("bf16")
    else:
        result["bf16_skipped"] = "this CPU has no fast bf16 (AVX512-BF16 / AMX, confirmed by the probe)"
    result["peer"] = {"src": str(src), "class": "model.IMFModel", "method": "decode_latent_tokens(f_r, t_r, t_c)",
                      "per_frame_work": "latent_token_decoder(t_c) and (t_r), 4 ImplicitMotionAlignment scales, "
                                        "FrameDecoder, normalize; f_r, t_r, t_c computed once beforehand",
                      "stubbed_imports": stubbed,
                      "files_sha256": {f: hashlib.sha256((src / f).read_bytes()).hexdigest()[:16]
                                       for f in PEER_FILES if (src / f).is_file()}}
    provenance = src / "PROVENANCE.txt"
    if provenance.is_file():
        result["peer"]["provenance"] = provenance.read_text().strip().splitlines()
    result["ours"] = {"preset": "paper-256", "path": "imf.codec.decoder.codec_pipeline(model, precision)"
                                                    ".decode_tokens(token, reference) -> IMF.decode; reference "
                                                    "prepared once"}

    peaks = {p: [matmul_peak(torch.device("cpu"), seconds=args.peak_seconds, dtype=PRECISIONS[p] or torch.float32)]
             for p in precisions}
    print("building both models, counting FLOPs", file=sys.stderr)
    built = build(peer_model, args.seed, precisions)
    result["ours"].update(built["ours"])
    result["peer"].update(built["peer"])
    result["output_checks"] = built["checks"]
    order = [f"{who}_{p}" for p in precisions for who in ("ours", "peer")]
    print(f"timing {', '.join(order)} in alternation: {args.warmup} warm-up + {args.repeats} rounds",
          file=sys.stderr)
    timings = time_interleaved({name: built["runs"][name] for name in order}, torch.device("cpu"),
                               repeats=args.repeats, warmup=args.warmup)
    for p in precisions:
        peaks[p].append(matmul_peak(torch.device("cpu"), seconds=args.peak_seconds,
                                    dtype=PRECISIONS[p] or torch.float32))
    result["matmul_peak"] = {p: {"start": v[0].to_dict(), "end": v[1].to_dict(),
                                 "peak_gflops": max(x.best_gflops for x in v),
                                 "rule": "best torch.mm call at the start and the end of the run"}
                             for p, v in peaks.items()}
    result["runs"] = {}
    for name in order:
        who, p = name.split("_")
        t = timings[name]
        gflop = result[who]["gflop_per_frame"]
        rate = gflop / t.median_s
        result["runs"][name] = {"model": who, "precision": p, **t.to_dict(), "ms_per_frame": t.median_s * 1e3,
                                "frames_per_s": 1 / t.median_s, "gflop_per_frame": gflop, "gflops_per_s": rate,
                                "share_of_peak": rate / result["matmul_peak"][p]["peak_gflops"]}
    ms = {name: r["ms_per_frame"] for name, r in result["runs"].items()}
    ratios = {"peer_fp32_over_ours_fp32": ms["peer_fp32"] / ms["ours_fp32"]}
    if "bf16" in precisions:
        ratios["peer_fp32_over_ours_bf16"] = ms["peer_fp32"] / ms["ours_bf16"]
        ratios["peer_bf16_over_ours_bf16"] = ms["peer_bf16"] / ms["ours_bf16"]
    best_ours = min(v for k, v in ms.items() if k.startswith("ours"))
    best_peer = min(v for k, v in ms.items() if k.startswith("peer"))
    ratios["peer_best_over_ours_best"] = best_peer / best_ours
    result["ratios"] = ratios
    result["goal"] = {"rule": "peer's fastest run / our fastest run (like for like: the peer gets bf16 autocast too "
                              "where we use it)", "measured": ratios["peer_best_over_ours_best"], "target": GOAL,
                      "moonshot": MOONSHOT, "met": ratios["peer_best_over_ours_best"] >= GOAL,
                      "moonshot_met": ratios["peer_best_over_ours_best"] >= MOONSHOT}
    result["flop_ratio_peer_over_ours"] = result["peer"]["gflop_per_frame"] / result["ours"]["gflop_per_frame"]
    result["machine"]["load_average_at_end"] = os.getloadavg()
    result["seconds"] = time.time() - started
    return result


def report(r: dict) -> str:
    m = r["machine"]
    lines = [f"{m['cpu_model']} ({m['cpu_cores']} cores, {m['torch_threads']} threads; fast bf16: "
             f"{m['cpu_has_fast_bf16']}; load {m['load_average_at_start'][0]:.1f} -> {m['load_average_at_end'][0]:.1f})"]
    for p, pk in r["matmul_peak"].items():
        lines.append(f"{p} matmul peak {pk['peak_gflops']:.0f} GFLOP/s")
    lines.append(f"GFLOP/frame: ours {r['ours']['gflop_per_frame']:.1f}, peer {r['peer']['gflop_per_frame']:.1f}")
    for name, x in r["runs"].items():
        lines.append(f"{name:<10} {x['ms_per_frame']:8.0f} ms/frame  {x['gflops_per_s']:6.1f} GFLOP/s  "
                     f"{100 * x['share_of_peak']:5.1f}% of the {x['precision']} peak")
    lines.append(", ".join(f"{k} {v:.2f}x" for k, v in r["ratios"].items()))
    g = r["goal"]
    lines.append(f"goal (peer best / ours best >= {g['target']:.0f}x): {g['measured']:.2f}x, "
                 f"{'met' if g['met'] else 'NOT met'} (moonshot {g['moonshot']:.0f}x: "
                 f"{'met' if g['moonshot_met'] else 'not met'})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--peer-src", required=True, help="a checkout of github.com/johndpope/IMF (never vendored here)")
    p.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch intra-op threads")
    p.add_argument("--repeats", type=int, default=5, help="timed rounds (each run once per round; median kept)")
    p.add_argument("--warmup", type=int, default=1, help="untimed rounds first")
    p.add_argument("--peak-seconds", type=float, default=2.0, help="seconds of each matmul-peak measurement")
    p.add_argument("--stub", default="torchvision,sklearn,wandb,colored_traceback,lpips,accelerate",
                   help="comma-separated imports of the peer's code made inert where not installed (training and "
                        "plotting only; '' for none)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--note", default="", help="a line recorded with the results (e.g. the machine's load)")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "peer.json"))
    args = p.parse_args(argv)
    if args.repeats < 1 or args.warmup < 0 or args.threads < 1:
        p.error("--repeats and --threads must be at least 1, --warmup at least 0")
    result = run(args)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(report(result))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
