"""The page of ``imf serve``: four tabs (Reenact, Reconstruct, Codec, Edit) built with Gradio.

Why Gradio: it installs from PyPI with everything it needs (the front end ships inside the wheel, its
default theme's fonts are local files), runs offline with analytics off and no share link, and gives
uploads, sliders, progress bars, per-session state and a queue without a line of JavaScript here. It is
what the field's demos use (LivePortrait's app), so people know the page.

Each event handler here only calls its tab's module (``imf.serve.reenact`` ...), which validates the
uploads and calls the library; a user error (bad upload, no face, too long, model without tables) becomes
a message in the tab's report box, an unexpected one a short line there and a traceback in the server's
log only. Files go to a per-session folder (``imf.serve.session``), removed when the page is closed.
"""

from __future__ import annotations

import logging
import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio is imported: no calls home

import gradio as gr  # noqa: E402
import numpy as np  # noqa: E402

from imf.data.video import IMAGE_EXTS, VIDEO_EXTS  # noqa: E402
from imf.errors import user_errors  # noqa: E402
from imf.serve import codec, edit, reconstruct, reenact  # noqa: E402
from imf.serve.limits import Limits  # noqa: E402
from imf.serve.resources import Resources  # noqa: E402
from imf.serve.session import Workspace  # noqa: E402
from imf.serve.steps import Progress, no_progress  # noqa: E402
from imf.serve.uploads import display_name, page_message  # noqa: E402

log = logging.getLogger(__name__)

HEAVY = {"concurrency_limit": 1, "concurrency_id": "model"}  # one long job at a time: they share the CPU


def failure(error: BaseException) -> str:
    """The report-box text for a job that failed: the message of a user error, never a traceback."""
    if isinstance(error, user_errors()):
        return f"**Could not run this:** {page_message(str(error))}"
    log.error("unexpected error in a job", exc_info=error)
    return (f"**Something went wrong on the server** ({type(error).__name__}); the details are in the "
            f"server's log. Try another file, or report it.")


def enlarged(image: np.ndarray, side: int = 256) -> np.ndarray:
    """A copy of a small uint8 (S, S, 3) image for the page, ``side`` pixels wide, every pixel a visible square
    (nearest neighbour: the browser would otherwise show 64x64 as a thumbnail)."""
    k = max(1, side // image.shape[1])
    return np.repeat(np.repeat(image, k, axis=0), k, axis=1)


def _session(request: gr.Request | None) -> str | None:
    return getattr(request, "session_hash", None)


def _fmt(value: float | None, digits: int) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def metrics_table(rows: dict[str, tuple[str, dict[str, float]]]) -> str:
    """A Markdown table: row label -> (rate text, metrics)."""
    lines = ["| | rate | PSNR (dB) ↑ | LPIPS (AlexNet) ↓ |", "|---|---|---|---|"]
    for label, (rate, m) in rows.items():
        lines.append(f"| {label} | {rate} | {_fmt(m.get('psnr'), 2)} | {_fmt(m.get('lpips_alex'), 4)} |")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------ reports
def reenact_report(stats) -> str:
    audio = "with the driving video's audio" if stats.audio else "no audio (the driving video has none)"
    return (f"**Done:** {stats.frames} frames, {stats.width}x{stats.height}, {stats.fps:g} fps, {audio}; "
            f"{stats.seconds:.1f} s on {stats.device}.")


def reconstruct_report(r: reconstruct.ReconstructResult) -> str:
    table = metrics_table({"IMF reconstruction": ("", r.model), "copy the reference frame": ("", r.copy)})
    notes = "".join(f"\n\n_{n}_" for n in r.notes)
    return (f"**{r.frames} frames rebuilt** from the first frame and one token each "
            f"(left to right: reference, original, reconstruction). Scores against the original, the "
            f"reference frame itself not counted:\n\n{table}{notes}")


def rate_choice(r: codec.CodecResult) -> str:
    """Which token quality coded the file, and why (the slider, or the target bitrate it was picked for)."""
    st = r.stats
    if r.target_kbps is None:
        return f"token quality {st.quality}"
    return (f"token quality **{st.quality}**, picked for a target of {r.target_kbps:g} kbps of tokens (the highest "
            f"quality whose tokens fitted within it on the fitting data, keyframes not counted): the tokens here "
            f"took {st.kbps_tokens:.2f} kbps")


def codec_report(r: codec.CodecResult) -> str:
    st = r.stats
    bits = 8 * r.file_bytes
    share = lambda b: f"{100 * b / max(bits, 1):.1f}%"  # noqa: E731
    head = (f"**{display_name(r.imf_file)}: {r.file_bytes:,} bytes = {bits:,} bits for {st.num_frames} frames "
            f"({st.duration:.2f} s at {st.fps:g} fps): {r.kbps:.2f} kbps, every bit of the file counted.** "
            f"Keyframes {st.num_keyframes} ({st.keyframe_bits:,} bits, {share(st.keyframe_bits)}), tokens "
            f"{st.token_bits:,} bits ({share(st.token_bits)}, {st.token_bits_per_frame:.1f} bits per token frame), "
            f"headers and record framing the rest; {rate_choice(r)}.")
    rows = {f"IMF (ours), quality {st.quality}": (f"{r.kbps:.2f} kbps (whole file)", r.quality["imf"])}
    if r.baseline is not None:
        b = r.baseline
        rows[f"x265, {b.param.upper()} {b.value}"] = (f"{b.rates()['kbps_payload']:.2f} kbps (payload)",
                                                      r.quality[codec.BASELINE])
    notes = "".join(f"\n\n_{n}_" for n in r.notes)
    return (f"{head}\n\n{metrics_table(rows)}\n\nScores on the decoded {st.width}x{st.height} frames against "
            f"the same frames of the upload; the videos shown are those frames re-encoded near-losslessly "
            f"for the browser.{notes}")


def codec_job(res: Resources, video, work, limits: Limits, rate: str, quality, target_kbps,
              progress: Progress = no_progress, baseline: bool = True) -> codec.CodecResult:
    """The Codec tab's button, given its widgets' values (rate: one of ``codec.RATE_MODES``; the slider's
    quality is used for "quality", the box's kbps for "target kbps"). Raises what ``codec.encode`` raises."""
    if rate not in codec.RATE_MODES:
        raise ValueError(f"rate must be one of {codec.RATE_MODES}, got {rate!r}")
    by_target = rate == "target kbps"
    target = codec.check_target_kbps(target_kbps) if by_target else None  # an empty box is an error, not a default
    return codec.encode(res, video, work, limits, quality=None if by_target else int(quality), target_kbps=target,
                        baseline=baseline, progress=progress)


def rate_widgets(rate: str) -> tuple[dict, dict]:
    """Show the quality slider or the target-bitrate box, whichever the rate radio chose."""
    return gr.update(visible=rate == "quality"), gr.update(visible=rate == "target kbps")


# ------------------------------------------------------------------------------------------ the page
def build_app(res: Resources, limits: Limits = Limits(), workspace: Workspace | None = None) -> gr.Blocks:
    """The Gradio Blocks of the app (not launched); files of its jobs go under ``workspace``."""
    workspace = workspace or Workspace()
    s = res.resolution
    lo, hi, default_q = codec.quality_range(res)

    def run_reenact(source, driving, motion, crop, paste, compare, request: gr.Request,
                    progress=gr.Progress(track_tqdm=True)):
        try:
            work = workspace.job_dir(_session(request), "reenact")
            stats = reenact.reenact(res, source, driving, work, limits, motion=motion, crop=crop, compare=compare,
                                    paste=paste, progress=progress)
            return str(stats.output), reenact_report(stats)
        except Exception as e:  # noqa: BLE001: every failure becomes a message in the page
            return None, failure(e)

    def run_reconstruct(video, request: gr.Request, progress=gr.Progress(track_tqdm=True)):
        try:
            work = workspace.job_dir(_session(request), "reconstruct")
            r = reconstruct.reconstruct(res, video, work, limits, progress=progress)
            return str(r.video), reconstruct_report(r)
        except Exception as e:  # noqa: BLE001
            return None, failure(e)

    def run_codec(video, rate, quality, target_kbps, request: gr.Request, progress=gr.Progress(track_tqdm=True)):
        try:
            work = workspace.job_dir(_session(request), "codec")
            r = codec_job(res, video, work, limits, rate, quality, target_kbps, progress=progress)
            return (str(r.imf_file), str(r.decoded_video), str(r.baseline_video) if r.baseline_video else None,
                    codec_report(r))
        except Exception as e:  # noqa: BLE001
            return None, None, None, failure(e)

    names = res.editor.names if res.editor is not None else ()

    def run_prepare(image, crop):
        try:
            src = edit.prepare(res, image, limits, crop=crop)
            values = [src.values[n] for n in names]
            edited = edit.render(res, src, src.values)
            text = "**Face ready.** Move the sliders; they start at the values measured on this face."
            return (src, enlarged(src.prepared.frame), enlarged(edited), *[gr.update(value=v) for v in values], text)
        except Exception as e:  # noqa: BLE001
            return (None, None, None, *[gr.update() for _ in names], failure(e))

    def run_render(src, *values):
        try:
            image = edit.render(res, src, dict(zip(names, values)))
            return enlarged(image), "**Edited:** " + ", ".join(f"{n} {v:.3g}" for n, v in zip(names, values))
        except Exception as e:  # noqa: BLE001
            return None, failure(e)

    def end_session(request: gr.Request):
        workspace.drop(_session(request))

    with gr.Blocks(title="imf serve", analytics_enabled=False, delete_cache=(600, 3600)) as app:
        gr.Markdown(f"# IMF: Implicit Motion Function\nModel `{res.ckpt.name}` ({s}x{s}, on {res.pipeline.device}). "
                    f"Every video is cut to its centre square at {s}x{s} unless a face crop is asked for. "
                    f"Limits: {limits.describe()}.")
        with gr.Tab("Reenact"):
            gr.Markdown("Animate a source face (an image, or a video's first frame) with the motion of a "
                        "driving video. The result keeps the driving video's audio.")
            with gr.Row():
                re_source = gr.File(label="source face (image or video)", file_types=sorted(IMAGE_EXTS | VIDEO_EXTS),
                                    type="filepath", elem_id="reenact-source")
                re_driving = gr.Video(label="driving video", sources=["upload"], include_audio=True,
                                      elem_id="reenact-driving")
            with gr.Row():
                re_motion = gr.Radio(list(reenact.MOTIONS), value="relative", label="motion",
                                     info="relative: the driving motion added to the source's own pose; "
                                          "absolute: the driving frames' tokens as they are")
                re_crop = gr.Checkbox(False, label="face crop",
                                      info="cut both around the face and paste the result back into the full source")
                re_paste = gr.Radio(list(reenact.PASTE_MODES), value=reenact.DEFAULT_PASTE, label="paste-back",
                                    info="with face crop: soft fades the result into the source (no square seam); "
                                         "hard pastes the square as it is", elem_id="reenact-paste")
                re_compare = gr.Checkbox(False, label="side by side", info="source | driving | result")
            re_button = gr.Button("Reenact", variant="primary", elem_id="reenact-button")
            re_out = gr.Video(label="result", interactive=False, elem_id="reenact-result")
            re_report = gr.Markdown(elem_id="reenact-report")
            re_button.click(run_reenact, [re_source, re_driving, re_motion, re_crop, re_paste, re_compare],
                            [re_out, re_report],
                            **HEAVY)
        with gr.Tab("Reconstruct"):
            gr.Markdown("Rebuild a video from its first frame and one latent token per frame, scored against "
                        "the original and against copying the reference frame.")
            rc_video = gr.Video(label="video", sources=["upload"], include_audio=True, elem_id="reconstruct-video")
            rc_button = gr.Button("Reconstruct", variant="primary", elem_id="reconstruct-button")
            rc_out = gr.Video(label="reference | original | reconstruction", interactive=False,
                              elem_id="reconstruct-result")
            rc_report = gr.Markdown(elem_id="reconstruct-report")
            rc_button.click(run_reconstruct, [rc_video], [rc_out, rc_report], **HEAVY)
        with gr.Tab("Codec"):
            gr.Markdown("Code a video into an `.imf` file (a keyframe, then one entropy-coded token per "
                        "frame), decode it, and compare with x265 at the same bitrate."
                        + (f"\n\n**Unavailable:** {res.tables_problem}" if res.tables is None else ""))
            with gr.Row():
                cd_video = gr.Video(label="video", sources=["upload"], include_audio=True, height=320,
                                    elem_id="codec-video")
                with gr.Column():
                    cd_rate = gr.Radio(list(codec.RATE_MODES), value="quality", label="rate", elem_id="codec-rate",
                                       info="a token quality, or a target bitrate of the tokens that picks one")
                    cd_quality = gr.Slider(lo, max(hi, lo + 1), value=default_q, step=1, label="token quality",
                                           info="higher is finer and costs more bits", interactive=lo < hi,
                                           elem_id="codec-quality")
                    cd_target = gr.Number(codec.default_target_kbps(res), minimum=0,
                                          label="target kbps (tokens)", visible=False, elem_id="codec-target",
                                          info="the highest quality whose tokens fitted within this rate on the "
                                               "fitting data; keyframes not counted")
                    cd_rate.change(rate_widgets, [cd_rate], [cd_quality, cd_target], show_progress="hidden")
                    cd_button = gr.Button("Encode", variant="primary", elem_id="codec-button",
                                          interactive=res.tables is not None)
                    cd_file = gr.File(label=".imf file", interactive=False, elem_id="codec-file")
            with gr.Row():
                cd_decoded = gr.Video(label="IMF decoded", interactive=False, height=320, elem_id="codec-decoded")
                cd_x265 = gr.Video(label="x265 at the same rate", interactive=False, height=320, elem_id="codec-x265")
            cd_report = gr.Markdown(elem_id="codec-report")
            cd_button.click(run_codec, [cd_video, cd_rate, cd_quality, cd_target],
                            [cd_file, cd_decoded, cd_x265, cd_report], **HEAVY)
        with gr.Tab("Edit"):
            gr.Markdown("Change a face's head pose and expression with the token editor ψ; the preview follows "
                        "the sliders." + (f"\n\n**Unavailable:** {res.editor_problem}" if res.editor is None else ""))
            ed_state = gr.State(None)
            with gr.Row():
                with gr.Column():
                    ed_image = gr.Image(label="face", type="filepath", sources=["upload"], elem_id="edit-image")
                    ed_crop = gr.Checkbox(True, label="face crop", info="cut the image around its face "
                                                                        "(else its centre square)")
                ed_source = gr.Image(label="the model's source frame", interactive=False, height=256)
                ed_out = gr.Image(label="edited", interactive=False, height=256, elem_id="edit-result")
            sliders = []
            with gr.Row():
                for name in names:
                    low, high, step, neutral = edit.slider(name)
                    sliders.append(gr.Slider(low, high, value=neutral, step=step, label=name, elem_id=f"edit-{name}"))
            ed_report = gr.Markdown(elem_id="edit-report")
            prep_outputs = [ed_state, ed_source, ed_out, *sliders, ed_report]
            ed_image.upload(run_prepare, [ed_image, ed_crop], prep_outputs, concurrency_id="edit")
            ed_crop.input(run_prepare, [ed_image, ed_crop], prep_outputs, concurrency_id="edit")
            for sl in sliders:
                sl.change(run_render, [ed_state, *sliders], [ed_out, ed_report], trigger_mode="always_last",
                          show_progress="hidden", concurrency_id="edit")
        app.unload(end_session)
    app.queue(default_concurrency_limit=1)
    return app


def launch(app: gr.Blocks, host: str = "127.0.0.1", port: int = 7860, limits: Limits = Limits(),
           quiet: bool = False, block: bool = True) -> None:
    """Serve ``app`` on ``host:port`` (localhost only by default; no share link, no SSR)."""
    app.launch(server_name=host, server_port=port, share=False, max_file_size=f"{limits.max_upload_mb:g}mb",
               ssr_mode=False, quiet=quiet, show_error=False, prevent_thread_lock=not block, inbrowser=False,
               footer_links=[], run_history=False, mcp_server=False)
