"""Feature-space fidelity: FID, KID, precision / recall / density / coverage.

Every number here depends on the network that maps images to features, so that network is a
parameter (a :class:`FeatureExtractor`) whose ``name`` travels with the numbers:
:func:`load_inception` gives the InceptionV3 features FID was defined with (weights from a local
file, never downloaded); :func:`train_domain_extractor` gives, when there are no such weights, a
small encoder trained on data that shares no image with the compared sets (procedural phantoms
by default, or a disjoint real set of the same modality): an encoder trained on the very real
images it then compares against would have learnt those images, and score a copy of them too
well. Its numbers compare synthetic sets with each other on the same real data, never with
published numbers. With tens of images FID is biased (FIELD_NOTES.md): prefer KID, and read
both against a real-vs-real reference at the same sample sizes (fidelity.matched_fidelity),
not against zero.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from synthmed.data.prepared import PreparedDataset
from synthmed.errors import UserError


class FeatureExtractor(nn.Module):
    """Maps uint8 images (N, C, H, W) in [0, 255] to float features (N, ``num_features``).

    The torchmetrics convention with ``normalize=False``. Subclasses set ``name`` (printed
    beside every number computed with them), ``num_features`` (torchmetrics reads it instead of
    running a dummy 299 x 299 image) and ``in_channels``.
    """

    name: str = "unnamed-extractor"
    training_data: str = "unknown data"  # what the network learnt from, in a few words
    num_features: int
    in_channels: int = 3

    def match_channels(self, images: Tensor) -> Tensor:
        """Repeat a gray image to the channels the network wants, or average colour to gray."""
        c = images.shape[1]
        if c == self.in_channels:
            return images
        if c == 1:
            return images.expand(-1, self.in_channels, -1, -1)
        if self.in_channels == 1:
            return images.float().mean(dim=1, keepdim=True).round().to(torch.uint8)
        raise UserError(f"{self.name}: expects {self.in_channels} channel(s), got {c}")


class InceptionFeatures(FeatureExtractor):
    """InceptionV3 pool3 features (2048-d); inputs of any size are resized to 299 inside."""

    num_features = 2048
    in_channels = 3

    def __init__(self, net: nn.Module, name: str) -> None:
        super().__init__()
        self.net = net
        self.name = name
        self.training_data = "ImageNet (InceptionV3 weights from a local file)"

    def forward(self, images: Tensor) -> Tensor:
        return self.net(self.match_channels(images))


def read_state_dict(path: str | Path) -> dict[str, Tensor]:
    """Tensors from a ``.safetensors`` or ``.pth``/``.pt`` file, without running its code.

    A ``.pth`` is read with ``torch.load(weights_only=True)``, which accepts tensors and plain
    containers only: a downloaded pickle cannot run code when loaded.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: weights file not found")
    if path.suffix not in (".safetensors", ".pth", ".pt"):
        raise UserError(f"{path}: weights must be a .safetensors (preferred) or .pth file")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path), device="cpu")
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # safetensors and torch.load raise many types on a bad file
        raise UserError(f"{path}: cannot read weights ({type(e).__name__}: {e})") from None
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise UserError(f"{path}: not a state dict (a mapping of names to tensors)")
    return state


def load_inception(path: str | Path) -> FeatureExtractor:
    """InceptionV3 pool features for FID/KID, with weights from a local file.

    The architecture is torch-fidelity's TensorFlow-compatible InceptionV3 (the one torchmetrics
    uses), so with its original weights the numbers match torchmetrics' ``feature=2048``.

    Args:
        path: ``.safetensors`` (preferred) or ``.pth`` state dict for that architecture, e.g.
            torch-fidelity's ``weights-inception-2015-12-05-6726825d.pth``, downloaded by the
            user beforehand.
    """
    from torchmetrics.utilities.imports import _TORCH_FIDELITY_AVAILABLE

    if not _TORCH_FIDELITY_AVAILABLE:
        raise UserError(
            "Inception features need the torch-fidelity package (pip install torch-fidelity, "
            "with a torchvision built for your torch); or use the domain extractor instead"
        )
    from torchmetrics.image.fid import NoTrainInceptionV3

    state = read_state_dict(path)
    # torch-fidelity only takes a path and unpickles it with weights_only=False; hand it our
    # own re-serialisation of the tensors read safely above, never the user's file.
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    try:
        net = NoTrainInceptionV3("inception-v3-compat", ["2048"], buffer)
    except RuntimeError as e:  # load_state_dict: missing / unexpected / mis-shaped tensors
        raise UserError(f"{path}: not torch-fidelity InceptionV3 weights ({e})") from None
    return InceptionFeatures(net, f"inception-v3-pool3-2048({Path(path).name})")


DOMAIN_WIDTHS = (32, 64, 128, 256)  # channels per stride-2 block; the last is the feature size
DOMAIN_MAX_RESOLUTION = 128  # larger data is downsampled for the encoder: a CPU budget


def _resize(images: Tensor, res: int) -> Tensor:
    """Float images resized to res x res, antialiased when shrinking (as in training)."""
    if images.shape[-2:] == (res, res):
        return images
    return F.interpolate(images, size=(res, res), mode="bilinear", antialias=True)


def _block(c_in: int, c_out: int, first: bool) -> nn.Sequential:
    # Pre-activation: each block normalises its input, so the block's output (the map that is
    # pooled into features) keeps each image's own scale. Pooling a GroupNorm output instead
    # gives nearly the same vector for every image. GroupNorm, not BatchNorm: features must
    # not depend on which images share a batch.
    conv = nn.Conv2d(c_in, c_out, 3, stride=2, padding=1)
    return nn.Sequential(conv) if first else nn.Sequential(nn.GroupNorm(8, c_in), nn.SiLU(), conv)


class DomainEncoder(FeatureExtractor):
    """Four stride-2 conv blocks + global average pooling -> 256-d, trained to segment vessels.

    The segmentation heads (a 1x1 conv per scale, upsampled and summed) exist only for
    training; features are the pooled output of the last block. Inputs are resized to the
    resolution the encoder was trained at, so the features mean the same at any input size.
    After training, features are centred on the real set's mean and scaled to unit variance
    on average per dimension: FID then reads in units of the real set's spread, whatever the
    training, and KID's cubic kernel does not drown the spread in a large common offset.
    The centring and scaling come from the encoder's own training data, never the compared sets.
    ``training_data`` says in a few words what it was trained on (goes into the results).
    """

    def __init__(
        self,
        in_channels: int,
        resolution: int,
        name: str = "synthmed-domain-encoder",
        training_data: str = "unknown data",
    ):
        super().__init__()
        self.in_channels, self.resolution, self.name = in_channels, resolution, name
        self.training_data = training_data
        self.num_features = DOMAIN_WIDTHS[-1]
        widths = (in_channels, *DOMAIN_WIDTHS)
        pairs = list(zip(widths, widths[1:], strict=False))
        self.blocks = nn.ModuleList(_block(a, b, i == 0) for i, (a, b) in enumerate(pairs))
        self.heads = nn.ModuleList(nn.Conv2d(c, 1, 1) for c in DOMAIN_WIDTHS)
        self.register_buffer("feature_mean", torch.zeros(self.num_features))
        self.register_buffer("feature_scale", torch.ones(()))

    def _scales(self, images: Tensor) -> list[Tensor]:
        x = _resize(self.match_channels(images).float(), self.resolution) / 127.5 - 1.0
        maps = []
        for block in self.blocks:
            x = block(x)
            maps.append(x)
        return maps

    def segment(self, images: Tensor) -> Tensor:
        """Vessel logits (N, 1, R, R): the self-supervision target is the real vessel mask."""
        size = (self.resolution,) * 2
        maps = self._scales(images)
        logits = [
            F.interpolate(h(m), size=size, mode="bilinear")
            for h, m in zip(self.heads, maps, strict=True)
        ]
        return torch.stack(logits).sum(dim=0)

    def forward(self, images: Tensor) -> Tensor:
        pooled = self._scales(images)[-1].mean(dim=(2, 3))
        return (pooled - self.feature_mean) * self.feature_scale


def train_domain_extractor(
    real: PreparedDataset,
    steps: int = 300,
    seed: int = 0,
    device: str | torch.device = "cpu",
    batch_size: int = 16,
    lr: float = 2e-3,
    training_data: str | None = None,
) -> FeatureExtractor:
    """A :class:`DomainEncoder` trained on ``real`` to predict its vessel masks.

    For when no Inception weights are available. ``real`` must share no image with the sets
    the features will compare (see the module docstring; :func:`synthmed.evaluation.suite.
    pick_extractor` chooses it). ``training_data``: a few words on what ``real`` is, for the
    extractor's name (default: "N pairs"). Works at the data's resolution up to
    :data:`DOMAIN_MAX_RESOLUTION`. Deterministic given ``seed`` on the CPU: the seed fixes the
    initialisation, batches and flips; the global RNG state is restored afterwards.
    """
    if steps < 1 or len(real) < 2:
        raise UserError("the domain extractor needs at least 1 step and 2 training images")
    training_data = training_data or f"{len(real)} pairs"
    name = f"synthmed-domain-encoder(vessel-seg on {training_data}, {steps} steps, seed {seed})"
    res = min(real.resolution, DOMAIN_MAX_RESOLUTION)
    images = torch.from_numpy(real.images).permute(0, 3, 1, 2).float()
    images = _resize(images, res).round().clamp(0, 255).to(torch.uint8)
    # Area-downsampled masks are soft targets (vessel coverage), which BCE takes as they are.
    masks = F.interpolate(
        torch.from_numpy(real.masks).float()[:, None], size=(res, res), mode="area"
    )
    images, masks = images.to(device), masks.to(device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = DomainEncoder(real.channels, res, name, training_data).to(device)
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        gen = torch.Generator().manual_seed(seed)
        for _ in range(steps):
            idx = torch.randint(len(real), (batch_size,), generator=gen)
            x, y = images[idx], masks[idx]
            if torch.rand((), generator=gen) < 0.5:  # flips: 20 images are few
                x, y = x.flip(-1), y.flip(-1)
            loss = F.binary_cross_entropy_with_logits(model.segment(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    model.eval().requires_grad_(False)
    # Centred and scaled on its own training data: the compared sets must not shape the features.
    features = extract_features(real.images, model)
    model.feature_mean.copy_(features.mean(dim=0))
    model.feature_scale.fill_(float(features.var(dim=0).mean().clamp_min(1e-12).rsqrt()))
    return model


@torch.no_grad()
def extract_features(
    images: np.ndarray, extractor: FeatureExtractor, batch_size: int = 32
) -> Tensor:
    """Features (N, D) float64 of (N, H, W, C) uint8 images, in batches."""
    if images.ndim != 4 or images.dtype != np.uint8:
        raise UserError(f"images must be (N, H, W, C) uint8, got {images.shape} {images.dtype}")
    device = next(extractor.parameters()).device
    x = torch.from_numpy(images).permute(0, 3, 1, 2)
    out = [extractor(x[i : i + batch_size].to(device)).cpu() for i in range(0, len(x), batch_size)]
    return torch.cat(out).double()


def prdc(real: Tensor, fake: Tensor, k: int = 5) -> dict[str, float]:
    """Precision, recall, density and coverage (Naeem et al. 2020) on k-NN balls.

    Each sample's ball reaches its k-th nearest neighbour within its own set. Precision: share
    of fakes inside some real ball; recall: share of reals inside some fake ball; density:
    real balls containing each fake, / k, averaged; coverage: share of real balls that hold a
    fake. Identical sets give 1, 1, about 1 and 1.
    """
    if k < 1 or min(len(real), len(fake)) <= k:
        raise UserError(f"precision/recall need k >= 1 and more than k={k} samples on each side")
    # The k+1-th smallest distance to one's own set skips the zero distance to oneself.
    real_radii = torch.cdist(real, real).kthvalue(k + 1, dim=1).values
    fake_radii = torch.cdist(fake, fake).kthvalue(k + 1, dim=1).values
    d = torch.cdist(real, fake)  # (N_real, N_fake)
    inside_real = d < real_radii[:, None]
    return {
        "precision": inside_real.any(dim=0).double().mean().item(),
        "recall": (d < fake_radii[None, :]).any(dim=1).double().mean().item(),
        "density": (inside_real.sum(dim=0).double() / k).mean().item(),
        "coverage": (d.min(dim=1).values < real_radii).double().mean().item(),
    }


def frechet_distance(real: Tensor, synth: Tensor) -> float:
    """FID between two feature sets (N, D) and (M, D): the Fréchet distance of two Gaussians.

    ||mu_r - mu_s||^2 + tr(S_r) + tr(S_s) - 2 tr sqrt(S_r S_s), with unbiased covariances, as
    torchmetrics defines it. The last trace is computed without any D x D square root: with
    centred features X_r, X_s, the non-zero eigenvalues of S_r S_s are the squared singular
    values of X_s X_r^T / sqrt((N-1)(M-1)), so tr sqrt(S_r S_s) is that matrix's nuclear norm.
    Why: with tens of samples the covariances have rank < D, and the D x D eigen-decomposition
    torchmetrics uses is slow for D = 2048 and returns small complex parts; this is exact,
    real and cheap (an N x M singular value decomposition), so it can run on every split.
    NaN with fewer than two samples on a side (no covariance).
    """
    if min(len(real), len(synth)) < 2:
        return float("nan")
    real, synth = real.double(), synth.double()
    xr, xs = real - real.mean(dim=0), synth - synth.mean(dim=0)
    scale = ((len(real) - 1) * (len(synth) - 1)) ** 0.5
    cross = torch.linalg.matrix_norm(xs @ xr.T, ord="nuc") / scale
    traces = xr.square().sum() / (len(real) - 1) + xs.square().sum() / (len(synth) - 1)
    return float((real.mean(dim=0) - synth.mean(dim=0)).square().sum() + traces - 2 * cross)


def _unbiased_mmd(k_rr: Tensor, k_ss: Tensor, k_rs: Tensor) -> Tensor:
    """Unbiased MMD^2 from the kernel matrices of two equal-sized samples (torchmetrics')."""
    m = k_rr.shape[0]
    within = (k_rr.sum() - k_rr.diagonal().sum()) + (k_ss.sum() - k_ss.diagonal().sum())
    return within / (m * (m - 1)) - 2 * k_rs.sum() / m**2


def kernel_inception_distance(
    real: Tensor, synth: Tensor, subset_size: int, subsets: int = 100, seed: int = 0
) -> tuple[float, float]:
    """KID: mean and std over ``subsets`` random subsets of the unbiased MMD^2 with the cubic
    kernel (x.y / D + 1)^3 (Binkowski et al. 2018), as torchmetrics computes it.

    The kernel matrices are computed once on all samples and each subset only indexes them:
    torchmetrics recomputes them for every subset, which dominated the time of the fifty
    matched splits. The subsets are drawn as torchmetrics draws them (torch.randperm after
    seeding with ``seed``; the global RNG state is restored), so the numbers agree with it.
    """
    real, synth = real.double(), synth.double()
    dim = real.shape[1]

    def kernel(x: Tensor, y: Tensor) -> Tensor:
        return (x @ y.T / dim + 1.0) ** 3

    k_rr, k_ss, k_rs = kernel(real, real), kernel(synth, synth), kernel(real, synth)
    scores = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for _ in range(subsets):
            r = torch.randperm(len(real))[:subset_size]
            s = torch.randperm(len(synth))[:subset_size]
            scores.append(_unbiased_mmd(k_rr[r][:, r], k_ss[s][:, s], k_rs[r][:, s]))
    values = torch.stack(scores)
    return float(values.mean()), float(values.std(unbiased=False))


def metrics_from_features(
    real: Tensor,
    synth: Tensor,
    kid_subset_size: int | None = None,
    k: int = 5,
    seed: int = 0,
) -> dict[str, Any]:
    """FID, KID and precision / recall / density / coverage of features already extracted.

    The workhorse of :func:`feature_metrics`, for callers that extract each set's features
    once and score many subsets of them (the matched real-vs-real splits of
    :func:`synthmed.evaluation.fidelity.matched_fidelity`).

    Args:
        real, synth: (N, D) and (M, D) features of the same extractor.
        kid_subset_size: samples per KID subset; default and maximum min(N, M).
        k: neighbourhood size for precision / recall / density / coverage (lowered to
            min(N, M) - 1 for smaller sets; the ``k`` used is returned).
        seed: fixes KID's random subsets.
    """
    n_real, n_synth = len(real), len(synth)
    if min(n_real, n_synth) < 2:
        raise UserError("FID/KID need at least two real and two synthetic images")
    subset = min(kid_subset_size or n_real, n_real, n_synth)
    # A k-NN ball needs k other samples in its own set: small sets get a smaller k (returned).
    k_used = min(k, n_real - 1, n_synth - 1)
    dim = real.shape[1]
    kid_mean, kid_std = kernel_inception_distance(real, synth, subset, seed=seed)
    out = {"feature_dim": dim, "n_real": n_real, "n_synth": n_synth}
    out.update(fid=frechet_distance(real, synth), kid_mean=kid_mean, kid_std=kid_std)
    return dict(out, kid_subset_size=subset, k=k_used, **prdc(real, synth, k_used))


def feature_metrics(
    real_images: np.ndarray,
    synth_images: np.ndarray,
    extractor: FeatureExtractor,
    kid_subset_size: int | None = None,
    k: int = 5,
    seed: int = 0,
) -> dict[str, Any]:
    """FID, KID and precision / recall / density / coverage of synthetic vs real images.

    Args:
        real_images, synth_images: (N, H, W, C) uint8, as in :class:`PreparedDataset`.
        extractor: the feature network; its ``name`` is returned with the numbers.
        kid_subset_size, k, seed: as in :func:`metrics_from_features`.
    """
    real = extract_features(real_images, extractor)
    synth = extract_features(synth_images, extractor)
    scores = metrics_from_features(real, synth, kid_subset_size, k, seed)
    return {"extractor": extractor.name, **scores}
