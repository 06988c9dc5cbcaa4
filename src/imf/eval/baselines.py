"""Standard codecs (H.264, H.265, AV1, H.266) through the ffmpeg binary of ``imageio-ffmpeg``.

Every codec gets the same input as our model: the S×S centre-cropped RGB frames, same count, same
frame rate, piped to ffmpeg as raw ``rgb24`` (lossless; constant frame rate exactly as given).

Conventions, stated in every RD report (``SETTINGS_NOTE``):
- Colour: RGB → Y'CbCr 4:2:0 with the BT.709 matrix, limited ("tv") range, by ffmpeg's swscale
  (bicubic, accurate rounding); the stream is tagged BT.709 and decoded back to RGB with the same
  matrix and range by PyAV. Quality is then measured on RGB for every codec alike.
  VVenC only takes 10-bit input: its frames go through yuv420p10le.
- Low delay: no B-frames / no picture reordering, no look-ahead, no scene-cut keyframes (x264
  ``bframes=0:rc-lookahead=0:sync-lookahead=0:scenecut=0``; x265 ``bframes=0:rc-lookahead=0:
  scenecut=0``; SVT-AV1 ``pred-struct=1`` (its low-delay structure) ``:lookahead=0:scd=0``; libaom
  ``-lag-in-frames 0``; VVenC ``gopsize=8:picreordering=0:decodingrefreshtype=none:lookahead=0``).
- Keyframes: one at the start and none after (x264 ``keyint=infinite``, x265 ``keyint=-1``, SVT-AV1
  ``keyint=-1``, libaom ``-g`` beyond the clip, VVenC no refresh), like our codec's single reference.
- Constant-quality rate control: CRF for x264 / x265 / AV1, QP for VVenC; several points each.
- Encoder-information SEI messages (x264's option string, x265's version info) are removed
  (``filter_units=remove_types=6`` / ``info=0``): they carry no picture data and would weigh
  hundreds of bytes at these rates.
- Rates: "payload" = sum of the video packets' sizes + the codec's out-of-band parameter sets
  (extradata), i.e. the elementary stream without container overhead; "file" = the output file's size
  (mp4). Both are reported, as bits per pixel (bits / (frames · S²)) and kbit/s (bits / (frames / fps) / 1000).
"""

from __future__ import annotations

import functools
import logging
import os
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

log = logging.getLogger(__name__)

SETTINGS_NOTE = (
    "Standard codecs: ffmpeg (imageio-ffmpeg) with x264 -preset veryslow, x265 -preset slow, SVT-AV1 "
    "-preset {av1_preset} (libaom-av1 -cpu-used {aom_cpu} if SVT-AV1 is absent), VVenC -preset {vvc_preset}; "
    "low delay (no B-frames / picture reordering, no look-ahead, no scene-cut keyframes), a single keyframe "
    "at the start (infinite GOP), constant quality (CRF; QP for VVenC); input = the same S×S RGB frames as "
    "our model, converted to Y'CbCr 4:2:0 BT.709 limited range (10-bit for VVenC) and decoded back to RGB "
    "with the same matrix; encoder-info SEI removed. Rate 'payload' = packet bytes + parameter sets "
    "(no container), rate 'file' = mp4 file size."
)

AV1_PRESET = 4  # SVT-AV1 preset (0 slowest .. 13 fastest): a slow, high-efficiency setting
AOM_CPU_USED = 3  # libaom fallback speed
VVC_PRESET = "medium"


@dataclass(frozen=True)
class CodecSpec:
    """A standard codec. encoders: ffmpeg encoder names in order of preference. param: "crf" or "qp"
    (the constant-quality knob; larger = lower rate), with its valid range and default RD points."""

    name: str
    label: str
    encoders: tuple[str, ...]
    param: str
    param_range: tuple[int, int]
    default_points: tuple[int, ...]


CODECS: dict[str, CodecSpec] = {
    "x264": CodecSpec("x264", "H.264 (x264 veryslow)", ("libx264",), "crf", (0, 51), (35, 39, 43, 47, 51)),
    "x265": CodecSpec("x265", "H.265 (x265 slow)", ("libx265",), "crf", (0, 51), (35, 39, 43, 47, 51)),
    "av1": CodecSpec("av1", "AV1 (SVT-AV1)", ("libsvtav1", "libaom-av1"), "crf", (0, 63), (47, 51, 55, 59, 63)),
    "vvc": CodecSpec("vvc", "H.266 (VVenC)", ("libvvenc",), "qp", (0, 63), (43, 48, 53, 58, 63)),
}


@dataclass(frozen=True)
class ResolvedCodec:
    """A codec bound to the ffmpeg encoder this binary has. pix_fmt: the coded pixel format."""

    spec: CodecSpec
    encoder: str
    pix_fmt: str

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def label(self) -> str:
        return self.spec.label if self.encoder == self.spec.encoders[0] else f"{self.spec.label} [{self.encoder}]"


@dataclass
class BaselineEncoding:
    """One encoded RD point of a standard codec (rates in bytes; see the module docstring)."""

    codec: str
    encoder: str
    param: str
    value: int
    path: str
    num_frames: int
    width: int
    height: int
    fps: float
    file_bytes: int
    packet_bytes: int
    extradata_bytes: int
    encode_seconds: float

    @property
    def payload_bytes(self) -> int:
        return self.packet_bytes + self.extradata_bytes

    def rates(self) -> dict[str, float]:
        """bpp and kbps of the payload and of the whole file."""
        pixels = self.num_frames * self.width * self.height
        seconds = self.num_frames / self.fps
        out = {}
        for kind, nbytes in (("payload", self.payload_bytes), ("file", self.file_bytes)):
            out[f"bpp_{kind}"] = 8.0 * nbytes / pixels
            out[f"kbps_{kind}"] = 8.0 * nbytes / seconds / 1000.0
        return out

    def to_dict(self) -> dict:
        return {**asdict(self), "payload_bytes": self.payload_bytes, **self.rates()}


# ------------------------------------------------------------------------------------- the binary
def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary shipped in the imageio-ffmpeg wheel (or $IMAGEIO_FFMPEG_EXE)."""
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


@functools.lru_cache(maxsize=4)
def available_encoders(ffmpeg: str | None = None) -> frozenset[str]:
    """Names of the video encoders this ffmpeg binary has (parsed from ``ffmpeg -encoders``)."""
    exe = ffmpeg or ffmpeg_exe()
    proc = subprocess.run([exe, "-hide_banner", "-encoders"], capture_output=True, text=True, check=True)
    names = set()
    for line in proc.stdout.splitlines():
        parts = line.split()
        # Lines look like " V....D libx264   libx264 H.264 / AVC ...": flags (V = video) then the name.
        if len(parts) >= 2 and len(parts[0]) == 6 and parts[0][0] == "V":
            names.add(parts[1])
    return frozenset(names)


def resolve_codecs(names: Sequence[str], encoders: frozenset[str] | None = None
                   ) -> tuple[list[ResolvedCodec], list[str]]:
    """Bind codec names ("x264", "x265", "av1", "vvc") to this binary's encoders.

    Returns (codecs found, one-line messages for each name skipped: unknown, or missing from the
    binary). Never raises for a missing codec. ``encoders`` overrides the binary's list (for tests).
    """
    have = available_encoders() if encoders is None else encoders
    found: list[ResolvedCodec] = []
    skipped: list[str] = []
    for name in names:
        spec = CODECS.get(name.strip().lower())
        if spec is None:
            skipped.append(f"unknown codec {name!r} (known: {', '.join(CODECS)}): skipped")
            continue
        encoder = next((e for e in spec.encoders if e in have), None)
        if encoder is None:
            skipped.append(f"{spec.name}: the ffmpeg binary has no {' or '.join(spec.encoders)} encoder: skipped")
            continue
        if encoder != spec.encoders[0]:
            skipped.append(f"{spec.name}: {spec.encoders[0]} is missing, using {encoder} instead")
        pix_fmt = "yuv420p10le" if encoder == "libvvenc" else "yuv420p"
        found.append(ResolvedCodec(spec, encoder, pix_fmt))
    return found, skipped


def encoder_args(codec: ResolvedCodec, value: int, num_frames: int) -> list[str]:
    """ffmpeg output arguments for one constant-quality point, low delay, one keyframe at the start."""
    lo, hi = codec.spec.param_range
    if not lo <= value <= hi:
        raise ValueError(f"{codec.name}: {codec.spec.param} must be in [{lo}, {hi}], got {value}")
    gop = str(num_frames + 1)
    e = codec.encoder
    if e == "libx264":
        return ["-c:v", e, "-preset", "veryslow", "-crf", str(value), "-x264-params",
                "bframes=0:rc-lookahead=0:sync-lookahead=0:keyint=infinite:scenecut=0:open-gop=0",
                "-bsf:v", "filter_units=remove_types=6"]  # drop SEI (x264's option string)
    if e == "libx265":
        return ["-c:v", e, "-preset", "slow", "-crf", str(value), "-x265-params",
                "bframes=0:rc-lookahead=0:keyint=-1:scenecut=0:open-gop=0:info=0:log-level=error"]
    if e == "libsvtav1":
        return ["-c:v", e, "-preset", str(AV1_PRESET), "-crf", str(value), "-svtav1-params",
                "pred-struct=1:keyint=-1:scd=0:lookahead=0"]
    if e == "libaom-av1":
        return ["-c:v", e, "-cpu-used", str(AOM_CPU_USED), "-crf", str(value), "-b:v", "0",
                "-lag-in-frames", "0", "-g", gop, "-keyint_min", gop]
    if e == "libvvenc":
        # -period: refresh period in seconds; beyond the clip means no refresh after the first frame.
        return ["-c:v", e, "-preset", VVC_PRESET, "-qp", str(value), "-period", "1000000", "-vvenc-params",
                "gopsize=8:picreordering=0:decodingrefreshtype=none:lookahead=0"]
    raise ValueError(f"no arguments known for encoder {e!r}")


def _fps_fraction(fps: float | Fraction) -> Fraction:
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    return Fraction(fps).limit_denominator(1001)  # 23.976 -> 24000/1001, as imf.data.video does


# ------------------------------------------------------------------------------------- encode
def encode_baseline(frames: np.ndarray, fps: float, codec: ResolvedCodec, value: int, out_path: str | os.PathLike,
                    ffmpeg: str | None = None) -> BaselineEncoding:
    """Encode uint8 RGB frames (N, S, S, 3) at one CRF/QP point into ``out_path`` (.mp4) and measure rates.

    Raises RuntimeError with ffmpeg's last message if the encoder fails.
    """
    frames = np.ascontiguousarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"expected uint8 frames (N, H, W, 3), got {frames.dtype} {frames.shape}")
    n, h, w, _ = frames.shape
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    rate = _fps_fraction(fps)
    colour = ["-colorspace", "bt709", "-color_primaries", "bt709", "-color_trc", "bt709", "-color_range", "tv"]
    convert = (f"scale=out_color_matrix=bt709:out_range=tv:flags=bicubic+accurate_rnd+full_chroma_int,"
               f"format={codec.pix_fmt}")
    cmd = [ffmpeg or ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
           "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-framerate", f"{rate.numerator}/{rate.denominator}",
           "-i", "pipe:0", "-vf", convert, *colour, *encoder_args(codec, value, n), "-frames:v", str(n),
           "-an", "-f", "mp4", str(out_path)]
    env = {**os.environ, "SVT_LOG": "1"}  # SVT-AV1: errors only
    start = time.perf_counter()
    proc = subprocess.run(cmd, input=frames.tobytes(), capture_output=True, env=env)
    seconds = time.perf_counter() - start
    if proc.returncode != 0 or not out_path.exists():
        tail = proc.stderr.decode(errors="replace").strip().splitlines()[-3:]
        raise RuntimeError(f"{codec.encoder} {codec.spec.param}={value} failed: {' | '.join(tail) or 'no message'}")
    packet_bytes, extradata_bytes, coded = packet_payload(out_path)
    if coded != n:
        raise RuntimeError(f"{codec.encoder} {codec.spec.param}={value}: {coded} coded frames for {n} input frames")
    return BaselineEncoding(codec.name, codec.encoder, codec.spec.param, int(value), str(out_path), n, w, h,
                            float(rate), out_path.stat().st_size, packet_bytes, extradata_bytes, seconds)


def encode_at_rate(frames: np.ndarray, fps: float, codec: ResolvedCodec, target_bits: float,
                   out_path: str | os.PathLike, ffmpeg: str | None = None) -> BaselineEncoding:
    """The finest constant-quality point (smallest CRF/QP) whose payload fits in ``target_bits``, encoded
    into ``out_path``: a binary search over the codec's parameter range (about log2(range) + 1 encodes;
    the payload falls as the parameter grows). If even the coarsest point is over the target, that point
    is returned: compare ``8 * payload_bytes`` with the target to tell."""
    out_path = Path(out_path)
    tried: dict[int, BaselineEncoding] = {}

    def encode(value: int) -> BaselineEncoding:
        if value not in tried:
            tried[value] = encode_baseline(frames, fps, codec, value,
                                           out_path.with_name(f".{out_path.stem}.{value}{out_path.suffix}"), ffmpeg)
        return tried[value]

    def fits(value: int) -> bool:
        return 8 * encode(value).payload_bytes <= target_bits

    lo, hi = codec.spec.param_range
    if fits(hi):  # invariant: hi fits, every value below lo does not
        while lo < hi:
            mid = (lo + hi) // 2
            if fits(mid):
                hi = mid
            else:
                lo = mid + 1
    best = tried[hi]
    os.replace(best.path, out_path)
    for enc in tried.values():
        Path(enc.path).unlink(missing_ok=True)
    return BaselineEncoding(**{**asdict(best), "path": str(out_path)})


def packet_payload(path: str | os.PathLike) -> tuple[int, int, int]:
    """(sum of video packet sizes, extradata size, number of non-empty packets) of a coded file, via PyAV."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        sizes = [p.size for p in container.demux(stream) if p.size]
        extradata = stream.codec_context.extradata or b""
    return int(sum(sizes)), len(extradata), len(sizes)


def decode_frames(path: str | os.PathLike) -> Iterator[np.ndarray]:
    """Decode a coded file back to uint8 RGB (H, W, 3) frames with PyAV, BT.709 limited range (as encoded)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            yield frame.to_ndarray(format="rgb24", src_colorspace="ITU709", src_color_range="MPEG",
                                   interpolation="BICUBIC")


def settings_note() -> str:
    return SETTINGS_NOTE.format(av1_preset=AV1_PRESET, aom_cpu=AOM_CPU_USED, vvc_preset=VVC_PRESET)
