"""Issue 5: losses, R1, crops, multi-scale PatchGAN + feature matching, coarse Stage I + refiner."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from synthmed.cli import main
from synthmed.data.sources import load_any
from synthmed.models.dcgan import GeometryConfig
from synthmed.models.pix2pix import TextureConfig, UNetGenerator, patch_discriminator
from synthmed.models.refiner import (
    break_coarse,
    coarse_encoding,
    coarse_field,
    downsample,
    refiner_condition,
)
from synthmed.pipeline import SynthMedPipeline
from synthmed.training.losses import LOSSES, d_loss, g_loss, mode_seeking_loss, r1_penalty
from synthmed.training.texture import dcgan_condition, feature_matching, random_crop


def test_mode_seeking_loss_rewards_samples_that_differ() -> None:
    z = torch.tensor([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0], [3.0, 3.0]])  # pairs (0, 2), (1, 3)
    alike = torch.zeros(4, 1, 4, 4)
    apart = torch.cat([torch.zeros(2, 1, 4, 4), torch.ones(2, 1, 4, 4)])
    assert mode_seeking_loss(apart, z).item() == pytest.approx(2.0, rel=1e-4)  # 1 / (1 / 2)
    assert mode_seeking_loss(alike, z).item() > 1e4  # collapsed: the term explodes
    odd = torch.cat([apart, torch.full((1, 1, 4, 4), 9.0)])  # the unpaired last one is ignored
    assert mode_seeking_loss(odd, torch.cat([z, z[:1]])).item() == pytest.approx(2.0, rel=1e-4)
    g = apart.clone().requires_grad_(True)
    mode_seeking_loss(g, z).backward()
    assert (g.grad[:2] > 0).all() and (g.grad[2:] < 0).all()  # pushes the pairs further apart
    with pytest.raises(ValueError):
        mode_seeking_loss(alike[:1], z[:1])


def test_break_coarse_cuts_gaps_and_adds_specks_reproducibly() -> None:
    soft = torch.rand(3, 1, 16, 16) * 2 - 1
    gen = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    assert torch.equal(break_coarse(soft, 0.0, 0.0, gen()), soft)
    cut = break_coarse(soft, 0.5, 0.0, gen())
    gone = cut == -1  # a cut block is background (soft 0 -> -1)
    assert 0.3 < gone.float().mean() < 0.7
    assert torch.allclose(cut[~gone], soft[~gone])  # nothing else changes
    blocks = gone.float().unfold(-2, 2, 2).unfold(-2, 2, 2).reshape(3, 1, 8, 8, 4)
    assert ((blocks.sum(-1) == 0) | (blocks.sum(-1) == 4)).all()  # whole 2 x 2 blocks
    empty = -torch.ones(3, 1, 16, 16)
    dotted = break_coarse(empty, 0.0, 0.1, gen())
    dots = (dotted + 1) / 2
    assert 0.04 < (dots > 0).float().mean() < 0.2
    assert dots[dots > 0].min() >= 0.1 - 1e-6 and dots.max() <= 0.5 + 1e-6  # faint only
    full = torch.ones(3, 1, 16, 16)
    assert torch.equal(break_coarse(full, 0.0, 0.1, gen()), full)  # specks never dim vessels
    assert torch.equal(break_coarse(soft, 0.3, 0.1, gen()), break_coarse(soft, 0.3, 0.1, gen()))


def test_break_coarse_on_distance_maps_cuts_to_far_background() -> None:
    """With distance-map coarse masks (the drive512 preset's) a cut block reads as far
    from any vessel, the value of an empty mask's map, and specks stay fainter than a
    vessel's centre: the breaks mean the same as on soft masks."""
    masks = torch.zeros(2, 1, 64, 64)
    masks[:, :, 30:34, :] = 1  # one horizontal vessel 4 px wide
    field = coarse_field(masks, 16, "distance", 12.0)
    far = coarse_field(torch.zeros(1, 1, 64, 64), 16, "distance", 12.0)
    assert torch.allclose(far, torch.full_like(far, -1.0))  # far background is -1
    gen = torch.Generator().manual_seed(0)
    cut = break_coarse(field, 0.5, 0.0, gen)
    gone = (cut != field).squeeze(1)
    assert gone.any() and torch.allclose(cut.squeeze(1)[gone], torch.tensor(-1.0))
    dotted = break_coarse(field, 0.0, 0.2, torch.Generator().manual_seed(0))
    centre = field[:, :, 7:9].max()
    assert (dotted >= field).all() and dotted.max() <= centre + 1e-6


def test_losses_at_known_logits() -> None:
    big = torch.full((4,), 50.0)
    # A perfect discriminator: ns loss ~0, hinge exactly 0 beyond the margin, lsgan 0 at 1/0.
    assert d_loss(big, -big, "ns").item() == pytest.approx(0.0, abs=1e-6)
    assert d_loss(big, -big, "hinge").item() == 0.0
    assert d_loss(torch.ones(4), torch.zeros(4), "lsgan").item() == 0.0
    assert set(LOSSES) == {"ns", "hinge", "lsgan"}
    zero = torch.zeros(3)
    assert d_loss(zero, zero, "ns").item() == pytest.approx(2 * np.log(2))
    assert d_loss(zero, zero, "hinge").item() == pytest.approx(2.0)
    assert d_loss(zero, zero, "lsgan").item() == pytest.approx(1.0)
    assert g_loss(zero, "ns").item() == pytest.approx(np.log(2))
    assert g_loss(torch.tensor([2.0]), "hinge").item() == pytest.approx(-2.0)
    assert g_loss(torch.tensor([1.0]), "lsgan").item() == pytest.approx(0.0)
    with pytest.raises(ValueError):
        d_loss(zero, zero, "wgan")


def test_r1_of_a_linear_discriminator_is_its_weight_norm() -> None:
    w = torch.tensor([3.0, 4.0])
    x = torch.randn(5, 2, requires_grad=True)
    assert r1_penalty(x, x @ w).item() == pytest.approx(25.0)


def test_random_crop_is_seeded_and_keeps_pairs_aligned() -> None:
    x = torch.arange(2 * 16 * 16, dtype=torch.float32).reshape(2, 1, 16, 16).repeat(1, 3, 1, 1)
    a = random_crop(x, 8, torch.Generator().manual_seed(1))
    b = random_crop(x, 8, torch.Generator().manual_seed(1))
    assert a.shape == (2, 3, 8, 8) and torch.equal(a, b)
    assert torch.equal(a[:, :1].expand_as(a), a)  # every channel cut at the same place


def test_multi_scale_discriminator_and_feature_matching() -> None:
    cfg = TextureConfig(resolution=128, ndf=8, num_d=3)
    d = patch_discriminator(cfg)
    x = torch.randn(2, 5, 128, 128)
    out = d(x)
    assert len(out) == 3
    sides = [scale[-1].shape[-1] for scale in out]
    assert sides[0] > sides[1] > sides[2]  # each scale sees a half-size copy
    assert feature_matching(out, out).item() == 0.0
    other = d(torch.randn(2, 5, 128, 128))
    assert feature_matching(out, other).item() > 0
    single = patch_discriminator(TextureConfig(resolution=64, ndf=8))
    assert isinstance(single(x), list) and single(x)[-1].ndim == 4  # MONAI's format, as before


def test_refiner_condition_and_soft_masks() -> None:
    mask = torch.zeros(1, 1, 16, 16)
    mask[..., :, :4] = 1
    soft = downsample(mask, 4)
    assert soft.shape == (1, 1, 4, 4) and soft[0, 0, 0].tolist() == [1, 0, 0, 0]
    mask[..., :, 4:6] = 1  # half of the second column of 4x4 blocks
    assert downsample(mask, 4)[0, 0, 0, 1].item() == pytest.approx(0.5)
    fov = torch.ones(1, 1, 16, 16, dtype=torch.bool)
    cond = refiner_condition(soft * 2 - 1, fov)
    assert cond.shape == (1, 2, 16, 16) and cond[:, 1].eq(1).all()
    g = UNetGenerator(TextureConfig(resolution=16, out_channels=1, coarse=4, ngf=4))
    assert "fov" in g.state_dict()  # a refiner keeps its field-of-view template
    assert "fov" not in UNetGenerator(TextureConfig(resolution=16, ngf=4)).state_dict()


def test_dcgan_condition_is_seeded_and_blank_outside_the_fov() -> None:
    """The refiner's adaptation input: the DCGAN's coarse masks as the pipeline makes them."""
    from synthmed.models.dcgan import GeometryConfig, MaskGenerator

    dcgan = MaskGenerator(GeometryConfig(resolution=8, ngf=4, z_dim=4))
    dcgan.fov[..., :, :2] = 0  # a field of view without the two left columns
    fov = torch.ones(1, 1, 32, 32)
    fov[..., :, :8] = 0
    cond = dcgan_condition(dcgan, fov, 3, 16, torch.Generator().manual_seed(0))
    again = dcgan_condition(dcgan, fov, 3, 16, torch.Generator().manual_seed(0))
    assert cond.shape == (3, 2, 16, 16) and torch.equal(cond, again)
    whole = dcgan_condition(dcgan, fov, 3, 32, torch.Generator().manual_seed(0))
    assert whole.shape == (3, 2, 32, 32)
    assert whole[:, 0, :, :6].eq(-1).all()  # no vessels where the DCGAN has no field of view
    assert whole[:, 1, :, :8].eq(-1).all() and whole[:, 1, :, 8:].eq(1).all()


@pytest.mark.slow
def _config(path: Path, **options: object) -> str:
    """A --config file of flat options; returns its path as an argument."""
    path.write_text(json.dumps(options))
    return str(path)


def test_coarse_geometry_refiner_texture_end_to_end(tmp_path: Path, capsys) -> None:
    """The drive512 shape at 64 px: DCGAN at 16 px, refiner to 64 px on 32 px crops, then
    Stage II; generate through all three; the pipeline folder round-trips."""
    data = tmp_path / "data"
    assert main(["prepare", "phantom", "--res", "64", "--n", "4", "--out", str(data)]) == 0
    common = ["--data", str(data), "--device", "cpu", "--batch-size", "2", "--steps", "2"]
    common += ["--ngf", "8", "--ndf", "8"]
    geo, ref, tex = tmp_path / "geo", tmp_path / "ref", tmp_path / "tex"
    assert main(["train", "geometry", *common, "--out", str(geo), "--resolution", "16"]) == 0
    # Options of experiments that were not adopted have no flag: --config (or synthmed.train).
    tried = _config(tmp_path / "g2.json", minibatch_std=2, patch_side=8, canonical_side=True)
    assert main(["train", "geometry", *common, "--out", str(tmp_path / "g2"), "--loss", "hinge",
                 "--r1", "1", "--resolution", "16", "--checkpoint-every", "1",
                 "--mode-seeking", "1", "--config", tried]) == 0  # fmt: skip
    pix = ["--fm-weight", "10", "--loss", "lsgan", "--r1", "0.1"]
    noisy = _config(tmp_path / "ref.json", coarse_noise=0.2, coarse_gaps=0.2, coarse_specks=0.01)
    ref_args = ["--crop", "32", "--coarse", "16", "--config", noisy]
    ref_args += ["--topology-weight", "1"]
    assert main(["train", "refiner", *common, *pix, *ref_args, "--out", str(ref)]) == 0
    assert main(["train", "texture", *common, *pix, "--num-d", "2", "--out", str(tex)]) == 0
    saved = json.loads((ref / "options.json").read_text())
    assert saved["kind"] == "refiner" and saved["model"]["coarse"] == 16
    assert saved["train"]["crop"] == 32 and saved["stage"]["fm_weight"] == 10
    assert saved["stage"]["topology_weight"] == 1
    assert saved["stage"]["coarse_gaps"] == 0.2 and saved["stage"]["coarse_specks"] == 0.01
    assert "loss_G_topology" in (ref / "stats.jsonl").read_text()
    # The refiner adapted to this DCGAN's coarse masks (unpaired), resumable, and its checks.
    adapt = ["--adapt-geometry", str(geo), "--adapt-weight", "1", "--crop", "32", "--coarse"]
    ref2 = tmp_path / "ref2"
    assert main(["train", "refiner", *common, *adapt, "16", "--out", str(ref2)]) == 0
    saved2 = json.loads((ref2 / "options.json").read_text())
    assert saved2["stage"]["adapt_weight"] == 1 and saved2["stage"]["adapt_geometry"] == str(geo)
    assert "loss_G_adapt" in (ref2 / "stats.jsonl").read_text()
    sheets = [np.asarray(Image.open(r / "grids" / "fakes000002.png")) for r in (ref, ref2)]
    assert sheets[1].shape[0] > sheets[0].shape[0]  # + the refiner on the DCGAN's masks
    resume = ["train", "refiner", "--data", str(data), "--out", str(ref2), "--resume"]
    assert main([*resume, "--steps", "3", "--device", "cpu"]) == 0
    assert json.loads((ref2 / "stats.jsonl").read_text().splitlines()[-1])["step"] == 3
    bad = ["train", "refiner", *common, "--out", str(tmp_path / "bad")]
    assert main([*bad, *adapt, "8"]) == 2
    assert "a geometry run of 16 px masks" in capsys.readouterr().err
    assert main([*bad, "--adapt-weight", "1", "--coarse", "16"]) == 2
    assert "--adapt-geometry" in capsys.readouterr().err
    missing = ["--adapt-geometry", str(tmp_path / "nope"), "--adapt-weight", "1"]
    assert main([*bad, *missing, "--coarse", "16"]) == 2
    assert "nope: folder not found" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()  # nothing half-written
    g2 = json.loads((tmp_path / "g2" / "options.json").read_text())
    assert g2["model"]["minibatch_std"] == 2 and g2["stage"]["mode_seeking"] == 1
    assert g2["model"]["patch_side"] == 8
    assert g2["model"]["canonical_side"] is True and "mirrored_to_the_right" in g2
    assert "loss_MS" in (tmp_path / "g2" / "stats.jsonl").read_text()

    out = tmp_path / "synth"
    cmd = ["generate", "--geometry", str(geo), "--texture", str(tex), "--device", "cpu"]
    cmd += ["--n", "3", "--precision", "fp32", "--seed", "4"]
    assert main([*cmd, "--out", str(tmp_path / "x")]) == 2  # coarse masks need the refiner
    assert "needs its refiner" in capsys.readouterr().err
    pipe_dir = tmp_path / "pipe"
    args = [*cmd, "--refiner", str(ref), "--out", str(out), "--save-pipeline", str(pipe_dir)]
    assert main(args) == 0
    synth = load_any(out, 64)
    assert len(synth) == 3 and synth.resolution == 64
    assert set(np.unique(synth.masks)) <= {0, 1} and not synth.masks[synth.fov == 0].any()
    assert "refiner" in json.loads((pipe_dir / "pipeline.json").read_text())["stages"]
    again = tmp_path / "again"
    cmd = ["generate", "--pipeline", str(pipe_dir), "--device", "cpu", "--precision", "fp32"]
    assert main([*cmd, "--n", "3", "--seed", "4", "--out", str(again)]) == 0
    for png in sorted(out.glob("*/*.png")):
        assert png.read_bytes() == (again / png.relative_to(out)).read_bytes(), png
    assert SynthMedPipeline.load(pipe_dir, device="cpu").refiner is not None


def test_bad_stage_i_resolution_is_a_one_line_error(tmp_path: Path, capsys) -> None:
    data = tmp_path / "data"
    assert main(["prepare", "phantom", "--res", "32", "--n", "2", "--out", str(data)]) == 0
    cmd = ["train", "geometry", "--data", str(data), "--out", str(tmp_path / "r"), "--steps", "1"]
    assert main([*cmd, "--resolution", "24"]) == 2
    assert "--resolution 24" in capsys.readouterr().err
    half = _config(tmp_path / "p.json", patch_side=32)  # at most half of the 32 px DCGAN
    assert main([*cmd, "--config", half]) == 2
    assert "patch_side 32" in capsys.readouterr().err
    cmd = ["train", "refiner", "--data", str(data), "--out", str(tmp_path / "r"), "--steps", "1"]
    assert main([*cmd, "--coarse", "32"]) == 2
    assert "--coarse 32" in capsys.readouterr().err
    assert main([*cmd, "--coarse", "8", "--crop", "24"]) == 2
    assert "crop 24" in capsys.readouterr().err
    assert main([*cmd, "--coarse", "8", "--num-d", "3"]) == 2
    assert "num_d 3" in capsys.readouterr().err
    gaps = _config(tmp_path / "g.json", coarse_gaps=1.5)
    assert main([*cmd, "--coarse", "8", "--config", gaps]) == 2
    assert "coarse_gaps" in capsys.readouterr().err
    assert not (tmp_path / "r" / "checkpoint.safetensors").exists()


def test_drive512_refiner_needs_the_geometry_run_it_adapts_to(tmp_path: Path, capsys) -> None:
    """The preset adapts the refiner to a DCGAN's masks: without a geometry run it says so
    (and --adapt-weight 0 trains the refiner without)."""
    data = tmp_path / "data"
    assert main(["prepare", "phantom", "--res", "64", "--n", "2", "--out", str(data)]) == 0
    cmd = ["train", "refiner", "--preset", "drive512", "--data", str(data), "--steps", "1"]
    cmd += ["--coarse", "16", "--crop", "32", "--ngf", "4", "--ndf", "4", "--batch-size", "2"]
    assert main([*cmd, "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert (
        "--preset drive512" in err and "--adapt-geometry RUN" in err and len(err.splitlines()) == 1
    )
    assert not (tmp_path / "r").exists()
    assert main([*cmd, "--adapt-weight", "0", "--device", "cpu", "--out", str(tmp_path / "r")]) == 0
    assert "loss_G_adapt" not in (tmp_path / "r" / "stats.jsonl").read_text()


def test_prepared_set_resized_for_comparison(tmp_path: Path) -> None:
    from synthmed.data.sources import phantom_dataset

    small = phantom_dataset(2, 32)
    small.save(tmp_path / "s")
    big = load_any(tmp_path / "s", 64).resized(64)
    assert big.resolution == 64 and big.images.dtype == np.uint8 and big.masks.dtype == np.uint8
    assert big.meta["resized_from"] == 32 and "transforms" not in big.meta
    assert abs(big.masks.mean() - small.masks.mean()) < 0.02  # about the same vessel share
    assert load_any(tmp_path / "s", 64).resolution == 32  # real sets are never resized


@pytest.mark.slow
def test_drive512_recipe_runs_at_1024(tmp_path: Path) -> None:
    """The preset's shape at 1024 px (the issue: "1024 possible on a GPU"): Stage I's DCGAN,
    the refiner and Stage II train on crops and generate whole 1024 px pairs. Tiny widths and
    one step each, so this checks shapes, not quality."""
    data = tmp_path / "data"
    assert main(["prepare", "phantom", "--res", "1024", "--n", "2", "--out", str(data)]) == 0
    common = ["--preset", "drive512", "--data", str(data), "--device", "cpu", "--steps", "1"]
    common += ["--batch-size", "2", "--ngf", "4", "--ndf", "4", "--precision", "fp32"]
    geo, ref, tex = tmp_path / "geo", tmp_path / "ref", tmp_path / "tex"
    assert main(["train", "geometry", *common, "--out", str(geo)]) == 0
    ref_args = ["--crop", "128", "--adapt-geometry", str(geo)]
    assert main(["train", "refiner", *common, *ref_args, "--out", str(ref)]) == 0
    assert main(["train", "texture", *common, "--crop", "128", "--out", str(tex)]) == 0
    assert json.loads((ref / "options.json").read_text())["model"]["coarse"] == 128
    out = tmp_path / "synth"
    cmd = ["generate", "--geometry", str(geo), "--refiner", str(ref), "--texture", str(tex)]
    assert main([*cmd, "--device", "cpu", "--n", "1", "--out", str(out)]) == 0
    synth = load_any(out, 1024)
    assert len(synth) == 1 and synth.images.shape == (1, 1024, 1024, 3)
    assert not synth.masks[synth.fov == 0].any()


def test_distance_coarse_field() -> None:
    """The distance kind: vessels high, far background -1, thin vessels a wide valley."""
    mask = torch.zeros(1, 1, 64, 64)
    mask[..., 30:32, 8:56] = 1  # one horizontal vessel, 2 px wide
    field = coarse_field(mask, 16, "distance")
    assert field.shape == (1, 1, 16, 16) and field.min() >= -1 and field.max() <= 1
    assert field[0, 0, 0].eq(-1).all()  # more than DISTANCE_OUT from the vessel
    soft = coarse_field(mask, 16, "soft")
    assert torch.equal(soft, downsample(mask, 16) * 2 - 1)
    # The vessel marks more coarse rows in the distance map than in the soft mask.
    assert (field[0, 0, :, 8] > -1).sum() > (soft[0, 0, :, 8] > -1).sum()
    assert coarse_field(torch.zeros(1, 1, 16, 16), 4, "distance").eq(-1).all()
    with pytest.raises(ValueError, match="coarse kind"):
        coarse_field(mask, 16, "sdf")
    # A wider clip: the valley reaches further from the vessel; the default is the old 8 px.
    wide = coarse_field(mask, 16, "distance", clip=16)
    assert (wide[0, 0, :, 8] > -1).sum() > (field[0, 0, :, 8] > -1).sum()
    assert torch.equal(coarse_field(mask, 16, "distance", clip=8), field)
    with pytest.raises(ValueError, match="coarse clip"):
        coarse_field(mask, 16, "distance", clip=0)
    assert coarse_encoding(GeometryConfig(coarse_kind="distance", coarse_clip=12)) == (
        "distance, clip 12 px"
    )
    assert coarse_encoding(TextureConfig(coarse_clip=12)) == "soft"  # the clip is moot


@pytest.mark.slow
def test_distance_coarse_stage_one_end_to_end(tmp_path: Path, capsys) -> None:
    """A DCGAN and refiner on distance maps train, generate, and refuse a soft partner."""
    data = tmp_path / "data"
    assert main(["prepare", "phantom", "--res", "64", "--n", "4", "--out", str(data)]) == 0
    common = ["--data", str(data), "--device", "cpu", "--batch-size", "2", "--steps", "2"]
    common += ["--ngf", "8", "--ndf", "8"]
    geo, soft_geo, ref = tmp_path / "geo", tmp_path / "soft", tmp_path / "ref"
    kind = ["--coarse-kind", "distance"]
    assert main(["train", "geometry", *common, *kind, "--resolution", "16", "--out", str(geo)]) == 0
    assert json.loads((geo / "options.json").read_text())["model"]["coarse_kind"] == "distance"
    assert main(["train", "geometry", *common, "--resolution", "16", "--out", str(soft_geo)]) == 0
    ref_args = ["--crop", "32", "--coarse", "16", "--adapt-weight", "1", "--adapt-geometry"]
    bad = ["train", "refiner", *common, *ref_args, str(soft_geo), *kind, "--out"]
    assert main([*bad, str(tmp_path / "bad")]) == 2
    err = capsys.readouterr().err
    assert "makes soft coarse masks; the refiner reads distance, clip 8 px" in err
    assert not (tmp_path / "bad").exists()
    clip12 = ["--coarse-clip", "12", "--out", str(tmp_path / "bad")]
    assert main(["train", "refiner", *common, *ref_args, str(geo), *kind, *clip12]) == 2
    assert "makes distance, clip 8 px coarse masks; the refiner reads distance, clip 12 px" in (
        capsys.readouterr().err
    )
    soft_clip = ["train", "geometry", *common, "--resolution", "16", *clip12]
    assert main(soft_clip) == 2  # a clip means nothing to soft masks
    assert "--coarse-clip: a positive distance, with --coarse-kind distance" in (
        capsys.readouterr().err
    )
    assert not (tmp_path / "bad").exists()
    assert main(["train", "refiner", *common, *ref_args, str(geo), *kind, "--out", str(ref)]) == 0
    whole = ["train", "geometry", *common, *kind, "--out", str(tmp_path / "whole")]
    assert main(whole) == 2  # a full-resolution DCGAN has no coarse masks
    assert "only for a mask DCGAN below the data's size" in capsys.readouterr().err
    assert not (tmp_path / "whole").exists()  # nothing half-written
    tex = tmp_path / "tex"
    assert main(["train", "texture", *common, "--out", str(tex)]) == 0
    cmd = ["generate", "--refiner", str(ref), "--texture", str(tex), "--device", "cpu"]
    cmd += ["--n", "2", "--precision", "fp32"]
    assert main([*cmd, "--geometry", str(soft_geo), "--out", str(tmp_path / "x")]) == 2
    assert "the refiner reads distance, clip 8 px coarse masks" in capsys.readouterr().err
    assert main([*cmd, "--geometry", str(geo), "--out", str(tmp_path / "synth")]) == 0
    synth = load_any(tmp_path / "synth", 64)
    assert len(synth) == 2 and set(np.unique(synth.masks)) <= {0, 1}
