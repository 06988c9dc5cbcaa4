"""imf: IMF, the Implicit Motion Function (CVPR 2024), for talking-head generation and video coding."""

from imf.checkpoint import load_model, model_hash
from imf.config import PRESETS, IMFConfig
from imf.models.imf import IMF, ReferenceState

__version__ = "0.1.0"
__all__ = ["IMF", "IMFConfig", "ReferenceState", "PRESETS", "load_model", "model_hash", "__version__"]
