"""``imf call``: a live video call with the IMF codec, sender and receiver over TCP (docs/call.md).

The wire carries an ``.imf`` stream (docs/imf-format.md): the preamble in the handshake, then one record
per frame (the reference keyframe, one entropy-coded token per frame, a new keyframe at each scene cut),
each behind a two-number prefix (frame index, capture time), and the receiver sends one byte back per frame
shown. :mod:`.protocol` is the wire, :mod:`.sender` captures, encodes causally and never buffers without
bound, :mod:`.receiver` decodes each frame as soon as its message is whole, :mod:`.stats` measures both ends.

Typical use (two processes, or two threads)::

    receiver = imf.call.CallReceiver(model, tables=tables, listen=("127.0.0.1", 5000), output="out.mp4")
    stats = receiver.run()                                            # one call
    imf.call.send_call(model, "clip.mp4", ("127.0.0.1", 5000), tables=tables)   # on the other side
"""

from imf.call.protocol import CALL_VERSION, CallFailed, CallRefused
from imf.call.receiver import CallReceiver
from imf.call.sender import send_call
from imf.call.source import FrameSource, open_source
from imf.call.stats import ReceiveStats, SendStats

__all__ = ["CALL_VERSION", "CallFailed", "CallRefused", "CallReceiver", "send_call", "FrameSource", "open_source",
           "ReceiveStats", "SendStats"]
