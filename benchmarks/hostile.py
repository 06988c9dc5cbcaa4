"""Tried as a hostile user would: bad command lines and mutated .imf files, each classified.

    python benchmarks/hostile.py --out benchmarks/results/hostile.json [--mutations 500]

Command lines run in-process (``imf.cli.main``) on a scratch folder holding a short clip, its .imf file
(shipped model) and a copy of the shipped model. Each case is one of:
- ``clean``: exit status 2 with one line on stderr naming the problem (after argparse's usage block, for a
  flag refused while parsing), no traceback, inputs unchanged;
- ``traceback``: an exception escaped, or a traceback was printed;
- ``silent``: exit 0 (the bad input was accepted);
- ``other``: any other status or a multi-line message (listed, to look at).
Mutated files (byte flips, truncations, overwrites, record swaps / drops / splices) go through the
decoder's parser (``imf.codec.decoder.iter_units``): ``clean`` is a ``BitstreamError``, ``silent`` a file
that parses, ``traceback`` any other exception.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import random
import shutil
import tempfile
import traceback
from pathlib import Path

import numpy as np


def scratch(root: Path) -> dict[str, Path]:
    from imf.assets import shipped_model_path
    from imf.cli import main
    from imf.data.video import VideoWriter

    rng = np.random.default_rng(0)
    clip = root / "clip.mp4"
    with VideoWriter(clip, 10, 64, 64) as w:
        for _ in range(6):
            w.write(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
    model = root / "model"
    shutil.copytree(shipped_model_path(), model)
    imf_file = root / "clip.imf"
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["encode", str(clip), "-o", str(imf_file), "--ckpt", str(model), "--quiet"]) == 0
    (root / "empty.yaml").write_text("")
    (root / "bad.yaml").write_text("run: {checkpoint_every: 0}\n")
    (root / "junk.mp4").write_bytes(b"not a video" * 50)
    (root / "folder").mkdir()
    return {"clip": clip, "model": model, "imf": imf_file, "root": root}


def cases(p: dict[str, Path]) -> list[list[str]]:
    c, m, f, r = str(p["clip"]), str(p["model"]), str(p["imf"]), p["root"]
    out = str(r / "out.mp4")
    return [
        # outputs over inputs
        ["reconstruct", c, "-o", c], ["encode", c, "-o", c], ["decode", f, "-o", f], ["conditions", c, "-o", c],
        ["reenact", "--source", c, "--driving", c, "-o", c], ["eval", c, "--json", c, "--no-fid"],
        ["reconstruct", c, "-o", str(r / "folder")],
        # flags
        ["decode", f, "-o", out, "--crf", "99"], ["decode", f, "-o", out, "--crf", "-1"],
        ["encode", c, "-o", str(r / "x.imf"), "--target-kbps", "0"],
        ["encode", c, "-o", str(r / "x.imf"), "--target-kbps", "nan"],
        ["encode", c, "-o", str(r / "x.imf"), "--quality", "99"],
        ["encode", c, "-o", str(r / "x.imf"), "--packet-frames", "0"],
        ["encode", c, "-o", str(r / "x.imf"), "--keyframe-quality", "101"],
        ["encode", c, "-o", str(r / "x.imf"), "--scene-cut", "2"],
        ["data", "crop", c, "--out", str(r / "crops"), "--size", "100000"],
        ["data", "crop", c, "--out", str(r / "crops"), "--scale", "inf"],
        ["codec", "fit", "--ckpt", m, "--data", c, "--batch-size", "0"],
        ["rd", c, "--out", str(r / "rd"), "--codecs", "foo"],
        ["reconstruct", c, "-o", out, "--batch-size", "0"], ["reconstruct", c, "-o", out, "--device", "tpu9"],
        ["reconstruct", c, "-o", out, "--device", "cuda:7"],
        ["edit", "--source", c, "--set", "yow=3", "-o", str(r / "e.png")],
        ["edit", "--source", c, "--set", "yaw=3", "-o", str(r / "e.png"), "--fps", "0"],
        # missing or wrong files
        ["reconstruct", str(r / "none.mp4"), "-o", out], ["reconstruct", str(r / "junk.mp4"), "-o", out],
        ["decode", c, "-o", out], ["decode", str(r / "none.imf"), "-o", out],
        ["encode", c, "-o", str(r / "x.imf"), "--ckpt", str(r / "folder")],
        ["info", "--ckpt", str(r / "folder")],
        ["train", "--config", str(r / "bad.yaml"), "--data", c, "--out", str(r / "run")],
        ["train", "--config", str(r / "none.yaml"), "--data", c, "--out", str(r / "run")],
        ["train", "--config", str(r / "empty.yaml"), "--data", str(r / "none.mp4"), "--out", str(r / "run")],
        ["train", "--config", str(r / "empty.yaml"), "--data", c, "--out", c],
        ["train", "--config", str(r / "empty.yaml"), "--data", c, "--out", str(r / "run2"), "--resume"],
        ["edit", "--ckpt", m, "--source", c, "--set", "yaw=3", "-o", str(r / "e.png")],
        ["codec", "info", c],
    ]


def run_case(argv: list[str], protected: list[Path]) -> dict:
    from imf.cli import main

    before = {p: p.read_bytes() for p in protected}
    err, outs = io.StringIO(), io.StringIO()
    status, escaped = None, None
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(outs):
        try:
            status = main(argv)
        except SystemExit as e:
            status = e.code
        except BaseException:  # noqa: BLE001 - classifying every escape is the point
            escaped = traceback.format_exc(limit=1).strip().splitlines()[-1]
    message = err.getvalue().strip()
    changed = [str(p.name) for p in protected if p.read_bytes() != before[p]]
    # argparse prints its usage block before the error line: what counts is the one line naming the problem
    lines = [line for line in message.splitlines() if "error:" in line or line.startswith("warning:")] \
        if "usage:" in message else [line for line in message.splitlines() if line.strip()]
    if escaped or "Traceback" in message:
        kind = "traceback"
    elif status == 0:
        kind = "silent"
    elif status == 2 and len(lines) <= 1 and not changed:
        kind = "clean"
    else:
        kind = "other"
    return {"argv": argv[:1] + [a if "/" not in a else Path(a).name for a in argv[1:]], "status": status,
            "kind": kind, "message": escaped or (lines[-1] if lines else ""), "inputs_changed": changed}


def mutations(data: bytes, n: int, seed: int) -> list[tuple[str, bytes]]:
    from imf.codec.bitstream import record_spans

    rng = random.Random(seed)
    spans = record_spans(data)
    parts = [data[a:b] for a, b in spans]
    out = []
    for _ in range(n):
        kind = rng.choice(["flip", "truncate", "overwrite", "swap", "drop", "duplicate"])
        m = bytearray(data)
        if kind == "flip":
            for _ in range(rng.randint(1, 3)):
                m[rng.randrange(len(m))] ^= 1 << rng.randrange(8)
        elif kind == "truncate":
            del m[rng.randrange(len(m)):]
        elif kind == "overwrite":
            at = rng.randrange(len(m))
            m[at:at + 8] = bytes(rng.randrange(256) for _ in range(8))
        else:
            ps = list(parts)
            i = rng.randrange(len(ps) - 1)
            if kind == "swap":
                ps[i], ps[i + 1] = ps[i + 1], ps[i]
            elif kind == "drop":
                del ps[i]
            else:
                ps.insert(i, ps[i])
            m = bytearray(data[:spans[0][0]] + b"".join(ps))
        if bytes(m) != data:
            out.append((kind, bytes(m)))
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="benchmarks/results/hostile.json")
    ap.add_argument("--mutations", type=int, default=500)
    args = ap.parse_args(argv)
    from imf.codec.decoder import iter_units
    from imf.codec.tables import load_tables
    from imf.errors import BitstreamError

    with tempfile.TemporaryDirectory(prefix="imf-hostile-") as tmp:
        p = scratch(Path(tmp))
        protected = [p["clip"], p["imf"]]
        rows = [run_case(a, protected) for a in cases(p)]
        for r in rows:  # the scratch folder's name is of this run only
            r["message"] = r["message"].replace(str(p["root"]), "SCRATCH")[:200]
        tables = load_tables(p["model"])
        data = p["imf"].read_bytes()
        files = {"clean": 0, "silent": 0, "traceback": 0}
        for kind, blob in mutations(data, args.mutations, seed=0):
            try:
                list(iter_units(io.BytesIO(blob), tables=tables, name="m.imf"))
                files["silent"] += 1
            except BitstreamError:
                files["clean"] += 1
            except Exception:  # noqa: BLE001
                files["traceback"] += 1
    counts = {k: sum(r["kind"] == k for r in rows) for k in ("clean", "traceback", "silent", "other")}
    result = {"benchmark": "hostile", "command_lines": {"tried": len(rows), **counts, "cases": rows},
              "mutated_imf_files": {"tried": sum(files.values()), **files}}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(f"command lines: {len(rows)} tried, " + ", ".join(f"{v} {k}" for k, v in counts.items()))
    for r in rows:
        if r["kind"] != "clean":
            print(f"  {r['kind']}: imf {' '.join(r['argv'])} -> {r['status']}: {r['message']}")
    print(f"mutated .imf files: {sum(files.values())} tried, " + ", ".join(f"{v} {k}" for k, v in files.items()))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
