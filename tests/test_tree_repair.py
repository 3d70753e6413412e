"""The Stage I tree repair (synthmed.models.tree_repair) on drawn masks at 512 px, where its
settings are in their own units: each flaw it mends, and what it must leave alone."""

from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import ndimage

from synthmed.errors import UserError
from synthmed.evaluation.vessels import vessel_statistics
from synthmed.models.dcgan import GeometryConfig, MaskGenerator
from synthmed.models.pix2pix import TextureConfig, UNetGenerator
from synthmed.models.tree_repair import TreeRepair, repair_tree, repair_trees
from synthmed.pipeline import SynthMedPipeline

SIDE = 512
FOV = np.ones((SIDE, SIDE), bool)


def blank() -> np.ndarray:
    return np.zeros((SIDE, SIDE), bool)


def stats(mask: np.ndarray) -> dict[str, float]:
    return {k: float(v[0]) for k, v in vessel_statistics(mask[None], FOV[None]).items()}


def test_facing_dashes_are_joined_as_wide_as_the_vessel() -> None:
    m = blank()
    m[255:258, 50:200] = True  # a 3 px vessel broken by a 20 px gap
    m[255:258, 220:400] = True
    out = repair_tree(m, FOV, TreeRepair())
    assert stats(m)["components"] == 2 and stats(out)["components"] == 1
    assert (out[252:261, 200:220].sum(0) >= 3).all()  # every column of the gap spanned
    added = out & ~m
    assert added[:252].sum() == added[261:].sum() == 0 and added.sum() <= 4 * 24


def test_offset_dashes_are_joined_by_a_smooth_curve() -> None:
    m = blank()
    m[255:258, 50:200] = True
    m[265:268, 230:400] = True  # the vessel runs on 10 px lower after the gap
    out = repair_tree(m, FOV, TreeRepair())
    added = np.argwhere(out & ~m)
    assert stats(out)["components"] == 1
    assert added[:, 0].min() >= 253 and added[:, 0].max() <= 269  # no overshoot
    assert added[:, 1].min() >= 195 and added[:, 1].max() <= 235  # only across the gap


def test_pieces_that_do_not_face_each_other_or_are_far_stay_apart() -> None:
    side_by_side = blank()
    side_by_side[200:203, 100:300] = True  # parallel: the joint would run across both
    side_by_side[220:223, 100:300] = True
    far = blank()
    far[255:258, 50:200] = True
    far[255:258, 280:400] = True  # an 80 px gap: beyond gap_px
    for m in (side_by_side, far):
        np.testing.assert_array_equal(repair_tree(m, FOV, TreeRepair()), m)


def test_joints_never_close_a_loop() -> None:
    yy, xx = np.mgrid[:SIDE, :SIDE]
    ring = np.abs(np.hypot(yy - 256, xx - 256) - 60) <= 1.5
    ring[:, 190:205] = ring[:, 307:322] = False  # two gaps: two arcs facing twice
    out = repair_tree(ring, FOV, TreeRepair())
    assert stats(ring)["components"] == 2 and stats(out)["components"] == 1
    _, background = ndimage.label(~out)
    assert background == 1  # one joint only: no ring enclosing background


def test_spurs_are_cut_but_real_branches_kept() -> None:
    m = blank()
    m[253:260, 100:400] = True  # a 7 px vessel
    m[251:253, 199:203] = True  # a bump on its edge: a spur of the skeleton
    m[225:253, 300:303] = True  # a 28 px side branch
    before, out = stats(m), repair_tree(m, FOV, TreeRepair())
    after = stats(out)
    assert before["end_points"] == 4 and before["branch_points"] == 2
    assert after["end_points"] == 3 and after["branch_points"] == 1
    assert not out[251:253, 199:203].any() and out[225:253, 300:303].all()


def test_pinholes_filled_and_specks_dropped_but_large_holes_kept() -> None:
    m = blank()
    m[250:259, 100:400] = True
    m[254:256, 200:202] = False  # a 4 px pinhole inside the vessel
    m[100:140, 100:140] = True
    m[110:130, 110:130] = False  # a 400 px hole: a loop of vessels, not a pinhole
    m[400:405, 400:405] = True  # a 25 px speck
    out = repair_tree(m, FOV, TreeRepair())
    assert out[254:256, 200:202].all()
    assert not out[110:130, 110:130].any()
    assert not out[400:405, 400:405].any()


def test_nothing_outside_the_field_of_view_and_batches_match_singles() -> None:
    m = blank()
    m[255:258, 0:200] = True
    m[255:258, 220:512] = True
    fov = blank()
    fov[:, 100:450] = True
    out = repair_tree(m, fov, TreeRepair())
    assert not (out & ~fov).any() and (out[252:261, 200:220].sum(0) >= 3).all()
    both = repair_trees(np.stack([m, m.T]), np.stack([fov, fov.T]), TreeRepair())
    np.testing.assert_array_equal(both[1], repair_tree(m.T, fov.T, TreeRepair()))


def test_settings_scale_with_the_side() -> None:
    s = TreeRepair().scaled(128)
    assert s.gap_px == pytest.approx(15.0) and s.spur_px == pytest.approx(1.0)
    assert s.speck_px == pytest.approx(100 / 16) and s.hole_px == pytest.approx(20 / 16)
    assert s.edge == TreeRepair().edge and s.min_alignment == TreeRepair().min_alignment
    m = np.zeros((128, 128), bool)
    m[63:64, 10:60] = True
    m[63:64, 70:120] = True  # a 10 px gap at 128 px: 40 px at 512
    assert stats_small(repair_tree(m, np.ones_like(m), TreeRepair())) == 1


def test_pipeline_repairs_its_masks_and_saves_the_setting(tmp_path: Path) -> None:
    torch.manual_seed(0)  # untrained nets: speckled masks, plenty to mend
    geo = MaskGenerator(GeometryConfig(resolution=64, z_dim=16, ngf=8, ndf=8))
    tex = UNetGenerator(TextureConfig(resolution=64, ngf=8, ndf=8, max_channels=32))
    at_zero = TreeRepair(edge=0.0)  # the plain pipeline's edge, so only the repair differs
    plain = SynthMedPipeline(geo, tex, device="cpu", precision="fp32")
    mended = SynthMedPipeline(geo, tex, device="cpu", precision="fp32", repair=at_zero)
    a, b = plain.sample(4, seed=1), mended.sample(4, seed=1)
    np.testing.assert_array_equal(b.masks, repair_trees(a.masks, a.fov, at_zero))
    assert (b.masks != a.masks).any()
    mended.save(tmp_path / "pipe")
    assert SynthMedPipeline.load(tmp_path / "pipe", device="cpu").repair == at_zero
    assert SynthMedPipeline.load(tmp_path / "pipe", repair=False, device="cpu").repair is None


def stats_small(mask: np.ndarray) -> float:
    return float(vessel_statistics(mask[None], np.ones_like(mask)[None])["components"][0])


def test_saved_settings_are_checked() -> None:
    assert TreeRepair.from_dict({"gap_px": 40}, Path("p.json")) == TreeRepair(gap_px=40.0)
    with pytest.raises(UserError, match=r"p\.json: tree_repair"):
        TreeRepair.from_dict({"gap": 40}, Path("p.json"))


def test_empty_and_single_piece_masks() -> None:
    assert not repair_tree(blank(), FOV, TreeRepair()).any()
    m = blank()
    m[255:258, 50:400] = True  # one clean vessel: nothing to mend
    np.testing.assert_array_equal(repair_tree(m, FOV, TreeRepair()), m)


def test_loops_count_enclosed_background_not_pinholes() -> None:
    """Issue 30: Stage I's masks were meshes (more loops than real trees). A square ring is
    one loop; a one-pixel hole in a thick vessel at 512 px is a pinhole, not a loop; an open
    tree has none."""
    from synthmed.evaluation.vessels import vessel_statistics

    masks = np.zeros((3, 512, 512), np.uint8)
    masks[0, 100:300, 100:104] = masks[0, 100:300, 300:304] = 1
    masks[0, 100:104, 100:304] = masks[0, 300:304, 100:304] = 1
    masks[1, 200:220, 50:450] = 1
    masks[1, 210, 200] = 0  # a pinhole
    masks[2, 256, 20:500] = 1
    masks[2, 20:256, 256] = 1  # a T: branches but no loop
    loops = vessel_statistics(masks, np.ones_like(masks))["loops"]
    assert loops.tolist() == [1, 0, 0]


def test_disc_convergence_finds_a_disc_away_from_the_vessels() -> None:
    """The drawn disc (a bright blob) where the thick vessels meet: near 0; the same blob on
    the other side of the image: about half the side away."""
    from synthmed.evaluation.vessels import disc_convergence

    side = 128
    yy, xx = np.mgrid[:side, :side]
    masks = np.zeros((2, side, side), np.uint8)
    masks[:, 60:68, 10:110] = 1  # a thick vessel from the left ...
    masks[:, 20:108, 100:108] = 1  # ... meeting a thick one on the right
    images = np.full((2, side, side, 3), 60, np.uint8)
    near = (yy - 64) ** 2 + (xx - 104) ** 2 < 100
    far = (yy - 64) ** 2 + (xx - 30) ** 2 < 100
    images[0][near], images[1][far] = 230, 230
    d = disc_convergence(images, masks, np.ones_like(masks))
    assert d[0] < 0.1 and 0.4 < d[1] < 0.7
