"""The LDL metric set against scipy's independent implementations and hand-worked values."""
import numpy as np
import pytest
from scipy.spatial import distance
from scipy.special import rel_entr

from study.analysis import ldl_metrics as ldl
from study.analysis.metrics import KL_EPS

H = np.array([0.5, 0.3, 0.2, 0.0])
P = np.array([0.25, 0.25, 0.25, 0.25])


def test_hand_worked_values():
    # |h - p| = (.25, .05, .05, .25); h + p = (.75, .55, .45, .25)
    assert ldl.chebyshev(H, P) == pytest.approx(0.25)
    canberra = 0.25 / 0.75 + 0.05 / 0.55 + 0.05 / 0.45 + 0.25 / 0.25
    assert ldl.canberra(H, P) == pytest.approx(canberra)
    assert canberra == pytest.approx(1.535353535, rel=1e-9)
    clark = np.sqrt((1 / 3) ** 2 + (1 / 11) ** 2 + (1 / 9) ** 2 + 1)
    assert ldl.clark(H, P) == pytest.approx(clark)
    assert ldl.ldl_metrics(H, P)["intersection"] == pytest.approx(0.25 + 0.25 + 0.2 + 0)
    kl = 0.5 * np.log(2) + 0.3 * np.log(1.2) + 0.2 * np.log(0.8)
    assert ldl.ldl_metrics(H, P)["kl"] == pytest.approx(kl, rel=1e-5)


@pytest.fixture
def random_pairs():
    rng = np.random.default_rng(0)
    h = rng.dirichlet(np.full(7, 0.4), size=50)
    p = rng.dirichlet(np.ones(7), size=50)
    h[:10, 3] = 0  # zeros on the human side, as in real vote shares
    return h / h.sum(1, keepdims=True), p


def test_agrees_with_scipy(random_pairs):
    h, p = random_pairs
    values = ldl.ldl_metrics(h, p)
    for i in range(len(h)):
        assert values["chebyshev"][i] == pytest.approx(distance.chebyshev(h[i], p[i]))
        assert values["canberra"][i] == pytest.approx(distance.canberra(h[i], p[i]))
        assert values["cosine"][i] == pytest.approx(1 - distance.cosine(h[i], p[i]))
        assert values["js"][i] == pytest.approx(distance.jensenshannon(h[i], p[i], base=2) ** 2)
        smoothed = (p[i] + KL_EPS) / (1 + 7 * KL_EPS)  # the documented smoothing of a zero prediction
        assert values["kl"][i] == pytest.approx(rel_entr(h[i], smoothed).sum(), rel=1e-9)
        clark = np.sqrt(((h[i] - p[i]) ** 2 / (h[i] + p[i]) ** 2).sum())
        assert values["clark"][i] == pytest.approx(clark)


def test_identical_distributions_are_perfect_including_shared_zeros():
    h = np.array([[0.6, 0.4, 0.0], [1.0, 0.0, 0.0]])
    values = ldl.ldl_metrics(h, h)
    for name in ldl.LOWER_IS_BETTER:
        assert np.allclose(values[name], 0, atol=1e-5), name  # KL: the smoothing costs ~K eps
    assert np.allclose(values["cosine"], 1) and np.allclose(values["intersection"], 1)


def test_means_cover_every_metric_and_empty_is_nan():
    means = ldl.ldl_means(np.array([H, H]), np.array([P, H]))
    assert set(means) == set(ldl.LDL_METRICS)
    assert means["chebyshev"] == pytest.approx(0.125)
    assert all(np.isnan(v) for v in ldl.ldl_means(np.zeros((0, 3)), np.zeros((0, 3))).values())
