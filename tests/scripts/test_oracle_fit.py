"""``scripts/oracle_fit.py``: the global filters fitted to each held-out view with its target known."""

import warnings


def test_fitting_with_the_target_known_comes_closer_than_the_input(run_script):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = run_script("oracle_fit.py", ["--data", "demo", "--count", "6", "--iterations", "60"])
    assert 1 <= report["views"] <= 6  # the untouched views are not fitted
    assert report["fitted_psnr"] > report["input_psnr"] and report["fitted_delta_e2000"] < report["input_delta_e2000"]
    assert not [w for w in caught if "training on" in str(w.message)]  # nothing is trained here
