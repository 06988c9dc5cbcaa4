"""``imf data prepare``: the paper-scale training sets (VFHQ, CelebV-HQ, VoxCeleb) from their official metadata
and the raw videos a user downloaded (nothing is downloaded here), cut, cropped and written as shards.

One parser per data set reads its metadata in its published format (``vfhq``, ``celebvhq``, ``voxceleb``)
into ``ClipSpec``s (``spec``); ``cut`` cuts one clip out of a raw video; ``build`` runs it all, in
parallel, resumably, into a shard folder (``imf.data.shards``) with a report of what was missing.
"""

from imf.data.prepare.build import DATASETS, PrepareResult, prepare_dataset
from imf.data.prepare.spec import ClipSpec, ParsedMeta

__all__ = ["DATASETS", "ClipSpec", "ParsedMeta", "PrepareResult", "prepare_dataset"]
