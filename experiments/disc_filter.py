"""Probe: keep the synthetic pairs whose mask grows from an optic disc at a side of the
field, as the real masks do (experiments/disc_layout.py's measure: the densest point of
the thick vessels lies in the outer 30 % of the width, and the share of thick-vessel pixels
near it is at least the real training masks' minimum). Keeps the first N_KEEP passing pairs
of a generated pool in the pool's order (no ranking: only the layout is chosen) and saves
them as a prepared dataset for `synthmed evaluate utility --res 512`
(docs/drive512.md, "Where Stage I's trees start").

Usage: python experiments/disc_filter.py POOL REAL_TRAIN OUT [N_KEEP]
"""

import sys
from pathlib import Path

import numpy as np
from disc_layout import disc_scores

from synthmed.data.sources import load_any

pool, real_train, out = sys.argv[1], sys.argv[2], Path(sys.argv[3])
n_keep = int(sys.argv[4]) if len(sys.argv) > 4 else 200
synth = load_any(pool, 512)
real_share, _ = disc_scores(load_any(real_train, 512).masks)
share, where = disc_scores(synth.masks)
passing = np.flatnonzero((share >= real_share.min()) & ((where < 0.3) | (where > 0.7)))
print(f"{len(passing)} of {len(share)} masks pass; keeping the first {n_keep}")
if len(passing) < n_keep:
    sys.exit(f"{pool}: only {len(passing)} masks pass, fewer than {n_keep}")
keep = passing[:n_keep].tolist()
print(f"{sum(k < 200 for k in keep)} of the kept are among the first 200")
synth.subset(keep).save(out)
