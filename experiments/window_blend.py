"""Probe: a steeper blend between Stage II's windows. The tent blend averages two windows'
renderings almost everywhere, which smooths their fine grain (docs/drive512.md,
"Sharpness"); weights tent**POWER hand over from one window to the next in a narrower
band. Generates N pairs from a saved pipeline with that blend, then prints their sharpness
and intensity KL against REAL_TRAIN; evaluate utility with `synthmed evaluate utility`.

Usage: python experiments/window_blend.py PIPELINE POWER REAL_TRAIN OUT [N]  (N = 200)
"""

import sys

from synthmed import pipeline
from synthmed.data.sources import load_any
from synthmed.evaluation.fidelity import compare_sharpness, intensity_kl
from synthmed.generation import generate_dataset

folder, power, real_train, out = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4]
n = int(sys.argv[5]) if len(sys.argv) > 5 else 200
tent = pipeline._window
pipeline._window = lambda side, device: tent(side, device) ** power  # render() looks it up
generate_dataset(pipeline.SynthMedPipeline.load(folder), n, out)
real, synth = load_any(real_train, 512), load_any(out, 512)
print(f"tent ** {power}: sharpness {compare_sharpness(real, synth)['ratio']:.3f} x real, "
      f"intensity KL {intensity_kl(real, synth)['mean']:.3f}")  # fmt: skip
