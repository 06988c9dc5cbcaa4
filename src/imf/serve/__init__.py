"""``imf serve``: the web app (Gradio). Reenact, Reconstruct, Codec and Edit tabs in the browser.

- ``limits`` / ``uploads``: what an upload may be (size, length, frame size) and the checks that turn a bad
  one into a one-line message for the page.
- ``session``: per-session temporary folders, removed when the page or the server closes.
- ``resources``: the models, loaded once (the IMF pipeline, its codec tables, the token editor, LPIPS).
- ``reenact``, ``reconstruct``, ``codec``, ``edit``: each tab's job, plain functions on files that call the
  library (``imf.pipeline``, ``imf.eval``, ``imf.codec``, ``imf.editing``); no Gradio in them.
- ``app``: the Gradio page around them (the only module that imports gradio, an optional extra:
  ``pip install 'imf[serve]'``).
"""
