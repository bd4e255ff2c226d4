"""``scripts/bench_env.py``: image-steps per second of one environment and of the batched one."""

import pytest

from conftest import load_script
from deepexpose.envs import default_pool


def test_both_measurements_count_image_steps():
    bench = load_script("bench_env.py")
    pool = default_pool(size=16, count=4)
    assert bench.bench_single(pool, 0.2) > 0
    assert bench.bench_batched(pool, 4, 0.2, "cpu") > 0


@pytest.mark.parametrize("argv", [["--seconds", "0"], ["--seconds", "inf"], ["--view", "0"], ["--envs", "0"],
                                  ["--device", "cuda:x"], ["--threads", "-1"]])
def test_bad_arguments_are_refused_before_measuring(argv, monkeypatch, capsys):
    bench = load_script("bench_env.py")
    monkeypatch.setattr(bench, "default_pool", lambda **kw: pytest.fail("measuring began"))
    monkeypatch.setattr("sys.argv", ["bench_env.py", *argv])
    with pytest.raises((SystemExit, RuntimeError)):
        bench.main()


def test_threads_sets_torchs_thread_count(monkeypatch, capsys):
    bench = load_script("bench_env.py")
    set_to = []
    monkeypatch.setattr(bench.torch, "set_num_threads", set_to.append)
    monkeypatch.setattr(bench.torch, "get_num_threads", lambda: set_to[-1] if set_to else 7)
    monkeypatch.setattr(bench, "default_pool", lambda **kw: None)
    monkeypatch.setattr(bench, "bench_single", lambda pool, s: 1.0)
    monkeypatch.setattr(bench, "bench_batched", lambda pool, n, s, d: 2.0)
    monkeypatch.setattr("sys.argv", ["bench_env.py", "--threads", "1"])
    bench.main()
    assert set_to == [1] and "1 threads" in capsys.readouterr().out
    monkeypatch.setattr("sys.argv", ["bench_env.py"])
    set_to.clear()
    bench.main()
    assert set_to == [] and "7 threads" in capsys.readouterr().out
    monkeypatch.setattr("sys.argv", ["bench_env.py", "--device", "auto"])  # the device measured, not the word
    bench.main()
    assert f"batched (128 envs, {'cuda' if bench.torch.cuda.is_available() else 'cpu'})" in capsys.readouterr().out
