"""Glow: invertibility, log-determinant vs brute-force Jacobian, likelihood ordering, save/load."""

import numpy as np
import pytest
import torch

from vadlib.errors import ConfigError
from vadlib.methods.flow_nf.glow import Glow, GlowConfig, GlowDensity, squeeze2d, unsqueeze2d

torch.set_num_threads(1)


def _warm(model, shape, seed=0):
    """Initialise ActNorms and perturb zero-initialised weights so the test is not trivial."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        model(torch.randn(16, *shape, generator=g))
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))
    return model


@pytest.mark.parametrize("lu,L,squeeze", [(True, 1, True), (False, 2, True), (True, 1, False)])
def test_invertible(lu, L, squeeze):
    shape = (2, 4, 4)
    m = _warm(Glow(GlowConfig(shape, K=2, L=L, hidden=8, lu=lu, squeeze=squeeze)), shape).double()
    x = torch.randn(5, *shape, dtype=torch.float64)
    zs, _, _ = m(x)
    assert torch.allclose(m.reverse(zs), x, atol=1e-8)
    assert not torch.allclose(zs[-1].flatten(1)[:, :4], x.flatten(1)[:, :4])


def test_squeeze_roundtrip():
    x = torch.randn(3, 2, 4, 6)
    assert squeeze2d(x).shape == (3, 8, 2, 3)
    assert torch.equal(unsqueeze2d(squeeze2d(x)), x)


@pytest.mark.parametrize("lu,L", [(True, 1), (False, 2)])
def test_logdet_matches_bruteforce_jacobian(lu, L):
    shape = (2, 4, 4)
    m = _warm(Glow(GlowConfig(shape, K=2, L=L, hidden=8, lu=lu)), shape, seed=1).double()
    x = torch.randn(1, *shape, dtype=torch.float64)

    def flat_z(v):
        zs, _, _ = m(v.view(1, *shape))
        return torch.cat([z.flatten() for z in zs])

    jac = torch.autograd.functional.jacobian(flat_z, x.flatten())
    brute = torch.linalg.slogdet(jac)[1]
    _, logdet, _ = m(x)
    assert jac.shape == (32, 32)
    assert torch.allclose(logdet[0], brute, atol=1e-6), (float(logdet[0]), float(brute))


def test_actnorm_data_dependent_init():
    shape = (2, 4, 4)
    m = Glow(GlowConfig(shape, K=1, L=1, hidden=8))
    x = 3.0 + 5.0 * torch.randn(64, *shape)
    with torch.no_grad():
        y = m.levels[0][0].layers[0](squeeze2d(x), torch.zeros(()))[0]
    assert abs(float(y.mean())) < 1e-4 and abs(float(y.std()) - 1) < 0.05


def test_trained_likelihood_higher_in_distribution(tmp_path):
    rng = np.random.default_rng(0)
    # in-distribution: smooth fields with a constant direction (like a moving object's flow)
    def sample(n, sign):
        base = rng.normal(0, 0.2, (n, 2, 4, 4)).astype(np.float32)
        base[:, 0] += sign * 1.5
        return base
    train, test_in = sample(600, 1), sample(100, 1)
    test_out = rng.normal(0, 1.5, (100, 2, 4, 4)).astype(np.float32)
    d = GlowDensity(K=2, L=1, hidden=16, epochs=8, batch_size=64, lr=2e-3, seed=0).fit(train)
    s_in, s_out = d.score_samples(test_in), d.score_samples(test_out)
    assert s_in.shape == (100,) and np.all(np.isfinite(s_in))
    assert s_in.mean() > s_out.mean() + 0.5
    # save / load with weights_only=True reproduces the scores
    p = d.save(tmp_path / "glow.pt")
    torch.load(p, weights_only=True)
    assert np.allclose(GlowDensity.load(p).score_samples(test_in), s_in, atol=1e-5)


def test_bad_config_and_input():
    with pytest.raises(ConfigError, match="divisible"):
        Glow(GlowConfig((2, 6, 6), K=1, L=2))
    with pytest.raises(ConfigError, match="before fit"):
        GlowDensity().score_samples(np.zeros((2, 2, 4, 4)))
