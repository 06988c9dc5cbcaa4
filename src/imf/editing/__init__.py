"""Token manipulation (paper §3.4): control conditions, the editor ψ's training, use and evaluation.

- ``conditions``: the ``ConditionExtractor`` interface, condition files (.npy / .csv), ``--set`` parsing.
- ``landmarks``: dlib's 68-point landmarks and face descriptors (models fetched from PyPI, offline after).
- ``measures``: head pose (solvePnP) and eye / mouth openness; ``LandmarkConditions``, the built-in extractor.
- ``clip_conditions``: per-frame conditions of whole clips, cached; user condition files beside clips.
- training ψ on a frozen IMF lives with the other training loops: ``imf.train.editor`` (``EditorTrainer``)
  and ``imf.train.editor_config`` (``EditorTrainConfig``, re-exported here).
- ``pipeline``: editing a source image (crop, measure, ψ, decode).
- ``evaluate``: condition error and identity on held-out frames.

ψ itself is ``imf.models.editor.TokenEditor``. dlib is imported only when landmarks are used.
"""

from imf.editing.conditions import (ConcatConditions, ConditionExtractor, ConditionTrack, check_track, parse_set,
                                    read_condition_file, reorder, write_condition_csv)
from imf.editing.measures import LANDMARK_MEASURES, LandmarkConditions, head_pose, landmark_measures

__all__ = [
    "ConcatConditions", "ConditionExtractor", "ConditionTrack", "check_track", "parse_set", "read_condition_file",
    "reorder", "write_condition_csv", "LANDMARK_MEASURES", "LandmarkConditions", "head_pose", "landmark_measures",
    "EditorTrainConfig",
]


def __getattr__(name: str):
    # EditorTrainConfig lives with the training loops (imf.train.editor_config), which import this package's
    # measures: re-exported lazily so that either side can be imported first
    if name == "EditorTrainConfig":
        from imf.train.editor_config import EditorTrainConfig

        return EditorTrainConfig
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
