"""Training loops, checkpoints and the pipeline: resume exactness and bit-exact round trips."""

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from synthmed.data.prepared import PreparedDataset
from synthmed.data.sources import phantom_dataset
from synthmed.models.dcgan import GeometryConfig
from synthmed.models.pix2pix import TextureConfig
from synthmed.pipeline import SynthMedPipeline, TextureModel
from synthmed.training.geometry import disc_on_left, train_geometry
from synthmed.training.options import GeometryStageOptions, TrainOptions
from synthmed.training.texture import train_texture

RES = 32
GEO = GeometryConfig(resolution=RES, z_dim=16, ngf=8, ndf=8)
TEX = TextureConfig(resolution=RES, ngf=8, ndf=8, max_channels=32)
OPTS = TrainOptions(steps=6, batch_size=2, device="cpu", log_every=1, grid_every=3)


@pytest.fixture(scope="module")
def data() -> PreparedDataset:
    return phantom_dataset(6, RES, seed=0)


def _train(stage: str, data: PreparedDataset, out: Path, opts: TrainOptions, resume: bool):
    if stage == "geometry":  # noise schedule fixed, as a run records it in options.json
        fixed = GeometryStageOptions(noise_fade_steps=6)
        return train_geometry(data, out, GEO, opts, resume, fixed)
    if stage == "texture-style":
        return train_texture(data, out, replace(TEX, style_dim=4), opts, resume)
    return train_texture(data, out, TEX, opts, resume)


@pytest.mark.parametrize("stage", ["geometry", "texture", "texture-style"])
def test_resume_continues_exactly(stage: str, data: PreparedDataset, tmp_path: Path) -> None:
    """6 steps in one go == 3 steps, a stop, then --resume to 6: every tensor identical."""
    _train(stage, data, tmp_path / "straight", OPTS, resume=False)
    half = replace(OPTS, steps=3, checkpoint_every=3)
    _train(stage, data, tmp_path / "split", half, resume=False)
    _train(stage, data, tmp_path / "split", OPTS, resume=True)

    a = load_file(tmp_path / "straight/checkpoint.safetensors")
    b = load_file(tmp_path / "split/checkpoint.safetensors")
    assert a.keys() == b.keys()
    assert any(k.startswith("optim.") for k in a)  # optimiser moments are saved too
    for k in a:
        assert torch.equal(a[k], b[k]), k
    steps = [
        int(line.split('"step": ')[1].split(",")[0])
        for line in (tmp_path / "split/stats.jsonl").read_text().splitlines()
    ]
    assert steps == list(range(1, 7))  # no step logged twice, none missing


def test_resume_drops_stats_logged_after_the_checkpoint(data, tmp_path: Path) -> None:
    opts = replace(OPTS, steps=4, checkpoint_every=2)
    _train("geometry", data, tmp_path, opts, resume=False)
    # Pretend the run died after step 4's stats but before its checkpoint: rewind to step 2.
    ckpt = tmp_path / "checkpoint.safetensors"
    ckpt.unlink()
    _train("geometry", data, tmp_path / "other", replace(opts, steps=2), resume=False)
    (tmp_path / "other/checkpoint.safetensors").rename(ckpt)
    _train("geometry", data, tmp_path, opts, resume=True)
    lines = (tmp_path / "stats.jsonl").read_text().splitlines()
    assert len(lines) == 4


def test_run_folder_contents(data, tmp_path: Path) -> None:
    _train("texture", data, tmp_path, OPTS, resume=False)
    for name in [
        "options.json",
        "stats.jsonl",
        "reals.png",
        "checkpoint.safetensors",
        "grids/fakes000003.png",
        "grids/fakes000006.png",
        "generator/config.json",
        "generator/model.safetensors",
    ]:
        assert (tmp_path / name).is_file(), name
    assert not list(tmp_path.rglob("*.tmp"))  # atomic writes leave no temporaries


def test_same_seed_same_training(data, tmp_path: Path) -> None:
    for run in ("a", "b"):
        _train("geometry", data, tmp_path / run, replace(OPTS, steps=3), resume=False)
    a = load_file(tmp_path / "a/generator/model.safetensors")
    b = load_file(tmp_path / "b/generator/model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def pipeline(data, tmp_path_factory) -> SynthMedPipeline:
    root = tmp_path_factory.mktemp("runs")
    opts = replace(OPTS, steps=2)
    train_geometry(data, root / "geo", GEO, opts)
    train_texture(data, root / "tex", TEX, opts)
    return SynthMedPipeline.from_folders(root / "geo", root / "tex", device="cpu")


def test_pipeline_sample_is_deterministic(pipeline: SynthMedPipeline) -> None:
    a, b = pipeline.sample(5, seed=7), pipeline.sample(5, seed=7)
    assert np.array_equal(a.images, b.images) and np.array_equal(a.masks, b.masks)
    c = pipeline.sample(5, seed=8)
    assert not np.array_equal(a.images, c.images)
    assert a.images.shape == (5, RES, RES, 3) and a.images.dtype == np.uint8
    assert a.masks.shape == (5, RES, RES) and a.masks.dtype == bool
    assert not a.masks[~a.fov].any()  # vessels only inside the field of view
    assert not a.images[~a.fov].any()  # black outside the field of view
    # A prefix of a larger request is the same pairs.
    assert np.array_equal(pipeline.sample(20, seed=7).images[:5], a.images)


def test_stochastic_pipeline_varies_images_not_masks(pipeline: SynthMedPipeline) -> None:
    plain = pipeline.sample(4, seed=3)
    pipeline.stochastic = True
    try:
        a, b = pipeline.sample(4, seed=3), pipeline.sample(4, seed=3)
    finally:
        pipeline.stochastic = False
    assert np.array_equal(a.images, b.images)  # still a function of the seed
    assert np.array_equal(a.masks, plain.masks)  # Stage I untouched
    assert not np.array_equal(a.images, plain.images)
    assert np.array_equal(pipeline.sample(4, seed=3).images, plain.images)  # switched back off


def test_style_code_varies_images_and_is_seeded(data, tmp_path: Path) -> None:
    """With a style code, the encoder is trained (and checkpointed) beside G; sampling draws
    codes from the fitted prior: different seeds, different renderings of the same masks."""
    train_texture(data, tmp_path / "tex", replace(TEX, style_dim=4), replace(OPTS, steps=2))
    saved = load_file(tmp_path / "tex/checkpoint.safetensors")
    assert any(k.startswith("module.E.") for k in saved)
    model = TextureModel.load(tmp_path / "tex", device="cpu", precision="fp32")
    assert model.texture.cfg.style_dim == 4
    masks, fov = data.masks[:3], data.fov[:3]
    a, b = model.translate(masks, fov, seed=1), model.translate(masks, fov, seed=1)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, model.translate(masks, fov, seed=2))


@pytest.mark.parametrize("ema", [0.0, 0.9])
def test_style_prior_fitted_at_export_and_refitted_for_a_finished_run(data, tmp_path, ema):
    """The exported generator carries the Gaussian of the training images' codes (and the
    checkpoint the same, for G and its average); a finished run resumed is exported again,
    with that prior."""
    out, opts = tmp_path / "tex", replace(OPTS, steps=2, ema=ema)
    train_texture(data, out, replace(TEX, style_dim=4), opts)
    exported = load_file(out / "generator/model.safetensors")
    saved = load_file(out / "checkpoint.safetensors")
    assert not torch.equal(exported["style_mean"], torch.zeros(4))
    assert not torch.equal(exported["style_scale"], torch.eye(4))
    keys = ["module.G.style_mean"] + (["module.G_ema.module.style_mean"] if ema else [])
    assert all(torch.equal(saved[k], exported["style_mean"]) for k in keys)
    (out / "generator/model.safetensors").unlink()
    train_texture(data, out, replace(TEX, style_dim=4), opts, resume=True)
    again = load_file(out / "generator/model.safetensors")
    assert all(torch.equal(exported[k], again[k]) for k in exported)


def test_pipeline_save_load_bit_exact(pipeline: SynthMedPipeline, tmp_path: Path) -> None:
    pipeline.save(tmp_path / "pipe")
    loaded = SynthMedPipeline.load(tmp_path / "pipe", device="cpu")
    for net in ("geometry", "texture"):
        a = getattr(pipeline, net).state_dict()
        b = getattr(loaded, net).state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a), net
    x, y = pipeline.sample(4, seed=1), loaded.sample(4, seed=1)
    assert np.array_equal(x.images, y.images) and np.array_equal(x.masks, y.masks)
    assert loaded.describe()["geometry"]["sha256"] == pipeline.describe()["geometry"]["sha256"]


def test_disc_on_left_finds_the_thick_vessels() -> None:
    """The side where the thick vessels gather is the disc's, whatever thin vessels lie on
    the other side; a mirrored mask has its disc on the other side."""
    mask = np.zeros((64, 64), bool)
    mask[20:40, 4:14] = True  # thick trunk near the left edge
    mask[10, 30:62] = mask[50, 30:62] = mask[30, 40:62] = True  # thin vessels on the right
    left = disc_on_left(np.stack([mask, mask[:, ::-1]]))
    assert left.tolist() == [True, False]


def test_stage_options_record_what_the_api_accepts() -> None:
    """options.json's "stage" holds options that `train` (STAGE_OPTIONS) takes back, so that
    a run's record stays a `train --config` file; each is a field of the stage's dataclass."""
    from dataclasses import fields

    from synthmed.training.api import STAGE_OPTIONS
    from synthmed.training.options import TextureStageOptions

    for stage, cls in [("geometry", GeometryStageOptions), ("refiner", TextureStageOptions)]:
        assert set(STAGE_OPTIONS[stage]) <= {f.name for f in fields(cls)}
    assert set(STAGE_OPTIONS["texture"]) <= {f.name for f in fields(TextureStageOptions)}
    assert set(GeometryStageOptions().recorded(10)) == set(STAGE_OPTIONS["geometry"])
    assert GeometryStageOptions().recorded(10)["noise_fade_steps"] == 10
    adapting = TextureStageOptions(adapt_geometry="runs/geo", adapt_weight=5.0)
    assert set(adapting.recorded(refine=True, style=False)) == set(STAGE_OPTIONS["refiner"])
    styled = TextureStageOptions().recorded(refine=False, style=True)
    assert set(styled) == set(STAGE_OPTIONS["texture"])


def test_a_checkpoint_of_one_state_is_the_same_bytes_every_time(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    from synthmed.checkpoints import load_checkpoint, save_checkpoint

    net = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(net.parameters())
    net(torch.ones(1, 3)).sum().backward()
    opt.step()
    rng = {"torch": torch.get_rng_state()}
    paths = [tmp_path / f"{i}.safetensors" for i in range(6)]
    for path in paths:  # two metadata keys came out in either order (1 in 32 to pass here)
        save_checkpoint(path, {"net": net}, {"net": opt}, rng, {"step": 7})
    assert len({p.read_bytes() for p in paths}) == 1
    assert load_checkpoint(paths[0], {"net": net}, {"net": opt})[1] == {"step": 7}
    # A checkpoint written before the single metadata key still resumes.
    tensors = load_file(paths[0])
    old = tmp_path / "old.safetensors"
    meta = {
        "state": '{"step": 5}',
        "optimizers": json.dumps({"net": opt.state_dict()["param_groups"]}),
    }
    save_file(tensors, str(old), metadata=meta)
    assert load_checkpoint(old, {"net": net}, {"net": opt})[1] == {"step": 5}
