"""Probe: how sharp are the synthetic sets against the photos? Prints each set's median
sharpness (variance of the Laplacian inside the field of view, `evaluation.fidelity`) and its
ratio to the real training set's, and the same for the held-out photos box-blurred by 3, 5
and 9 px (docs/drive512.md, "Sharpness").

Usage: python experiments/sharpness.py REAL_TRAIN HELD_OUT [SET ...]  (at 512 px)
"""

import sys

import numpy as np
from scipy import ndimage

from synthmed.data.prepared import PreparedDataset
from synthmed.data.sources import load_any
from synthmed.evaluation.fidelity import compare_sharpness

real, held_out = (load_any(p, 512) for p in sys.argv[1:3])
for path in sys.argv[2:]:
    c = compare_sharpness(real, load_any(path, 512))
    q1, q3 = c["synth_quartiles"]
    print(f"{path}: median {c['synth_median']:.1f} (quartiles {q1:.1f}-{q3:.1f}), "
          f"{c['ratio']:.3f} x real ({c['real_median']:.1f})")  # fmt: skip
for k in (3, 5, 9):
    blurred = ndimage.uniform_filter(held_out.images.astype(float), size=(1, k, k, 1))
    b = PreparedDataset(blurred.astype(np.uint8), held_out.masks, held_out.fov, held_out.names)
    print(f"held-out, {k} px box blur: {compare_sharpness(real, b)['ratio']:.3f} x real")
