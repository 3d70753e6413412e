"""Procedural retinal fundus phantom: the embedded default dataset.

Renders DRIVE-like fundus photographs with a pixel-exact vessel mask, deterministically from a
seed, so demos and tests need no download. Anatomy (optic disc, fovea, vessel tree) is built in
normalised coordinates ([0, 1]^2, y pointing down) and only then rasterised, so one seed gives
the same eye at every resolution.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

# Per-channel mean / std of RGB inside the FOV of skimage.data.retina(), as measured by
# retina_colour_statistics() (tests/test_phantom.py checks they still agree).
RETINA_MEAN_RGB = (206.61, 82.55, 59.63)
RETINA_STD_RGB = (23.63, 20.01, 14.99)

FOV_RADIUS = 0.475  # FOV diameter 0.95 of the image width, centred
_STEP = 0.006  # growth step length; small enough that polylines look smooth at 1024 px
_MAX_STEPS = 260
_W_MIN = 0.0028  # ~1.4 px at 512: DRIVE-like finest visible vessels
_MAIN_W = 0.008  # trunks at least this wide stay in the mask even below half a pixel (32 px)
_TAPER = 0.998  # slow taper along a segment, on top of the Murray split at each branch point
_BRANCH_GAP = 0.13  # mean distance between branch points
_FAZ_STOP, _FAZ_AVOID = 0.055, 0.16  # foveal avascular zone: vessels stop / bend away
# Per-channel fraction of light a vessel removes at contrast 1: blood absorbs green most; veins
# (deoxygenated) are darker and more purple than arteries.
_ABSORB_ARTERY = np.array([0.14, 0.45, 0.36])
_ABSORB_VEIN = np.array([0.30, 0.62, 0.50])


@dataclass(frozen=True)
class PhantomSample:
    """One phantom: RGB photo, vessel mask (False outside the FOV) and circular FOV."""

    image: np.ndarray  # (res, res, 3) uint8
    vessels: np.ndarray  # (res, res) bool
    fov: np.ndarray  # (res, res) bool


@dataclass
class _Vessel:
    points: list[tuple[float, float]]
    widths: list[float]
    artery: bool
    contrast: float


def retina_colour_statistics() -> dict[str, tuple[float, float, float]]:
    """Measure mean and std of R, G, B inside the FOV of ``skimage.data.retina()``.

    This is the calibration source of RETINA_MEAN_RGB / RETINA_STD_RGB. The FOV is the largest
    non-black component (max channel > 20) with holes filled (dark lesions are still retina).
    """
    from scipy import ndimage
    from skimage import data

    photo = data.retina()
    labels, _ = ndimage.label(photo.max(axis=-1) > 20)
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    fov = ndimage.binary_fill_holes(labels == sizes.argmax())
    pixels = photo[fov].astype(np.float64)
    mean, std = pixels.mean(axis=0), pixels.std(axis=0)
    return {"mean": tuple(float(v) for v in mean), "std": tuple(float(v) for v in std)}


def _wrap(angle: float) -> float:
    return (angle + math.pi) % (2 * math.pi) - math.pi


def _flow_heading(
    dx: float, dy: float, temporal: int, length: float = 0.1, spread: float = 1.5
) -> float:
    """Heading of the curve y ~ h*(1 - exp(-u/length)) through (u, dy), u = temporal offset.

    These curves fan out radially from the disc and bend around the fovea like the arcades;
    nasally (u <= 0) they are plain radial lines.
    """
    u = dx * temporal
    if u <= 1e-3:
        return math.atan2(dy, dx)
    e = math.exp(-u / length)
    # + spread * dy: far temporally the lines fan out instead of running in parallel bundles.
    return math.atan2(dy * e / ((1 - e) * length) + spread * dy, temporal)


def _murray_split(rng: np.random.Generator, w: float) -> tuple[float, float, float, float]:
    """Split width w into (w1, w2) with w^3 = w1^3 + w2^3, plus Murray's optimal angles."""
    f = rng.uniform(0.05, 0.5)  # share of flow going into the smaller child
    w1, w2 = w * (1 - f) ** (1 / 3), w * f ** (1 / 3)
    cos1 = (w**4 + w1**4 - w2**4) / (2 * w**2 * w1**2)
    cos2 = (w**4 + w2**4 - w1**4) / (2 * w**2 * w2**2)
    return w1, w2, math.acos(min(1.0, cos1)), math.acos(min(1.0, cos2))


def _grow_tree(
    rng: np.random.Generator, disc: tuple[float, float], fovea: tuple[float, float], temporal: int
) -> list[_Vessel]:
    """Grow the vessel tree from the disc as steered random walks that branch (Murray's law)."""
    dx0, dy0 = disc
    fx, fy = fovea
    stack: list[tuple] = []  # (x, y, heading, width, artery, contrast, guide)
    vein_w = rng.uniform(0.012, 0.016)
    for sign in (-1, 1):  # superior (-1, y up) and inferior arcade
        for artery in (False, True):
            w = vein_w * (rng.uniform(0.72, 0.85) if artery else rng.uniform(0.92, 1.0))
            # Guide curve y(u) = disc_y + sign*(H*(1 - exp(-u/L)) + drift*u), u = temporal
            # distance from the disc: leaves the disc steeply, then arches around the fovea.
            guide = (rng.uniform(0.2, 0.28), rng.uniform(0.08, 0.13), rng.uniform(-0.1, 0.15))
            heading = math.atan2(sign * guide[0] / guide[1], temporal) + rng.normal(0, 0.1)
            start = (dx0 + rng.normal(0, 0.008), dy0 + sign * 0.01)
            stack.append((*start, heading, w, artery, rng.uniform(0.85, 1.0), (*guide, sign)))
    for _ in range(int(rng.integers(3, 6))):  # smaller nasal trunks fanning away from the fovea
        heading = math.atan2(rng.uniform(-1.6, 1.6), -temporal)
        start = (dx0 + rng.normal(0, 0.01), dy0 + rng.normal(0, 0.01))
        w = rng.uniform(0.006, 0.009)
        stack.append((*start, heading, w, bool(rng.integers(2)), rng.uniform(0.7, 0.95), None))

    vessels: list[_Vessel] = []
    while stack and len(vessels) < 600:  # hard cap keeps the worst-case render time bounded
        x, y, th, w, artery, contrast, guide = stack.pop()
        pts, ws = [(x, y)], [w]
        turn, travelled = 0.0, 0.0
        # Gamma(2) gaps: more regular than exponential, so no long bare stretches of trunk.
        next_branch = rng.gamma(2.0, _BRANCH_GAP / 2)
        side = 1 if rng.random() < 0.5 else -1
        noise = rng.standard_normal(_MAX_STEPS)
        for i in range(_MAX_STEPS):
            # Smoothly varying curvature (AR(1) on the turn rate) gives tortuous, not jagged paths.
            turn = 0.9 * turn + 0.012 * noise[i]
            th += turn
            if guide is not None:
                height, length, drift, sign = guide
                u = max((x - dx0) * temporal, 0.0)
                target = dy0 + sign * (height * (1 - math.exp(-u / length)) + drift * u)
                slope = sign * (height / length * math.exp(-u / length) + drift)
                th += 0.25 * _wrap(math.atan2(slope + 4.0 * (target - y), temporal) - th)
            else:  # weak pull along the arcade-shaped flow field: vessels rarely double back
                th += 0.03 * _wrap(_flow_heading(x - dx0, y - dy0, temporal) - th)
            vx, vy = fx - x, fy - y
            dist = math.hypot(vx, vy)
            if dist < _FAZ_STOP:
                break
            if dist < _FAZ_AVOID:  # turn away if heading into the avascular zone
                off = _wrap(th - math.atan2(vy, vx))
                if abs(off) < math.pi / 2:
                    th += math.copysign(0.2 * (1 - dist / _FAZ_AVOID), off)
            x, y = x + _STEP * math.cos(th), y + _STEP * math.sin(th)
            travelled += _STEP
            w *= _TAPER
            pts.append((x, y))
            ws.append(w)
            if w < _W_MIN or math.hypot(x - 0.5, y - 0.5) > FOV_RADIUS + 0.01:
                break
            if travelled >= next_branch:
                w, child_w, a_parent, a_child = _murray_split(rng, w)
                side = -side if rng.random() < 0.75 else side  # children mostly alternate sides
                if child_w >= _W_MIN:
                    child_contrast = contrast * rng.uniform(0.85, 1.0)
                    stack.append((x, y, th - side * a_child, child_w, artery, child_contrast, None))
                th += side * a_parent
                next_branch = travelled + rng.gamma(2.0, _BRANCH_GAP / 2)
        vessels.append(_Vessel(pts, ws, artery, contrast))
    return vessels


def _rasterise(vessels: list[_Vessel], res: int) -> tuple[np.ndarray, np.ndarray]:
    """Draw supersampled, then box-downsample: returns (coverage, per-channel transmission)."""
    ss = 4 if res <= 256 else 3 if res <= 512 else 2
    n = res * ss
    mask = Image.new("L", (n, n), 0)
    trans = Image.new("RGB", (n, n), (255, 255, 255))
    draw_mask, draw_trans = ImageDraw.Draw(mask), ImageDraw.Draw(trans)
    # Veins first: at crossings the artery, usually lying on top, wins.
    for v in sorted(vessels, key=lambda v: v.artery):
        pts = np.asarray(v.points) * n
        true_px = np.asarray(v.widths) * n
        # Vessels at least half an output pixel wide (and the main trunks at any res, so the
        # arcades survive at 32 px) are drawn >= 1 output px wide: the mask then shows them as
        # continuous lines instead of coverage-threshold speckle. Thinner ones only darken.
        in_mask = (true_px >= 0.5 * ss) | (np.asarray(v.widths) >= _MAIN_W)
        wint = np.maximum(1, np.rint(np.where(in_mask, np.maximum(true_px, ss), true_px)))
        wint = wint.astype(int)
        absorb = _ABSORB_ARTERY if v.artery else _ABSORB_VEIN
        # PIL widths are integers: draw runs of equal integer width, sharing end points.
        cuts = [0, *np.flatnonzero(np.diff(wint)) + 1, len(wint)]
        for a, b in zip(cuts[:-1], cuts[1:], strict=True):
            seg = [tuple(p) for p in pts[a : min(b + 1, len(pts))]]
            width = int(wint[a])
            # Widened lines are fainter, so the image keeps each vessel's true total darkening.
            strength = v.contrast * min(1.0, float(true_px[a:b].mean()) / width)
            colour = tuple(int(round(255 * (1 - strength * k))) for k in absorb)
            r = width / 2
            targets = [(draw_trans, colour)] + [(draw_mask, 255)] * bool(in_mask[a])
            for draw, fill in targets:
                if len(seg) > 1:
                    draw.line(seg, fill=fill, width=width, joint="curve")
                for px, py in (seg[0], seg[-1]):  # round caps hide gaps between runs
                    draw.ellipse((px - r, py - r, px + r, py + r), fill=fill)
    coverage = np.asarray(mask, np.float32).reshape(res, ss, res, ss).mean(axis=(1, 3)) / 255
    transmission = np.asarray(trans, np.float32).reshape(res, ss, res, ss, 3).mean(axis=(1, 3))
    return coverage, transmission / 255


def _smooth_noise(rng: np.random.Generator, grid: int, sigma: float, res: int) -> np.ndarray:
    """Unit-std gaussian-filtered noise on a fixed grid, resized to res (resolution independent)."""
    from scipy import ndimage

    field = ndimage.gaussian_filter(rng.standard_normal((grid, grid)), sigma, mode="wrap")
    field = (field / field.std()).astype(np.float32)
    return np.asarray(Image.fromarray(field).resize((res, res), Image.BICUBIC))


def render_phantom(seed: int, res: int) -> PhantomSample:
    """Render one fundus phantom at res x res pixels; identical output for identical (seed, res)."""
    if not 32 <= res <= 1024:
        raise ValueError(f"res must be in [32, 1024], got {res}")
    # Separate streams: anatomy draws never depend on res, so the eye is the same at every res.
    anatomy_ss, texture_ss, noise_ss = np.random.SeedSequence(seed).spawn(3)
    rng = np.random.default_rng(anatomy_ss)
    temporal = 1 if rng.random() < 0.5 else -1  # +1: disc on the left, fovea to its right
    disc_d = rng.uniform(0.15, 0.18)
    disc = (0.5 - temporal * rng.uniform(0.22, 0.28), 0.5 + rng.normal(0, 0.015))
    fovea = (disc[0] + temporal * 2.5 * disc_d, disc[1] + rng.uniform(0.01, 0.04))
    vessels = _grow_tree(rng, disc, fovea, temporal)

    c = (np.arange(res, dtype=np.float32) + 0.5) / res  # pixel centres, normalised
    yy, xx = c[:, None], c[None, :]
    r = np.hypot(xx - 0.5, yy - 0.5)
    fov = r <= FOV_RADIUS

    trng = np.random.default_rng(texture_ss)
    blotch = _smooth_noise(trng, 48, 2.5, res)[..., None]
    grain = _smooth_noise(trng, 160, 1.0, res)[..., None]
    gradient = trng.normal(0, 0.08, 2)  # uneven illumination across the photo
    # Relative background brightness, per channel: vignetting hits green/blue harder (redder rim).
    img = 1 - np.array([0.30, 0.45, 0.40]) * (r[..., None] / FOV_RADIUS) ** 2.5
    img = img * (1 + gradient[0] * (xx - 0.5) + gradient[1] * (yy - 0.5))[..., None]
    img = img * np.exp(np.array([0.04, 0.07, 0.06]) * blotch + 0.025 * grain)
    d2_fovea = ((xx - fovea[0]) ** 2 + (yy - fovea[1]) ** 2)[..., None]
    img = img * (1 - np.array([0.06, 0.18, 0.12]) * np.exp(-d2_fovea / (2 * 0.11**2)))
    img = img * (1 - np.array([0.12, 0.35, 0.25]) * np.exp(-d2_fovea / (2 * 0.025**2)))
    img = img * np.asarray(RETINA_MEAN_RGB)

    # Optic disc: yellowish, soft-edged, with a paler cup offset temporally; vessels go on top.
    d_disc = np.hypot(xx - disc[0], yy - disc[1]) / (disc_d / 2)
    alpha = 0.85 / (1 + np.exp(np.minimum((d_disc - 1) / 0.05, 50)))
    img = img * (1 - alpha[..., None]) + alpha[..., None] * np.array([245, 190, 130])
    d_cup = np.hypot(xx - disc[0] - temporal * 0.2 * disc_d, yy - disc[1]) / (0.2 * disc_d)
    cup = 0.5 * np.exp(-(d_cup**2))[..., None]
    img = img * (1 - cup) + cup * np.array([255, 235, 200])

    coverage, transmission = _rasterise(vessels, res)
    img = img * transmission
    # Calibrate: match each channel's FOV mean/std to the real photo (std gain clamped so tiny
    # renders with little structure are not blown up).
    inside = img[fov]
    gain = np.clip(np.asarray(RETINA_STD_RGB) / inside.std(axis=0), 0.5, 2.0)
    img = np.asarray(RETINA_MEAN_RGB) + (img - inside.mean(axis=0)) * gain
    img = img + np.random.default_rng(noise_ss).normal(0, 1.5, img.shape)  # sensor noise
    img = np.where(fov[..., None], np.clip(np.rint(img), 0, 255), 0).astype(np.uint8)
    return PhantomSample(image=img, vessels=(coverage >= 0.5) & fov, fov=fov)


def phantom_samples(n: int, res: int, seed: int = 0) -> list[PhantomSample]:
    """Render n phantoms; sample i uses a seed derived from (seed, i), independent of n."""
    seeds = [int(np.random.SeedSequence([seed, i]).generate_state(1)[0]) for i in range(n)]
    return [render_phantom(s, res) for s in seeds]
