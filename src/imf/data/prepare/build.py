"""``imf data prepare``: metadata + raw videos -> a shard folder (``imf.data.shards``), resumably, in parallel.

Steps: parse the data set's metadata (one parser per data set: ``vfhq``, ``celebvhq``, ``voxceleb``); find
each clip's raw video under --videos (a file named by its id, any video extension, any sub-folder);
skip the clips already in a finished shard (``DIR/index/*.json``: the done-list); cut the others in
``workers`` processes (``cut.cut_clip``); write them, in metadata order, into per-split shards; report.

- **Never a crash on one bad clip.** A missing raw video, an unreadable one, or a clip the video does
  not hold is recorded in ``DIR/report.json`` (``missing_videos``, ``broken_videos``, ``failed_clips``,
  plus ``truncated_clips`` (fewer frames than the span) and ``metadata_problems``) and summed up in
  one line; the other clips go on. A re-run tries them again (a video downloaded since is picked up).
- **Resumable.** A clip is done when the shard holding it is finished (``.tar`` renamed from
  ``.tar.partial`` and its index written); an interrupted run loses at most the open shards, and a
  re-run removes what they left and cuts only the clips not done. ``DIR/prepare.json`` records the
  settings the shards depend on; a re-run with others is refused. The manifest is rewritten whenever a
  shard is finished, so an interrupted folder is usable (``complete: false``).
- **Splits** are the metadata's (see each parser); ``DIR/splits/<split>.txt`` lists the clip ids of each
  split, and a parser's own lists (CelebV-HQ's validation videos) are written beside them.
"""

from __future__ import annotations

import collections
import json
import logging
import multiprocessing
import os
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from imf.data.prepare import celebvhq, vfhq, voxceleb
from imf.data.prepare.cut import CutResult, cut_clip
from imf.data.prepare.spec import ClipSpec, ParsedMeta, index_videos
from imf.data.shards import PNG_LEVEL, ShardWriter, clip_key, finished_shards, write_manifest
from imf.errors import InputError
from imf.progress import progress_bar

log = logging.getLogger(__name__)

DATASETS: dict[str, Callable[..., ParsedMeta]] = {"vfhq": vfhq.parse, "celebvhq": celebvhq.parse,
                                                  "voxceleb": voxceleb.parse}
SETTINGS = "prepare.json"
REPORT = "report.json"
SHARD_BYTES = 1 << 30  # about 1 GiB per shard (WebDataset's advice: 100 MB to a few GB)


@dataclass
class PrepareResult:
    """What a run did. ``report``: the content of DIR/report.json."""

    out: Path
    clips: int  # in the metadata
    written: int  # in finished shards now (this run and earlier ones)
    new: int  # written by this run
    report: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> str:
        r = self.report
        missing, broken = r["missing_videos"], r["broken_videos"]
        parts = [f"{self.written} of {self.clips} clips in {self.out} ({self.new} new, "
                 f"{self.written - self.new} already there)",
                 f"{len(missing)} missing video(s) ({sum(len(v) for v in missing.values())} clips)",
                 f"{len(broken)} broken video(s) ({sum(len(v['clips']) for v in broken.values())} clips)",
                 f"{len(r['failed_clips'])} failed clip(s)"]
        if r["metadata_problems"]:
            parts.append(f"{len(r['metadata_problems'])} unreadable metadata entr(ies)")
        return "; ".join(parts) + f"; details in {self.out / REPORT}"


def _check_settings(out: Path, settings: dict[str, Any]) -> None:
    path = out / SETTINGS
    if path.is_file():
        try:
            old = json.loads(path.read_text())
        except ValueError:
            old = None
        if old != settings:
            diff = sorted(k for k in settings if not isinstance(old, dict) or old.get(k) != settings[k])
            raise InputError(f"{out} holds shards made with other settings ({', '.join(diff) or 'unknown'}: "
                             f"{ {k: old.get(k) for k in diff} if isinstance(old, dict) else old}); use another "
                             f"--out or the same settings")
    else:
        out.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(settings, indent=1))


def _write_lists(out: Path, parsed: ParsedMeta) -> None:
    folder = out / "splits"
    folder.mkdir(exist_ok=True)
    by_split: dict[str, list[str]] = collections.defaultdict(list)
    for c in parsed.clips:
        by_split[c.split].append(c.clip)
    for name, lines in [*((f"{s}.txt", v) for s, v in sorted(by_split.items())), *parsed.lists.items()]:
        (folder / name).write_text("".join(f"{line}\n" for line in lines))


def _meta_entry(spec: ClipSpec, result: CutResult) -> dict[str, Any]:
    return {"person": spec.person, "source": spec.video, "span": [spec.start, spec.stop], "unit": spec.unit,
            **result.meta, **({"extra": spec.extra} if spec.extra else {})}


def prepare_dataset(dataset: str, meta: str | os.PathLike, videos: str | os.PathLike, out: str | os.PathLike,
                    size: int = 256, workers: int = 0, shard_bytes: int = SHARD_BYTES, progress: bool = True,
                    **parser_options: Any) -> PrepareResult:
    """Build (or continue) the shard folder ``out``; see the module docstring. ``workers``: processes that
    cut clips (0: in this process). ``parser_options``: the data set's (CelebV-HQ: val_videos, seed,
    val_list). Raises InputError for unusable metadata or folders; never for a bad video or clip."""
    if dataset not in DATASETS:
        raise InputError(f"unknown data set {dataset!r}; one of {', '.join(DATASETS)}")
    out, videos = Path(out), Path(videos)
    if not videos.is_dir():
        raise InputError(f"--videos {videos}: no such folder")
    parsed = DATASETS[dataset](meta, **parser_options)
    if not parsed.clips:
        raise InputError(f"{meta}: no clip could be read from the metadata"
                         + (f" (first problem: {parsed.problems[0]})" if parsed.problems else ""))
    settings = {"dataset": dataset, "size": size, "frame_format": "png", "png_level": PNG_LEVEL,
                "parser_options": {k: str(v) if isinstance(v, Path) else v for k, v in parser_options.items()}}
    _check_settings(out, settings)
    _write_lists(out, parsed)

    report: dict[str, Any] = {"dataset": dataset, "missing_videos": {}, "broken_videos": {}, "failed_clips": {},
                              "truncated_clips": {}, "duplicate_clips": [], "metadata_problems": parsed.problems}
    done = {c["clip"] for index in finished_shards(out, clean=True) for c in index["clips"]}
    raw = index_videos(videos)
    todo: list[tuple[ClipSpec, Path]] = []
    seen_keys: set[str] = set()
    for spec in parsed.clips:
        key = clip_key(spec.clip)
        if key in seen_keys:  # the same id twice, or two ids with one shard key: the first is kept
            report["duplicate_clips"].append(spec.clip)
            continue
        seen_keys.add(key)
        if spec.clip in done:
            continue
        path = raw.get(spec.video)
        if path is None:
            report["missing_videos"].setdefault(spec.video, []).append(spec.clip)
            continue
        todo.append((spec, path))

    info = {"dataset": dataset, "size": size, "frame_format": "png", "settings": settings}
    writers: dict[str, ShardWriter] = {}
    next_index = collections.Counter()
    for index in finished_shards(out):
        split, number = index["shard"][: -len(".tar")].rsplit("-", 1)
        next_index[split] = max(next_index[split], int(number) + 1)

    def writer(split: str) -> ShardWriter:
        if split not in writers:
            writers[split] = ShardWriter(out, split, next_index[split], shard_bytes)
        return writers[split]

    new = 0
    bar = progress_bar(total=len(todo), desc=f"preparing {dataset}", unit="clip", enabled=progress)
    try:
        for spec, result in _cut_all(todo, size, workers):
            bar.update(1)
            if result.frames is None:
                if result.broken:
                    entry = report["broken_videos"].setdefault(spec.video, {"reason": result.error, "clips": []})
                    entry["clips"].append(spec.clip)
                else:
                    report["failed_clips"][spec.clip] = result.error
                continue
            w = writer(spec.split)
            shards_before = len(w.closed)
            w.add(spec.clip, _meta_entry(spec, result), result.frames)
            new += 1
            if len(result.frames) < result.meta.get("expected_frames", 0) - 1:
                report["truncated_clips"][spec.clip] = (f"{len(result.frames)} of "
                                                        f"{result.meta['expected_frames']} frames")
            if len(w.closed) > shards_before:  # a shard was finished: the folder is usable so far
                write_manifest(out, {**info, "report": _counts(report)}, complete=False)
        for w in writers.values():
            w.close()
    except BaseException:
        for w in writers.values():
            w.abort()
        raise
    finally:
        bar.close()
    report_path = out / REPORT
    report_path.write_text(json.dumps(report, indent=1))
    manifest = write_manifest(out, {**info, "report": _counts(report)}, complete=True)
    return PrepareResult(out, len(parsed.clips), len(manifest["clips"]), new, report)


def _counts(report: dict[str, Any]) -> dict[str, int]:
    return {"missing_videos": len(report["missing_videos"]),
            "missing_clips": sum(len(v) for v in report["missing_videos"].values()),
            "broken_videos": len(report["broken_videos"]),
            "broken_clips": sum(len(v["clips"]) for v in report["broken_videos"].values()),
            "failed_clips": len(report["failed_clips"]), "truncated_clips": len(report["truncated_clips"]),
            "metadata_problems": len(report["metadata_problems"])}


def _cut_all(todo: list[tuple[ClipSpec, Path]], size: int, workers: int):
    """(spec, CutResult) in the order of ``todo``; ``workers`` processes cut ahead (2 clips each at most)."""
    if workers <= 0:
        for spec, path in todo:
            yield spec, cut_clip(spec, path, size)
        return
    # spawn, not fork: the parent may hold threads (torch, PyAV) that a forked child would inherit locked
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                             initializer=_init_worker) as pool:
        pending: collections.deque[tuple[ClipSpec, Future]] = collections.deque()
        it = iter(todo)
        try:
            while True:
                while len(pending) < 2 * workers:
                    nxt = next(it, None)
                    if nxt is None:
                        break
                    pending.append((nxt[0], pool.submit(cut_clip, nxt[0], str(nxt[1]), size)))
                if not pending:
                    break
                spec, future = pending.popleft()
                try:
                    result = future.result()
                except Exception as e:  # the worker process died (out of memory, a crash in a codec)
                    result = CutResult(spec.clip, None, error=f"the worker failed ({type(e).__name__}: {e})")
                yield spec, result
        finally:
            for _, future in pending:
                future.cancel()


def _init_worker() -> None:
    # one thread per worker process: the processes are the parallelism
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    try:
        import cv2

        cv2.setNumThreads(1)
    except ImportError:  # pragma: no cover - cv2 is a dependency
        pass
