"""The parts of IMF, named after the paper's symbols."""

from imf.models.alignment import ImplicitMotionAlignment
from imf.models.discriminator import MultiScaleDiscriminator
from imf.models.feature_encoder import DenseFeatureEncoder
from imf.models.flow_alignment import FlowMotionAlignment
from imf.models.frame_decoder import FrameDecoder
from imf.models.imf import IMF, ReferenceState
from imf.models.keypoint_decoder import KeypointMotionDecoder
from imf.models.token_decoder import LatentTokenDecoder
from imf.models.token_encoder import LatentTokenEncoder

__all__ = ["IMF", "ReferenceState", "LatentTokenEncoder", "DenseFeatureEncoder", "LatentTokenDecoder",
           "ImplicitMotionAlignment", "FrameDecoder", "MultiScaleDiscriminator", "KeypointMotionDecoder",
           "FlowMotionAlignment"]
