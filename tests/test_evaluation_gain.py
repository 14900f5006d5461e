"""Learning-gain arithmetic (plain functions): missing tests, a pre-test at the maximum, a cohort without spread."""
from __future__ import annotations

import pytest

from lms_bridge.evaluation import charts, gain


def r(uid, pre, post, pre_max=10, post_max=10, **kw):
    return gain.result(uid, f"P{uid}", pre, pre_max, post, post_max, **kw)


def test_gain_and_normalised_gain_are_in_percent_of_each_tests_maximum():
    res = r("1", 4, 16, pre_max=10, post_max=20)  # 40% -> 80%
    assert res.pre == 40 and res.post == 80
    assert res.gain == pytest.approx(40)
    assert res.normalised == pytest.approx(40 / 60)


def test_a_missing_test_gives_no_gain_and_says_which_test_was_taken():
    only_pre, only_post, neither = r("1", 5, None), r("2", None, 7), r("3", None, None)
    assert (only_pre.gain, only_pre.normalised, only_pre.only) == (None, None, "pre")
    assert (only_post.gain, only_post.normalised, only_post.only) == (None, None, "post")
    assert neither.only is None and not neither.complete


def test_normalised_gain_is_undefined_when_the_pre_test_is_at_the_maximum():
    at_max = r("1", 10, 10)
    assert at_max.gain == 0
    assert at_max.normalised is None
    assert gain.normalised_gain(100, 90) is None
    assert gain.normalised_gain(99.9, 100) == pytest.approx(1.0)


def test_a_grade_without_a_positive_maximum_counts_as_missing():
    assert gain.percent(3, 0) is None and gain.percent(None, 10) is None and gain.percent(3, None) is None


def test_summary_counts_one_test_takers_and_leaves_them_out_of_the_gain():
    s = gain.summarise([r("1", 2, 6), r("2", 4, 10), r("3", 5, None), r("4", None, 9), r("5", 10, 10)])
    assert (s.participants, s.both, s.only_pre, s.only_post) == (5, 3, 1, 1)
    assert s.mean_gain == pytest.approx((40 + 60 + 0) / 3)
    assert s.median_gain == pytest.approx(40)
    assert s.normalised_n == 2  # the participant at the maximum has no normalised gain
    assert s.mean_normalised == pytest.approx((0.5 + 1.0) / 2)
    assert s.mean_pre == pytest.approx((20 + 40 + 50 + 100) / 4)


def test_zero_variance_cohort_has_equal_mean_and_median_one_bar_and_a_drawable_chart():
    s = gain.summarise([r(str(i), 5, 7) for i in range(6)])
    assert s.mean_gain == s.median_gain == pytest.approx(20)
    assert s.stdev_gain == 0
    assert [(lo, n) for lo, n in s.bins if n] == [(20, 6)]
    chart = charts.columns([(str(lo), n) for lo, n in s.bins])
    assert max(b.h for b in chart["bars"]) == pytest.approx(chart["base"] - chart["top"])


def test_an_empty_cohort_has_no_numbers_and_still_draws():
    s = gain.summarise([])
    assert (s.both, s.mean_gain, s.median_gain, s.mean_normalised) == (0, None, None, None)
    assert all(b.h == 0 for b in charts.columns([(str(lo), n) for lo, n in s.bins])["bars"])
    assert charts.rows([])["bars"] == []


@pytest.mark.parametrize("value, lower", [(-100, -100), (-95, -100), (-0.1, -10), (0, 0), (9.99, 0), (10, 10),
                                          (99, 90), (100, 90)])
def test_histogram_bins_cover_minus_100_to_100(value, lower):
    assert dict(gain.histogram([value]))[lower] == 1


def test_groups_by_country_and_organisation_type_with_not_stated_last_in_ties():
    res = [r("1", 2, 6, country="ID", org_type="cso"), r("2", 2, 4, country="ID", org_type="nhri"),
           r("3", 2, 8, country="NP"), r("4", 2, None, country="NP")]
    by_country = dict(gain.by_group(res, lambda x: x.country))
    assert by_country["ID"].mean_gain == pytest.approx(30) and by_country["NP"].only_pre == 1
    by_org = dict(gain.by_group(res, lambda x: x.org_type))
    assert set(by_org) == {"cso", "nhri", ""} and by_org[""].participants == 2


def test_module_gains_put_the_least_improved_module_first():
    means = [{"test": "pre", "slot": 1, "mean": 0.5}, {"test": "post", "slot": 1, "mean": 0.9},
             {"test": "pre", "slot": 2, "mean": 0.6}, {"test": "post", "slot": 2, "mean": 0.5},
             {"test": "pre", "slot": 3, "mean": 0.2}, {"test": "post", "slot": 3, "mean": 0.4}]
    modules = gain.module_gains(means, {1: "m1", 2: "m2", 3: "m1"})
    assert [m.module for m in modules] == ["m2", "m1"]
    assert modules[0].change == pytest.approx(-10)
    assert modules[1].questions == 2 and modules[1].pre == pytest.approx(35)


def test_row_chart_draws_negative_values_left_of_zero():
    c = charts.rows([("a", -10.0), ("b", 30.0), ("c", None)])
    a, b, none = c["bars"]
    assert a.x + a.w == pytest.approx(c["zero"]) and b.x == pytest.approx(c["zero"])
    assert none.w == 0 and none.text == "–"
