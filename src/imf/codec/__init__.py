"""The IMF video codec (docs/imf-format.md).

A keyframe (reference frame) is intra-coded with a still-image codec; every other frame is one latent
token, quantized per dimension (:mod:`.quantizer`) and range coded with integer probability tables
(:mod:`.entropy`, static or temporal model, :mod:`.packets`) fitted on training tokens (:mod:`.fit`) and
stored beside the model (:mod:`.tables`). :mod:`.bitstream` is the container, :mod:`.encoder` and
:mod:`.decoder` run the model closed loop on a :class:`TokenCodec` (quantize + range code one token stream:
``compress(tokens) -> (bytes, tokens_hat)``, ``decompress(bytes) -> tokens_hat``).

Typical use::

    model = imf.load_model(ckpt); tables = imf.codec.load_tables(ckpt)
    stats = imf.codec.encode_video(model, "in.mp4", "out.imf", tables=tables, quality=6)
    for frame in imf.codec.decode_file("out.imf", model, tables=tables): ...
"""

from imf.codec.bitstream import FORMAT_VERSION, ImfHeader
from imf.codec.decoder import decode_file, iter_units, read_header
from imf.codec.encoder import encode_frames, encode_video
from imf.codec.fit import fit_codec, fit_tables
from imf.codec.quantizer import DEFAULT_QUALITIES, DEFAULT_QUALITY, TokenQuantizer, step_scale
from imf.codec.stats import EncodeStats
from imf.codec.tables import CodecTables, has_tables, load_tables
from imf.codec.token_codec import TokenCodec

__all__ = ["FORMAT_VERSION", "ImfHeader", "decode_file", "iter_units", "read_header", "encode_frames",
           "encode_video", "fit_codec", "fit_tables", "DEFAULT_QUALITIES", "DEFAULT_QUALITY", "TokenQuantizer",
           "step_scale", "EncodeStats", "CodecTables", "has_tables", "load_tables", "TokenCodec"]
