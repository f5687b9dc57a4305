import math

import pytest

from energy_platform.forecasting import metrics

ACTUAL = [10.0, 20.0, 30.0, 40.0]
FORECAST = [12.0, 18.0, 30.0, 50.0]  # errors 2, -2, 0, 10
WEEKLY = [14.0, 20.0, 25.0, 40.0]  # errors 4, 0, -5, 0


def test_point_metrics_by_hand():
    assert metrics.mae(ACTUAL, FORECAST) == pytest.approx(14 / 4)
    assert metrics.rmse(ACTUAL, FORECAST) == pytest.approx(math.sqrt((4 + 4 + 0 + 100) / 4))
    # 2|p-f|/(|p|+|f|): 4/22, 4/38, 0, 20/90
    assert metrics.smape(ACTUAL, FORECAST) == pytest.approx((4 / 22 + 4 / 38 + 0 + 20 / 90) / 4)
    # MAE(model) = 3.5, MAE(weekly naive) = 9/4
    assert metrics.rmae(ACTUAL, FORECAST, WEEKLY) == pytest.approx(3.5 / 2.25)


def test_smape_zero_over_zero_counts_as_perfect():
    assert metrics.smape([0.0, 10.0], [0.0, 10.0]) == 0.0


def test_pinball_and_coverage_by_hand():
    actual = [10.0, 10.0]
    p10, p50, p90 = [8.0, 11.0], [10.0, 12.0], [12.0, 13.0]
    # hour 1 inside the band: q=.1 -> .1*2=.2; q=.5 -> 0; q=.9 -> .1*2=.2
    # hour 2 below all: q=.1 -> .9*1=.9; q=.5 -> .5*2=1; q=.9 -> .1*3=.3
    expected = ((0.2 + 0.9) / 2 + (0 + 1) / 2 + (0.2 + 0.3) / 2) / 3
    assert metrics.pinball(actual, p10, p50, p90) == pytest.approx(expected)
    assert metrics.coverage(actual, p10, p90) == 0.5


def test_mismatched_lengths_refused():
    with pytest.raises(ValueError):
        metrics.mae([1.0, 2.0], [1.0])


def test_jaggedness_ratio_of_flat_real_nights_is_none():
    import numpy as np

    flat = np.full((3, 24), 100.0)
    rough = flat + np.tile(np.arange(24) % 2, (3, 1))
    assert metrics.jaggedness_ratio(flat, rough) is None
    assert metrics.jaggedness_ratio(rough, flat) == 0.0 and metrics.jaggedness_ratio(rough, rough) == 1.0
