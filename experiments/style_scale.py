"""Exploration (docs/drive512.md): sample Stage II's style codes from the fitted
Gaussian widened T times, generate 200 pairs and print the intensity KL against the training
images (the segmenter's F1 then comes from `synthmed evaluate utility`).

Usage: python experiments/style_scale.py PIPELINE_DIR T OUT_DIR
(PIPELINE_DIR from `synthmed generate --save-pipeline`; expects work/drive512/data/train or
$DRIVE512_DATA/train)
"""

import os
import sys

from synthmed.data.prepared import PreparedDataset
from synthmed.data.sources import load_any
from synthmed.evaluation.fidelity import intensity_kl
from synthmed.generation import generate_dataset
from synthmed.pipeline import SynthMedPipeline

# The prepared DRIVE split of scripts/drive512.sh (another run's: DRIVE512_DATA=DIR).
DATA = os.environ.get("DRIVE512_DATA", "work/drive512/data")

pipeline_dir, scale, out = sys.argv[1], float(sys.argv[2]), sys.argv[3]
pipe = SynthMedPipeline.load(pipeline_dir, device="cpu")
pipe.texture.style_scale.mul_(scale)
generate_dataset(pipe, 200, out)
kl = intensity_kl(PreparedDataset.load(f"{DATA}/train"), load_any(out, 512))
print(f"style scale {scale}: intensity KL {kl['mean']:.3f} per channel {kl['per_channel']}")
