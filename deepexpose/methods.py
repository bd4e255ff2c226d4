"""Correction methods behind ``deepexpose enhance``: each turns a photo into a :class:`Plan`.

A plan is what a method decided for one photo: ``params``, a JSON-ready record a person can read (the
sidecar), a ``render`` function that applies the decision to pixels of any size, and, for methods whose
decision is a filter edit, the ``edit`` itself, so that a sequence of frames can be smoothed in parameter
space (:mod:`deepexpose.video`) and the per-pixel part exported as a 3D LUT. Adding a method is one factory
plus one line in :data:`METHODS`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .filters import DEFAULT_GLOBAL_FILTERS, FilterPipeline
from .lut import ColorLUT

Render = Callable[[np.ndarray, float], np.ndarray]
"""``(pixels H x W x 3 uint8/uint16/float32, strength in [0, 1]) -> pixels`` of the same shape and dtype."""


@dataclass
class Plan:
    """One photo's correction: what was chosen (``params``), how to apply it, and the filter edit if any."""

    params: dict
    render: Render
    edit: dict | None = None
    lut: Callable[[int], ColorLUT] | None = None
    """``size -> ColorLUT`` of the per-pixel part of the correction, for ``.cube`` export."""
    prepare: Callable[[tuple[int, int], np.dtype], None] | None = None
    """``(shape H x W, dtype) ->`` does ahead of time the part of ``render`` that needs no pixels, for pixels of
    that size and dtype (e.g. while they are being decoded); ``None`` when there is no such part."""


class Method:
    """A loaded correction method. Subclasses set ``name`` and implement :meth:`plan`."""

    name = "method"
    parametric = False
    """True when plans carry a filter ``edit`` (video smoothing works on it)."""
    has_lut = False
    """True when the correction is a per-pixel colour mapping that plans can export as a 3D LUT."""

    def plan(self, pixels: np.ndarray) -> Plan:
        raise NotImplementedError

    def plan_from_edit(self, edit: dict, view: torch.Tensor | None = None) -> Plan:
        raise ValueError(f"the {self.name} method does not work from filter edits")

    def describe(self) -> dict:
        return {"method": self.name}

    def networks(self) -> list[torch.nn.Module]:
        """The trained networks the method runs (none for model-free methods)."""
        return []

    def parameter_count(self) -> int:
        """Number of learned parameters (weights and biases of :meth:`networks`)."""
        return sum(p.numel() for net in self.networks() for p in net.parameters())


def _global_edit(edit: dict) -> dict:
    return {k: v for k, v in edit.items() if k != "local_exposure"}


class EditMethod(Method):
    """A method whose decision is a filter edit rendered by :func:`deepexpose.render.render_edit`."""

    parametric = True
    has_lut = True

    def __init__(self, *, view: int = 64, k: int = 3, segmentation: str = "luminosity", refine_radius: int = 0,
                 filters: tuple[str, ...] = DEFAULT_GLOBAL_FILTERS) -> None:
        self.view, self.k, self.segmentation, self.refine_radius = view, k, segmentation, refine_radius
        self.filters = tuple(filters)

    def choose(self, view: torch.Tensor) -> dict:
        """The edit for one ``1 x 3 x view x view`` view."""
        raise NotImplementedError

    @property
    def preview_side(self) -> int:
        """The smallest side of a reduced copy of a photo this method may choose on (its plans render onto the
        full photo): four times the view, enough for :func:`deepexpose.render.crop_views`."""
        return 4 * self.view

    def plan(self, pixels: np.ndarray) -> Plan:
        from .render import make_view

        view = make_view(pixels, self.view)
        return self.plan_from_edit(self.choose(view), view)

    def plan_from_edit(self, edit: dict, view: torch.Tensor | None = None) -> Plan:
        """The plan of ``edit``. ``view`` is the ``1 x 3 x view x view`` view of the photo it was chosen on, if
        any: the sub-image masks are segmented on it wherever the plan renders that photo (at full size, or
        the reduced copy it was chosen on); without it they are segmented on a view of the pixels rendered."""
        from .lut import bake_pipeline
        from .render import PreparedEdit, prepare_edit, render_edit

        pipeline = FilterPipeline(self.filters)
        action = pipeline.action_from_description(_global_edit(edit))
        setup = {"view": self.view, "segmentation": self.segmentation, "refine_radius": self.refine_radius,
                 "filters": self.filters}
        prepared: list[PreparedEdit] = []

        def render(pixels: np.ndarray, strength: float) -> np.ndarray:
            ready = next((p for p in prepared if p.fits(pixels)), None)
            return render_edit(pixels, edit, strength=strength, view_image=view, prepared=ready, **setup)

        def prepare(shape: tuple[int, int], dtype: np.dtype) -> None:
            prepared[:] = [prepare_edit(shape, dtype, edit, view_image=view, **setup)]

        def lut(size: int) -> ColorLUT:
            return bake_pipeline(pipeline, action, size)

        return Plan(params={**self.describe(), "edit": edit}, render=render, edit=edit, lut=lut,
                    prepare=prepare if view is not None else None)


class AgentMethod(EditMethod):
    """The DeepExposure agent (:mod:`deepexpose.agents.policy`).

    By default (``consensus``) it looks at six views of the photo, the whole of it and five crops
    (``crop`` of each side), and applies one edit agreed on all of them
    (:meth:`~deepexpose.agents.policy.AgentPolicy.consensus`): parameters the views disagree on shrink toward
    "change nothing" by ``shrink``, and ``gains`` scale filters' agreed actions (``{"white_balance": 1.5}``). All
    three default to the model's own validated setting, or for a model without one to
    :data:`~deepexpose.agents.policy.CONSENSUS_CROP`, :data:`~deepexpose.agents.policy.CONSENSUS_SHRINK` and no
    gains (:func:`~deepexpose.agents.policy.consensus_setting`).
    ``consensus=False`` lets it choose on the whole-photo view alone. With ``untouched_within`` above 0 a photo is
    left untouched when the edit would keep its whole-photo view within that many dB PSNR of itself: the agent's
    small edits are mostly its own noise (``scripts/error_budget.py``, part 3).
    """

    name = "agent"

    def __init__(self, model: str | Path | None = None, device: str = "cpu", *, consensus: bool = True,
                 crop: float | None = None, shrink: float | None = None, gains: dict[str, float] | None = None,
                 untouched_within: float = 0.0) -> None:
        from .agents.policy import check_consensus, check_gains, consensus_setting, load_agent

        if not 0.0 <= untouched_within < float("inf"):
            raise ValueError(f"--untouched-within must be finite and >= 0 dB, got {untouched_within}")
        self.policy = load_agent(model, device)
        self.consensus, self.untouched_within = consensus, untouched_within
        unset = crop is None or shrink is None or gains is None
        own = consensus_setting(self.policy.meta) if consensus and unset else {}  # read only where it is used
        self.crop = own.get("crop") if crop is None else crop
        self.shrink = own.get("shrink") if shrink is None else shrink
        self.gains = own.get("gains", {}) if gains is None else check_gains(gains, self.policy.filters)
        check_consensus(self.crop, self.shrink)
        self.model_path = str(model) if model else "bundled default"
        setup = self.policy.setup()
        super().__init__(view=setup["view"], k=setup["k"], segmentation=setup["segmentation"],
                         refine_radius=setup["refine_radius"], filters=tuple(setup["filters"]))

    def choose(self, view: torch.Tensor) -> dict:
        return self.policy.choose(view)[0]

    def plan(self, pixels: np.ndarray) -> Plan:
        """The edit chosen on ``pixels`` (see the class notes). The policy runs on one torch thread, so that the edit
        is the same to the last digit whatever the number of threads (``--jobs`` workers run one each): for six small
        views a few milliseconds slower than two threads on an idle machine, faster beside other work."""
        from .lut import torch_single_threaded
        from .render import crop_views, make_view

        view = make_view(pixels, self.view)
        with torch_single_threaded():
            if self.consensus:
                edit = self.policy.consensus(torch.cat([view, crop_views(pixels, self.view, self.crop)]),
                                             self.shrink, self.gains)
            else:
                edit = self.choose(view)
            if self.untouched_within > 0 and self.change(view, edit) >= self.untouched_within:
                edit = {"local_exposure": {"ev": [0.0] * self.k}}
        return self.plan_from_edit(edit, view)

    def change(self, view: torch.Tensor, edit: dict) -> float:
        """How far ``edit`` moves the ``1 x 3 x view x view`` view: PSNR in dB between the two, in 8 bits."""
        from .apply import apply_edit
        from .metrics import capped_psnr

        edited = apply_edit(view, edit, view=self.view, segmentation=self.segmentation,
                            refine_radius=self.refine_radius, filters=self.filters)
        return capped_psnr(edited, view)

    def networks(self) -> list[torch.nn.Module]:
        return [self.policy.model]

    def describe(self) -> dict:
        views = {"views": "consensus", "crop": self.crop, "shrink": self.shrink} if self.consensus else \
            {"views": "whole photo"}
        if self.consensus and self.gains:
            views["gains"] = dict(self.gains)
        gate = {"untouched_within": self.untouched_within} if self.untouched_within > 0 else {}
        return {"method": self.name, "model": self.model_path, **views, **gate}


class ModelFreeMethod(EditMethod):
    """An edit method without a model (refuses one, so a stray ``--model`` is not silently ignored)."""

    def __init__(self, model: str | Path | None = None, device: str = "cpu") -> None:
        if model:
            raise ValueError(f"the {self.name} method has no model file; drop its --model (enhance) or its "
                             "--models entry (evaluate)")
        super().__init__()


class ClassicMethod(ModelFreeMethod):
    """Grey-world white balance and auto exposure (:mod:`deepexpose.agents.classic`): the non-learned floor."""

    name = "classic"

    def choose(self, view: torch.Tensor) -> dict:
        from .agents.classic import classic_parameters

        return {"local_exposure": {"ev": [0.0] * self.k}, **classic_parameters(view)[0]}


class IdentityMethod(ModelFreeMethod):
    """Changes nothing: the reference row of every comparison (and a check of the plumbing)."""

    name = "identity"

    def choose(self, view: torch.Tensor) -> dict:
        return {"local_exposure": {"ev": [0.0] * self.k}}


def bundled_model(name: str) -> Path:
    """A baseline's bundled model ``deepexpose/models/<name>.safetensors`` (clear error when missing)."""
    from importlib import resources

    path = Path(str(resources.files("deepexpose") / "models" / f"{name}.safetensors"))
    if not path.is_file():
        raise FileNotFoundError(f"the bundled {name} model is missing ({path}); train it with "
                                "scripts/train_baselines.py or pass --model PATH")
    return path


class ClassifierMethod(EditMethod):
    """Seed 001's "what is wrong" classifier: the probability-weighted inverse of the 24 error classes
    (:mod:`deepexpose.agents.classifier`)."""

    name = "classifier"

    def __init__(self, model: str | Path | None = None, device: str = "cpu") -> None:
        from .agents.classifier import ClassifierCorrector

        path = Path(model) if model else bundled_model("classifier")
        self.corrector = ClassifierCorrector.load(path, device)
        self.model_path = str(model) if model else "bundled default"
        super().__init__(view=self.corrector.model.size)

    def choose(self, view: torch.Tensor) -> dict:
        return self._choose(view)[0]

    def networks(self) -> list[torch.nn.Module]:
        return [self.corrector.model]

    def _choose(self, view: torch.Tensor) -> tuple[dict, dict]:
        edit, info = self.corrector.plan(view)
        return {"local_exposure": {"ev": [0.0] * self.k}, **edit}, info

    def plan(self, pixels: np.ndarray) -> Plan:
        """The edit, with the classes the classifier saw (top-k probabilities) in the sidecar."""
        from .lut import torch_single_threaded
        from .render import make_view

        view = make_view(pixels, self.view)
        with torch_single_threaded():  # as the agent's: the same edit whatever the number of threads
            edit, info = self._choose(view)
        plan = self.plan_from_edit(edit, view)
        plan.params.update(predicted_class=info["class"], top_classes=info["top"])
        return plan

    def describe(self) -> dict:
        return {"method": self.name, "model": self.model_path}


def blend(pixels: np.ndarray, edited: np.ndarray, strength: float) -> np.ndarray:
    """``pixels + strength * (edited - pixels)`` in the pixels' own dtype (integers rounded to nearest)."""
    if strength >= 1.0:
        return edited
    mixed = pixels.astype(np.float32) + np.float32(strength) * (edited.astype(np.float32) - pixels)
    if np.issubdtype(pixels.dtype, np.integer):
        return np.clip(np.rint(mixed), 0, np.iinfo(pixels.dtype).max).astype(pixels.dtype)
    return mixed


class HistogramMethod(Method):
    """Seed 002's histogram network with Pitié's colour transfer (:mod:`deepexpose.agents.histogram`); the
    transfer is a colour mapping, applied at full resolution as a 3D LUT."""

    name = "histogram"
    has_lut = True
    lut_size = 65

    def __init__(self, model: str | Path | None = None, device: str = "cpu") -> None:
        from .agents.histogram import load_histogram

        self.corrector = load_histogram(Path(model) if model else bundled_model("histogram"), device)
        self.model_path = str(model) if model else "bundled default"

    def plan(self, pixels: np.ndarray) -> Plan:
        from .lut import bake_function
        from .render import make_view

        transfer, info = self.corrector.plan(make_view(pixels, self.corrector.view))

        def lut(size: int) -> ColorLUT:
            return bake_function(transfer.apply_image, size)

        baked = lut(self.lut_size)

        def render(px: np.ndarray, strength: float) -> np.ndarray:
            return blend(px, baked.apply(px), strength)

        return Plan(params={**info, **self.describe()}, render=render, lut=lut)

    def networks(self) -> list[torch.nn.Module]:
        return [self.corrector.net]

    def describe(self) -> dict:
        return {"method": self.name, "model": self.model_path}


class CganMethod(Method):
    """The pix2pix cGAN of seeds 001 and 004 (:mod:`deepexpose.agents.cgan`): it paints every pixel, at the
    photo's own size (with seed 001's 2x oversampling when ``oversample`` is 2)."""

    name = "cgan"
    oversample = 1

    def __init__(self, model: str | Path | None = None, device: str = "cpu") -> None:
        from .agents.cgan import load_cgan

        self.corrector = load_cgan(Path(model) if model else bundled_model("cgan"), device)
        self.model_path = str(model) if model else "bundled default"
        if self.corrector.frames != 1:
            raise ValueError("this cGAN was trained on stacks of frames; enhance runs single-frame models")

    def plan(self, pixels: np.ndarray) -> Plan:
        info: dict = {}

        @torch.no_grad()
        def render(px: np.ndarray, strength: float) -> np.ndarray:
            from .io import quantize

            top = np.iinfo(px.dtype).max if np.issubdtype(px.dtype, np.integer) else 1
            x = torch.from_numpy(np.ascontiguousarray(px, dtype=np.float32) / top).permute(2, 0, 1)[None]
            out, more = self.corrector.enhance(x.to(next(self.corrector.generator.parameters()).device),
                                               oversample=self.oversample)
            info.update(more)
            y = out[0].permute(1, 2, 0).clamp(0, 1).cpu().numpy()
            y = y if top == 1 else quantize(y, 8 if top == 255 else 16)
            return blend(px, y, strength)

        return Plan(params={**self.describe(), "oversample": self.oversample}, render=render)

    def networks(self) -> list[torch.nn.Module]:
        return [self.corrector.generator]

    def describe(self) -> dict:
        return {"method": self.name, "model": self.model_path}


METHODS: dict[str, Callable[..., Method]] = {
    "agent": AgentMethod,
    "classic": ClassicMethod,
    "identity": IdentityMethod,
    "classifier": ClassifierMethod,
    "histogram": HistogramMethod,
    "cgan": CganMethod,
}


def view_options(name: str, single_view: bool, untouched_within: float = 0.0) -> dict:
    """The keyword options of :func:`load_method` that ``--single-view`` and ``--untouched-within`` stand for:
    the agent's ``consensus`` and ``untouched_within`` (other methods have none)."""
    return {"consensus": not single_view, "untouched_within": untouched_within} if name == "agent" else {}


def load_method(name: str, model: str | Path | None = None, device: str = "cpu", **options) -> Method:
    """The method ``name`` of :data:`METHODS` with its model (``None``: the bundled default) and the method's
    own keyword ``options`` (e.g. the agent's ``consensus``)."""
    if name not in METHODS:
        raise ValueError(f"unknown --method {name!r}; choose from {', '.join(METHODS)}")
    return METHODS[name](model, device, **options)
