"""Shape and determinism tests for both stages' networks (CPU, tiny widths)."""

import pytest
import torch
from torch import nn

from synthmed.models.dcgan import GeometryConfig, MaskDiscriminator, MaskGenerator, MinibatchStd
from synthmed.models.pix2pix import TextureConfig, UNetGenerator, patch_discriminator
from synthmed.models.upsample import PHASE_MIN_PIXELS, NearestUpConv, phase_upconv
from synthmed.presets import preset


@pytest.mark.parametrize("res", [32, 64, 128, 256])
@pytest.mark.parametrize("upsample", ["transpose", "resize", "bilinear"])
def test_dcgan_shapes(res: int, upsample: str) -> None:
    cfg = GeometryConfig(resolution=res, z_dim=16, ngf=4, ndf=4, upsample=upsample)
    g, d = MaskGenerator(cfg), MaskDiscriminator(cfg)
    x = g(torch.randn(3, 16))
    assert x.shape == (3, 1, res, res)
    assert x.min() >= -1 and x.max() <= 1  # tanh output
    assert d(x).shape == (3,)
    masks = g.binary_masks(torch.randn(2, 16))
    assert masks.dtype == torch.bool and masks.shape == (2, 1, res, res)


def test_dcgan_masks_limited_to_fov() -> None:
    cfg = GeometryConfig(resolution=32, z_dim=8, ngf=4, ndf=4)
    g = MaskGenerator(cfg)
    g.fov.zero_()
    g.fov[..., 8:24, 8:24] = 1
    m = g.binary_masks(torch.randn(4, 8))
    assert not m[..., :8, :].any() and not m[..., 24:, :].any()


def test_canonical_side_mirrors_half_the_samples() -> None:
    """With canonical_side, sample() mirrors exactly the latents with z[0] < 0, and the
    masks follow it; without, sample() is the network's output."""
    torch.manual_seed(0)
    g = MaskGenerator(GeometryConfig(resolution=32, z_dim=8, ngf=4, canonical_side=True))
    z = torch.randn(6, 8)
    z[:3, 0], z[3:, 0] = -z[:3, 0].abs(), z[3:, 0].abs()
    out, sampled = g(z), g.sample(z)
    assert torch.equal(sampled[:3], out[:3].flip(-1)) and torch.equal(sampled[3:], out[3:])
    assert torch.equal(g.binary_masks(z), sampled > 0)
    g.cfg.canonical_side = False
    assert torch.equal(g.sample(z), out)


def test_minibatch_std_sees_alike_batches() -> None:
    """The extra feature is 0 for a batch of identical samples, positive for varied ones,
    computed per group, and works for any batch size."""
    layer = MinibatchStd(4)
    same = torch.randn(1, 3, 4, 4).expand(8, 3, 4, 4)
    out = layer(same)
    assert out.shape == (8, 4, 4, 4) and out[:, -1].max() < 1e-3
    varied = layer(torch.randn(8, 3, 4, 4))[:, -1]
    assert varied.min() > 0.5
    assert torch.equal(varied[0], varied[2]) and not torch.equal(varied[0], varied[1])
    assert layer(torch.randn(3, 3, 4, 4)).shape == (3, 4, 4, 4)  # group 1: gcd(4, 3)
    cfg = GeometryConfig(resolution=32, z_dim=8, ngf=4, ndf=4, minibatch_std=4)
    assert MaskDiscriminator(cfg)(torch.randn(8, 1, 32, 32)).shape == (8,)


def test_dcgan_patch_head() -> None:
    """With a patch head D judges the whole mask and each cell of its 8 x 8 features; the
    whole-image logit and a D without the head are unchanged; odd sides are refused."""
    x = torch.randn(3, 1, 32, 32)
    torch.manual_seed(0)
    plain = MaskDiscriminator(GeometryConfig(resolution=32, ndf=4))
    torch.manual_seed(0)
    d = MaskDiscriminator(GeometryConfig(resolution=32, ndf=4, patch_side=8))
    whole, patches = d.judge(x)
    assert whole.shape == (3,) and patches.shape == (3, 8, 8)
    assert torch.equal(d(x), whole) and torch.equal(plain(x), whole)
    assert len(plain.judge(x)) == 1
    for bad in (4, 12, 32):
        with pytest.raises(ValueError, match="patch_side"):
            MaskDiscriminator(GeometryConfig(resolution=32, patch_side=bad))


@pytest.mark.parametrize("res", [32, 64, 128, 256])
@pytest.mark.parametrize("upsample", ["transpose", "resize", "bilinear"])
def test_pix2pix_shapes(res: int, upsample: str) -> None:
    cfg = TextureConfig(resolution=res, ngf=4, ndf=4, max_channels=16, upsample=upsample)
    g, d = UNetGenerator(cfg), patch_discriminator(cfg)
    cond = torch.randn(2, cfg.in_channels, res, res)
    y = g(cond)
    assert y.shape == (2, 3, res, res)
    logits = d(torch.cat([cond, y], 1))[-1]
    # 70x70 PatchGAN: 3 stride-2 layers then two stride-1 4x4 convolutions (padding 1)
    side = res // 8 - 2
    assert logits.shape == (2, 1, side, side)


def test_pix2pix_paper_sizes() -> None:
    """The paper configuration at 256 is pix2pix's U-Net-256: 8 levels, 54.4 M parameters."""
    cfg = TextureConfig(resolution=256, in_channels=1, **preset("paper", "texture")["model"])
    assert cfg.levels() == 8
    n = sum(p.numel() for p in UNetGenerator(cfg).parameters())
    assert abs(n - 54.41e6) < 0.01e6


def test_pix2pix_grayscale_and_fully_convolutional() -> None:
    cfg = TextureConfig(resolution=64, out_channels=1, ngf=4, ndf=4, max_channels=16)
    g = UNetGenerator(cfg).eval()
    assert g(torch.zeros(1, 2, 128, 128)).shape == (1, 1, 128, 128)  # larger than trained


def test_same_seed_same_networks() -> None:
    cfg = GeometryConfig(resolution=32, z_dim=8, ngf=4, ndf=4)
    outs = []
    for _ in range(2):
        torch.manual_seed(3)
        g = MaskGenerator(cfg)
        outs.append(g(torch.randn(4, 8, generator=torch.Generator().manual_seed(1))))
    assert torch.equal(outs[0], outs[1])


def test_bad_resolution_is_refused() -> None:
    with pytest.raises(ValueError, match="power of two"):
        MaskGenerator(GeometryConfig(resolution=48))


@pytest.mark.parametrize("bias", [False, True])
def test_fast_resize_convolution_equals_upsample_then_conv(bias: bool) -> None:
    """The phase convolution is an exact re-arrangement of nearest x2 + 3x3 conv, gradients
    too."""
    torch.manual_seed(0)
    m = NearestUpConv(6, 5, bias=bias)
    x = torch.randn(2, 6, 7, 9, requires_grad=True)
    fast, slow = phase_upconv(x, m[1]), nn.Sequential.forward(m, x)
    assert fast.shape == (2, 5, 14, 18)
    assert torch.allclose(fast, slow, atol=1e-5)
    params = [x, *m.parameters()]
    g_fast = torch.autograd.grad((fast**2).sum(), params)
    g_slow = torch.autograd.grad((slow**2).sum(), params)
    for a, b in zip(g_fast, g_slow, strict=True):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-4)
    # Same parameter names as Sequential(Upsample, Conv2d): older saved models still load.
    assert set(m.state_dict()) == ({"1.weight", "1.bias"} if bias else {"1.weight"})


@pytest.mark.parametrize("side", [4, 48])
def test_resize_convolution_picks_a_path_by_size_with_the_same_result(side: int) -> None:
    """Small inputs go through upsample-then-convolve, large ones through the phase
    convolution (models/upsample.py); the module computes the same either way."""
    torch.manual_seed(0)
    m = NearestUpConv(3, 4)
    x = torch.randn(1, 3, side, side)
    phased = side * side >= PHASE_MIN_PIXELS
    assert phased == (side == 48)
    expected = nn.Sequential.forward(m, x)
    assert torch.allclose(m(x), expected, atol=1e-5)
    assert torch.allclose(phase_upconv(x, m[1]), expected, atol=1e-5)


def test_style_code_is_an_input_of_the_generator() -> None:
    from synthmed.models.pix2pix import StyleEncoder

    torch.manual_seed(0)
    cfg = TextureConfig(resolution=32, ngf=4, ndf=4, style_dim=3)
    g = UNetGenerator(cfg).eval()
    cond = torch.rand(2, 2, 32, 32) * 2 - 1
    zeros = torch.zeros(2, 3)
    assert torch.equal(g(cond), g(cond, zeros))  # no code = the prior's mean
    assert not torch.equal(g(cond, zeros), g(cond, torch.ones(2, 3)))
    assert g(cond, torch.randn(2, 3)).shape == (2, 3, 32, 32)
    assert g.random_style(5, torch.device("cpu")).shape == (5, 3)
    assert UNetGenerator(TextureConfig(resolution=32, ngf=4)).random_style(5, "cpu") is None
    mu, logvar = StyleEncoder(cfg)(torch.rand(2, 3, 48, 48))  # any crop size
    assert mu.shape == logvar.shape == (2, 3)


def test_style_prior_is_fitted_to_the_codes() -> None:
    """Sampling draws from the Gaussian of the codes' mean and covariance (plus the
    encoder's mean variance); no code given = that mean."""
    g = UNetGenerator(TextureConfig(resolution=32, ngf=4, ndf=4, style_dim=2)).eval()
    torch.manual_seed(0)
    codes = torch.randn(4000, 2) * torch.tensor([2.0, 0.5]) + torch.tensor([3.0, -1.0])
    g.set_style_prior(codes, torch.full((4000, 2), 0.25))
    draws = g.random_style(20000, torch.device("cpu"))
    assert torch.equal(g.style_mean, codes.mean(0))
    assert torch.allclose(draws.mean(0), codes.mean(0), atol=0.05)
    want_std = (codes.var(0) + 0.25).sqrt()  # the codes' variance + the encoder's
    assert torch.allclose(draws.std(0), want_std, rtol=0.03)
    cond = torch.rand(1, 2, 32, 32) * 2 - 1
    assert torch.equal(g(cond), g(cond, g.style_mean[None]))


def test_generator_saved_without_a_style_prior_loads_with_n01(tmp_path) -> None:
    """Models saved before the fitted prior existed lack its buffers: they load, and sample
    from N(0, 1) as they did; any other missing weight is still refused."""
    from safetensors.torch import save_file

    from synthmed.checkpoints import load_weights
    from synthmed.errors import UserError

    cfg = TextureConfig(resolution=32, ngf=4, ndf=4, style_dim=2)
    old = {k: v for k, v in UNetGenerator(cfg).state_dict().items() if "style_" not in k}
    save_file(old, str(tmp_path / "old.safetensors"))
    g = UNetGenerator(cfg)
    g.style_mean.fill_(5.0)
    fresh = UNetGenerator(cfg)
    load_weights(fresh, tmp_path / "old.safetensors")
    assert torch.equal(fresh.style_mean, torch.zeros(2))
    assert torch.equal(fresh.style_scale, torch.eye(2))
    del old[next(iter(old))]
    save_file(old, str(tmp_path / "broken.safetensors"))
    with pytest.raises(UserError, match="weights missing"):
        load_weights(UNetGenerator(cfg), tmp_path / "broken.safetensors")
