"""``scripts/bench_env.py``: image-steps per second of one environment and of the batched one."""

import pytest

from conftest import load_script
from deepexpose.envs import default_pool


def test_both_measurements_count_image_steps():
    bench = load_script("bench_env.py")
    pool = default_pool(size=16, count=4)
    assert bench.bench_single(pool, 0.2) > 0
    assert bench.bench_batched(pool, 4, 0.2, "cpu") > 0


@pytest.mark.parametrize("argv", [["--seconds", "0"], ["--view", "0"], ["--envs", "0"], ["--device", "cuda:x"]])
def test_bad_arguments_are_refused_before_measuring(argv, monkeypatch, capsys):
    bench = load_script("bench_env.py")
    monkeypatch.setattr(bench, "default_pool", lambda **kw: pytest.fail("measuring began"))
    monkeypatch.setattr("sys.argv", ["bench_env.py", *argv])
    with pytest.raises((SystemExit, RuntimeError)):
        bench.main()
