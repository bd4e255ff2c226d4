"""The seed 001 "what is wrong" classifier: classes, inverse edits, Table 1 metrics, training and the corrector."""

import time

import numpy as np
import pytest
import torch
from PIL import Image

from deepexpose.agents.checkpoint import read_meta, save_checkpoint
from deepexpose.agents.classifier import (CLASSES, INVERSES, NUM_CLASSES, ClassifierConfig, ClassifierCorrector,
                                          ClassifierNet, accuracy, apply_inverse, inverse_edit, is_neighbour,
                                          load_classifier, nearest_neighbour_accuracy, table1, train_classifier,
                                          two_error_failure)
from deepexpose.data.detune import ATTRIBUTES, detune_single
from deepexpose.metrics import psnr


def one_hot(cls):
    p = torch.zeros(NUM_CLASSES)
    p[CLASSES.index(cls)] = 1.0
    return p


def test_classes_are_seed_001_scheme():
    assert len(CLASSES) == 25 and CLASSES[-1] == "correct"
    names = [a.name for a in ATTRIBUTES]
    assert len(names) == 8
    assert list(CLASSES[:24]) == [f"{n}_{lv}" for n in names for lv in (33, 66, 100)]


def test_inverse_edits_restore_every_class():
    # values kept away from 0 and 1, where the black and white point errors clip and destroy information
    g = torch.Generator().manual_seed(0)
    img = (0.2 + 0.55 * torch.rand(1, 3, 24, 24, generator=g, dtype=torch.float64))
    for cls in CLASSES:
        detuned, _ = detune_single(img, cls)
        out = apply_inverse(detuned, one_hot(cls)[None])
        # contrast has no exact inverse in its own family: the least-squares fit is still > 38 dB
        limit = 38.0 if cls.startswith("contrast") else 80.0
        assert psnr(out, img, quantize=False) > limit, cls
        if cls != "correct":
            assert psnr(out, img, quantize=False) > psnr(detuned, img, quantize=False) + 10, cls


def test_one_hot_gives_the_exact_inverse_and_mixes_average_parameters():
    edit = inverse_edit(one_hot("too_dark_66"))
    assert edit["exposure"]["ev"] == pytest.approx(0.99)
    assert edit["levels"] == {"black": 0.0, "white": 1.0} and edit["saturation"] == {"factor": 1.0}
    orange = inverse_edit(one_hot("too_orange_100"))
    assert orange["white_balance"]["temperature"] == pytest.approx(-1.0) and orange["exposure"]["ev"] > 0
    for cls in CLASSES:
        edit = inverse_edit(one_hot(cls))
        for f, params in INVERSES[cls].items():
            for p, v in params.items():
                assert edit[f][p] == pytest.approx(v, abs=1e-12), cls
    mix = 0.5 * one_hot("white_point_too_low_66") + 0.5 * one_hot("white_point_too_low_100")
    expected = 0.5 * (INVERSES["white_point_too_low_66"]["levels"]["white"] + 1.25)
    assert inverse_edit(mix)["levels"]["white"] == pytest.approx(expected)
    half_correct = 0.5 * one_hot("too_dark_100") + 0.5 * one_hot("correct")
    assert inverse_edit(half_correct)["exposure"]["ev"] == pytest.approx(0.75)


def test_inverse_edit_rejects_bad_probabilities():
    with pytest.raises(ValueError, match="25"):
        inverse_edit(torch.ones(24) / 24)
    with pytest.raises(ValueError, match="sum to 1"):
        inverse_edit(torch.ones(25))
    with pytest.raises(ValueError, match="one image"):
        inverse_edit(torch.ones(2, 25) / 25)


def test_table1_accuracy_and_nearest_neighbours():
    target = ["too_dark_33", "too_dark_66", "too_blue_100", "contrast_too_high_33", "correct"]
    pred = ["too_dark_33", "too_dark_100", "too_blue_33", "saturation_too_low_66", "too_orange_33"]
    t = table1(pred, target)
    assert t == {"correct": 0.2, "nearest_neighbour": 0.4, "total": pytest.approx(0.6), "n": 5}
    assert accuracy(pred, target) == 0.2
    assert nearest_neighbour_accuracy(pred, target) == pytest.approx(0.6)
    assert nearest_neighbour_accuracy(pred, target, correct_neighbours=False) == pytest.approx(0.4)
    idx = torch.tensor([CLASSES.index(c) for c in pred])
    assert table1(idx, target) == t
    assert is_neighbour("too_dark_66", "too_dark_33") and not is_neighbour("too_dark_66", "too_blue_66")
    with pytest.raises(ValueError, match="unknown class"):
        accuracy(["too_purple_33"], ["correct"])
    with pytest.raises(ValueError, match="as many"):
        accuracy(["correct"], [])


def write_photos(root, n=3):
    rng = np.random.default_rng(0)
    root.mkdir(parents=True)
    for i in range(n):
        base = rng.integers(40, 200, (1, 1, 3))
        img = np.clip(base + rng.integers(-40, 40, (40, 48, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(img).save(root / f"{i}.png")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("clf")
    write_photos(root / "good")
    cfg = ClassifierConfig(data="folder", root=str(root / "good"), size=16, width=2, batch=8, steps=3, minutes=0,
                           eval_size=25, out=str(root / "run"), progress=False)
    result = train_classifier(cfg)
    return cfg, result, root / "run" / "classifier.safetensors"


def test_training_writes_a_loadable_checkpoint(trained):
    cfg, result, path = trained
    assert result["steps"] == 3 and 0 <= result["correct"] <= result["total"] <= 1
    assert {"psnr", "delta_e2000", "input_psnr", "good_psnr"} <= set(result["single"])
    assert {"single_psnr", "double_psnr"} <= set(result["two_errors"]) and "psnr" in result["basic"]
    assert result["seen_photos"]["n"] == 25
    meta = read_meta(path)
    assert meta["classes"] == list(CLASSES) and meta["config"]["size"] == 16 and meta["eval"] == result
    assert path.stat().st_size < 5_000_000
    model = load_classifier(path)
    again = load_classifier(path)
    x = torch.rand(4, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(model(x), again(x), rtol=0, atol=0)
    assert model.size == 16 and not model.training


def test_enhance_keeps_shape_and_range_at_another_size(trained):
    _, _, path = trained
    corrector = ClassifierCorrector.load(path, top_k=2)
    photo = torch.rand(1, 3, 37, 53, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    out, info = corrector.enhance(photo)
    assert out.shape == photo.shape and out.dtype == photo.dtype
    assert 0 <= float(out.min()) and float(out.max()) <= 1
    assert len(info["top"]) == 2 and info["class"] in CLASSES and sum(info["top"].values()) <= 1 + 1e-6
    edit, _ = corrector.plan(photo)
    assert edit == info["edit"] and set(edit) == {"white_balance", "exposure", "levels", "contrast", "saturation"}
    with pytest.raises(ValueError, match="one photo"):
        corrector.plan(torch.rand(2, 3, 8, 8))
    with pytest.raises(ValueError, match="B x 3 x H x W"):
        corrector.enhance(torch.rand(3, 8, 8))
    with pytest.raises(ValueError, match="top_k"):
        ClassifierCorrector(load_classifier(path), top_k=0)


def test_two_error_failure_returns_both_numbers(trained):
    _, _, path = trained
    photos = [torch.rand(3, 30, 30, generator=torch.Generator().manual_seed(i)) for i in range(2)]
    r = two_error_failure(ClassifierCorrector.load(path), photos, count=4, size=16)
    assert set(r) == {"single_input_psnr", "single_psnr", "double_input_psnr", "double_psnr", "double_hit"}


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="--size"):
        train_classifier(ClassifierConfig(size=8))
    with pytest.raises(ValueError, match="--lr"):
        train_classifier(ClassifierConfig(lr=0.0))
    with pytest.raises(ValueError, match="size"):
        ClassifierNet(size=8)
    save_checkpoint(tmp_path / "other.safetensors", modules={"m": torch.nn.Linear(2, 2)}, meta={"kind": "agent"})
    with pytest.raises(ValueError, match="not a seed 001 classifier"):
        load_classifier(tmp_path / "other.safetensors")


def test_a_wall_clock_budget_stops_training(tmp_path):
    write_photos(tmp_path / "good")
    cfg = ClassifierConfig(data="folder", root=str(tmp_path / "good"), size=16, width=2, batch=8, steps=10 ** 9,
                           minutes=0.02, eval_size=5, out=str(tmp_path / "run"), progress=False)
    start = time.monotonic()
    result = train_classifier(cfg)
    assert time.monotonic() - start < 60 and 0 < result["steps"] < 10 ** 9
    assert (tmp_path / "run" / "classifier.safetensors").is_file()


def test_evaluation_and_enhance_apply_the_same_edit():
    """correct() (evaluation, batched through apply_inverse) and enhance() (what users get, through the edit's
    description) give the same photos with the bundled model, whose probabilities are far from uniform."""
    from deepexpose.methods import bundled_model

    corrector = ClassifierCorrector.load(bundled_model("classifier"))
    g = torch.Generator().manual_seed(3)
    base = torch.rand(3, 3, 4, 5, generator=g)
    images = torch.nn.functional.interpolate(base, size=(30, 41), mode="bilinear") * torch.tensor(
        [[0.5], [1.0], [0.8]]).view(3, 1, 1, 1)
    corrected, probs = corrector.correct(images)
    assert float(probs.max(dim=1).values.min()) > 2 / NUM_CLASSES
    for i in range(3):
        out, _ = corrector.enhance(images[i:i + 1])
        torch.testing.assert_close(out, corrected[i:i + 1], atol=2e-6, rtol=0)
    assert not torch.allclose(corrected, images, atol=1e-3)


def test_evaluate_classifier_scores_against_the_right_images():
    """A corrector that changes nothing and always answers "correct": outputs score as the inputs do, untouched views
    come back bit for bit, and Table 1 counts exactly the untouched views as right."""
    from deepexpose.agents.classifier import CORRECT_INDEX, evaluate_classifier

    class Identity:
        def correct(self, images):
            probs = torch.zeros(len(images), NUM_CLASSES)
            probs[:, CORRECT_INDEX] = 1
            return images.clone(), probs

    photos = [torch.rand(3, 40, 48, generator=torch.Generator().manual_seed(i)) for i in range(2)]
    result = evaluate_classifier(Identity(), photos, count=50, basic_count=6, size=16)
    assert result["correct"] == pytest.approx(2 / 50) and result["n"] == 50  # every class equally often
    for part in ("single", "basic"):
        assert result[part]["psnr"] == result[part]["input_psnr"] < 60
        assert result[part]["delta_e2000"] == result[part]["input_delta_e2000"] > 0
    assert result["single"]["good_psnr"] == 100
    two = result["two_errors"]
    assert two["single_psnr"] == two["single_input_psnr"] and two["double_psnr"] == two["double_input_psnr"]
