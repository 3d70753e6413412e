"""SynthMed: synthetic medical images from dual GANs (Guibas, Virdi & Li, 2017).

Stage I (geometry) generates segmentation masks from noise; Stage II (photorealism)
translates a mask into an image. The CLI in :mod:`synthmed.cli` only wraps this API.
"""

__version__ = "0.1.0"

from synthmed.errors import UserError  # noqa: E402

__all__ = ["UserError", "__version__"]
