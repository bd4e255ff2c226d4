"""A trained agent as a photo corrector: load it, let it choose an edit on a low-resolution view.

A training checkpoint (``runs/X/checkpoint.safetensors`` or ``runs/X/best.safetensors``) carries optimiser
states and the training history; :func:`export_agent` keeps only what inference needs (the policy weights
and how its episodes were set up) in a small safetensors + JSON pair, which is what ships inside the package
as the default model.
:func:`load_agent` reads either. The edit is the episode's white-box description
(``{"local_exposure": {"ev": [...]}, "white_balance": {...}, ...}``), applied to the photo at full resolution
by :mod:`deepexpose.render`.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from pathlib import Path

import torch
from torch import Tensor

from deepexpose.envs.core import EditCore
from deepexpose.filters import DEFAULT_GLOBAL_FILTERS

from .checkpoint import load_checkpoint, read_meta, save_checkpoint
from .networks import ActorCritic
from .train import run_policy

KIND = "deepexpose-agent"
DEFAULT_MODEL = "agent.safetensors"
"""File name of the bundled default model inside the package folder ``deepexpose/models``."""


CONSENSUS_CROP = 0.7
"""Side of the agent's consensus crops as a share of the photo's (:func:`deepexpose.render.crop_views`) for a model
without its own (:func:`consensus_setting`); chosen with the shrinkage by ``scripts/tune_consensus.py`` on the
bundled agent's validation photos (the bundled model carries no setting of its own)."""
CONSENSUS_SHRINK = 1.5
"""Default ``shrink`` of :func:`consensus_action`, and for a model without its own (:func:`consensus_setting`);
chosen with the crop size, as :data:`CONSENSUS_CROP` was."""


def consensus_action(actions: Tensor, shrink: float = CONSENSUS_SHRINK) -> Tensor:
    """One ``1 x A`` action from the ``N x A`` actions a policy chose on N views of the same photo: their mean,
    shrunk toward 0 ("change nothing") where the views disagree, parameter by parameter::

        a = mean * clamp(1 - shrink * var / mean^2, 0, 1)

    a per-parameter shrinkage in the manner of the positive-part James-Stein estimator (James & Stein 1961;
    Efron & Morris 1973), with the spread of the views (their unbiased variance) standing in for the noise. A
    parameter the views agree on keeps its mean; one whose spread is at least the mean's size over
    ``sqrt(shrink)`` becomes exactly 0. One view: its action.
    """
    if actions.ndim != 2 or actions.shape[0] < 1:
        raise ValueError(f"actions must be N x A with N >= 1, got {tuple(actions.shape)}")
    check_consensus(shrink=shrink)
    mean = actions.mean(0, keepdim=True)
    if actions.shape[0] == 1 or shrink == 0:
        return mean
    var = actions.var(0, keepdim=True)
    keep = (1 - shrink * var / mean.square().clamp(min=1e-12)).clamp(0, 1)
    return mean * keep


def consensus_setting(meta: dict) -> dict:
    """The consensus ``crop`` and ``shrink`` a model carries in its JSON (``"consensus"``, chosen on its own
    validation photos by ``scripts/train_default_model.py`` or ``scripts/tune_consensus.py --export``), or the defaults
    (:data:`CONSENSUS_CROP`, :data:`CONSENSUS_SHRINK`) for a model that carries none; and its ``gains``
    (:func:`check_gains`, checked against the model's ``filters``) when it carries any."""
    given = meta.get("consensus") or {}
    unknown = set(given) - {"crop", "shrink", "gains"}
    if unknown:
        raise ValueError(f"the model's consensus setting has unknown keys {sorted(unknown)} (known: crop, shrink, "
                         "gains)")
    setting = {"crop": float(given.get("crop", CONSENSUS_CROP)),
               "shrink": float(given.get("shrink", CONSENSUS_SHRINK))}
    check_consensus(**setting)
    if given.get("gains"):
        setting["gains"] = check_gains(given["gains"], meta.get("filters", DEFAULT_GLOBAL_FILTERS))
    return setting


def check_gains(gains: dict, filters: Sequence[str]) -> dict[str, float]:
    """The gains of :meth:`AgentPolicy.consensus` as ``{name: float}``: names ``local_exposure`` or one of
    ``filters``, factors finite and >= 0 (``ValueError`` otherwise)."""
    if not isinstance(gains, dict):
        raise ValueError(f"gains must be a mapping of filter names to factors, got {gains!r}")
    known = ("local_exposure", *filters)
    if unknown := sorted(set(gains) - set(known)):
        raise ValueError(f"gains for unknown filters {unknown} (known: {', '.join(known)})")
    out = {}
    for name, g in gains.items():
        if isinstance(g, bool) or not isinstance(g, (int, float)) or not 0.0 <= g < float("inf"):
            raise ValueError(f"the gain of {name} must be a finite number >= 0, got {g!r}")
        out[name] = float(g)
    return out


def check_consensus(crop: float | None = None, shrink: float | None = None) -> None:
    """Refuse a crop outside (0, 1] or a shrink that is negative or not finite (``None``: not checked)."""
    if crop is not None and not 0.0 < crop <= 1.0:
        raise ValueError(f"crop must be in (0, 1], got {crop}")
    if shrink is not None and not 0.0 <= shrink < float("inf"):
        raise ValueError(f"shrink must be finite and >= 0, got {shrink}")


def default_model_path() -> Path:
    """The bundled default agent (clear error if this installation lacks it)."""
    path = Path(str(resources.files("deepexpose") / "models" / DEFAULT_MODEL))
    if not path.is_file() or not path.with_suffix(".json").is_file():
        raise FileNotFoundError(f"the bundled default model is missing ({path}); reinstall deepexpose or pass "
                                "--model PATH")
    return path


class AgentPolicy:
    """The deterministic policy of a trained agent and the episode set-up it was trained with."""

    def __init__(self, model: ActorCritic, *, k: int, view: int, segmentation: str = "luminosity",
                 refine_radius: int = 0, filters: tuple[str, ...] = DEFAULT_GLOBAL_FILTERS,
                 meta: dict | None = None) -> None:
        self.model = model.eval()
        self.k, self.view, self.segmentation, self.refine_radius = k, view, segmentation, refine_radius
        self.filters = tuple(filters)
        self.meta = meta or {}
        self.core = EditCore(k=k, filters=self.filters, segmentation=segmentation, refine_radius=refine_radius,
                             reward=None)
        if self.core.action_dim != model.action_dim or self.core.steps != model.steps:
            raise ValueError(f"the model expects {model.steps} steps x {model.action_dim} actions, but k={k} and "
                             f"filters {self.filters} give {self.core.steps} x {self.core.action_dim}")

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @torch.no_grad()
    def choose(self, views: Tensor) -> list[dict]:
        """The edit for each ``B x 3 x view x view`` view in [0, 1] (physical units, JSON-ready)."""
        _, edits = run_policy(self.model, self.core, self._check(views))
        return edits

    @torch.no_grad()
    def consensus(self, views: Tensor, shrink: float = CONSENSUS_SHRINK, gains: dict[str, float] | None = None
                  ) -> dict:
        """One edit for ``N x 3 x view x view`` views of the same photo (e.g. the whole photo and crops of it):
        the episodes run side by side, and at every step each view gets the :func:`consensus_action` of the
        actions chosen on all of them, so later steps see the result of the agreed earlier ones. Identical
        views give :meth:`choose`'s edit (up to float rounding of the mean).

        ``gains`` (``{"white_balance": 1.5}``; names as in :func:`check_gains`) multiply the agreed actions of
        those filters (``local_exposure``: of the local steps), clipped to [-1, 1]: a calibration of how far the
        agent moves each filter from "change nothing", in the manner of regression calibration (the slope of
        the true correction on the one made, fitted on validation photos, ``scripts/tune_consensus.py
        --gains``), where the agent is right about the direction but too timid.

        The local exposure of step ``k`` is that of luminosity sub-image ``k``, whose bands each view sets at
        its own luminance quantiles: the views agree on "the darkest third of what each of them sees", which
        for a crop is not exactly the darkest third of the whole photo."""
        policy = self.model.episode()
        scale = self.action_gains(gains) if gains else None

        def act(obs: dict[str, Tensor]) -> Tensor:
            actions = policy(obs)[0]
            agreed = consensus_action(actions, shrink)
            if scale is not None:
                agreed = (agreed * scale[int(obs["step"][0].argmax())]).clamp(-1, 1)
            return agreed.expand_as(actions)

        _, edits = run_policy(act, self.core, self._check(views))
        return edits[0]

    def action_gains(self, gains: dict[str, float]) -> Tensor:
        """``steps x action_dim`` factors of :meth:`consensus`'s ``gains``: the local steps' rows all
        ``gains["local_exposure"]``, the final step's each filter's gain over its parameters; 1 where none is given."""
        gains = check_gains(gains, self.filters)
        rows = torch.ones(self.core.steps, self.core.action_dim)
        rows[:self.k] = gains.get("local_exposure", 1.0)
        rows[self.k] = torch.cat([torch.full((f.num_params,), gains.get(f.name, 1.0))
                                  for f in self.core.pipeline.filters])
        return rows.to(self.device)

    def _check(self, views: Tensor) -> Tensor:
        if views.ndim != 4 or views.shape[1] != 3 or views.shape[-2:] != (self.view, self.view):
            raise ValueError(f"views must be B x 3 x {self.view} x {self.view}, got {tuple(views.shape)}")
        return views.to(self.device).float().clamp(0, 1)

    def setup(self) -> dict:
        """How the episodes are set up: needed to apply an edit exactly as the agent saw it."""
        return {"k": self.k, "view": self.view, "segmentation": self.segmentation,
                "refine_radius": self.refine_radius, "filters": list(self.filters)}


RECORD_KEYS = ("chosen", "history", "best")  # what export_agent(record=) may add to or replace in ``trained``


def export_agent(checkpoint: str | Path, out: str | Path, *, note: str = "",
                 consensus: dict[str, float] | None = None, record: dict | None = None) -> Path:
    """Write the inference-only model of a training checkpoint (``checkpoint.safetensors``, the run's
    ``best.safetensors`` or a policy it kept in ``evaluated/``) or of an exported model to ``out`` (``.safetensors``
    + ``.json``); ``trained`` in its JSON keeps the step, config, evaluation history and the best validation result
    on 64x64 views (``best``) that the checkpoint carries. ``record`` adds to or replaces entries of ``trained``
    (:data:`RECORD_KEYS`): ``chosen``, how this checkpoint was chosen, and, for a policy kept before its run ended,
    the run's whole ``history`` and ``best``, which the kept file holds only up to its own step. ``consensus``
    (``{"crop": c, "shrink": s}``, optionally with ``"gains"``, see :func:`consensus_setting`) is the model's own
    consensus setting. Re-exporting an exported model keeps its record, consensus setting and note unless new ones
    are given. ``out`` must not share a file with ``checkpoint`` (:func:`check_export_target`)."""
    unknown = sorted(set(record or {}) - set(RECORD_KEYS))
    if unknown:
        raise ValueError(f"export_agent: record takes {', '.join(RECORD_KEYS)}, not {', '.join(unknown)}")
    source, target = check_export_target(checkpoint, out)
    policy = load_agent(source)
    if policy.meta.get("kind") == KIND:  # re-exporting an exported model: keep its record
        trained, note = dict(policy.meta.get("trained", {})), note or policy.meta.get("note", "")
        consensus = consensus if consensus is not None else policy.meta.get("consensus")
    else:
        keep = ("step", "config", "history", "best", "validation_source")
        trained = {k: policy.meta[k] for k in keep if k in policy.meta}
    trained.update(record or {})
    meta = {"kind": KIND, "model": policy.model.config(), **policy.setup(), "note": note, "trained": trained}
    if consensus is not None:
        meta["consensus"] = consensus_setting({"consensus": consensus, "filters": policy.filters})
    return save_checkpoint(target, modules={"policy": policy.model}, meta=meta)


def average_policies(paths: list[str | Path], out: str | Path) -> Path:
    """Write to ``out`` (safetensors + JSON) the policy whose every weight is the mean of that weight in the agents
    of ``paths`` (checkpoints of one run, e.g. the last few it kept): stochastic weight averaging, Izmailov et al.,
    "Averaging Weights Leads to Wider Optima and Better Generalization", UAI 2018. The JSON is the last path's (so its
    ``step``, ``history`` and ``best`` are that policy's, not the average's), plus ``averaged``: the paths and their
    steps. The agents must share one network and set-up (``ValueError``);
    ``out`` must not be one of them."""
    if not paths:
        raise ValueError("average_policies needs at least one agent")
    target = Path(out)
    for path in paths:
        check_export_target(path, target)
    policies = [load_agent(path) for path in paths]
    first = policies[0]
    for path, policy in zip(paths, policies):
        if policy.model.config() != first.model.config() or policy.setup() != first.setup():
            raise ValueError(f"{path} is another network or set-up than {paths[0]}: only one run's agents average")
    states = [policy.model.state_dict() for policy in policies]
    mean = {}
    for key, value in states[0].items():
        if value.is_floating_point():
            mean[key] = (sum(s[key].double() for s in states) / len(states)).to(value.dtype)
        elif all(torch.equal(s[key], value) for s in states):
            mean[key] = value
        else:
            raise ValueError(f"{key} is not a floating-point weight and differs between the agents")
    model = policies[-1].model
    model.load_state_dict(mean)
    meta = {**policies[-1].meta, "averaged": {"paths": [str(p) for p in paths],
                                              "steps": [policy.meta.get("step") for policy in policies]}}
    return save_checkpoint(target, modules={"policy": model}, meta=meta)


def check_export_target(checkpoint: str | Path, out: str | Path) -> tuple[Path, Path]:
    """The model file read from ``checkpoint`` (a file or a run folder) and ``out``, refused (``ValueError``) when
    writing ``out`` and its ``.json`` would replace the model or its ``.json``, under whatever spelling."""
    source, target = agent_file(checkpoint), Path(out)
    read = {p.resolve() for p in (source, source.with_suffix(".json"))}
    if read & {p.resolve() for p in (target, target.with_suffix(".json"))}:
        raise ValueError(f"exporting to {target} would overwrite the model it reads, {source}: choose another output")
    return source, target


def agent_file(path: str | Path | None) -> Path:
    """The file an agent is read from: ``path`` itself, a run folder's ``checkpoint.safetensors``, or for ``None``
    the bundled default model."""
    path = default_model_path() if path is None else Path(path)
    return path / "checkpoint.safetensors" if path.is_dir() else path


# the --method of deepexpose enhance and evaluate that runs a baseline's model, by the kind its JSON records
BASELINE_METHODS = {"deepexpose-cgan": "cgan", "seed001-classifier": "classifier", "histogram": "histogram"}


def _baseline_hint(method: str, path: Path) -> str:
    return (f" (deepexpose enhance runs it with --method {method} --model {path}, deepexpose evaluate with --methods "
            f"{method} --models {method}={path})")


def agent_meta(path: str | Path | None) -> dict:
    """The JSON of an exported agent or of a training checkpoint of the own trainer (``None``: the bundled default
    model); any other model is refused by what it is (``ValueError``; a baseline's names the ``--method`` that runs
    it), a missing file by its path (``FileNotFoundError``)."""
    path = agent_file(path)
    if not path.is_file():
        raise FileNotFoundError(f"no agent model at {path}")
    meta = read_meta(path)
    if meta.get("kind") == KIND:
        return meta
    if "config" in meta and any(k in meta for k in ("model", "algo", "kind")):  # a checkpoint of deepexpose train
        cfg = meta["config"]
        if cfg.get("algo") in ("adpg", "a3c") and "model" in meta:
            return meta
        kind = meta.get("kind", "baseline")
        what = f"a {cfg['algo']} checkpoint" if cfg.get("algo") else f"a {kind} model"
        raise ValueError(f"{path} is {what}; only the own trainer's (adpg, a3c) agents can be loaded here"
                         + (" (stable-baselines3's are compared by scripts/compare_algorithms.py)" if cfg.get("algo")
                            else _baseline_hint(BASELINE_METHODS[kind], path) if kind in BASELINE_METHODS else ""))
    raise ValueError(f"{path} is not a deepexpose agent model or training checkpoint")


def load_agent(path: str | Path | None = None, device: str | torch.device = "cpu") -> AgentPolicy:
    """An exported model or a training checkpoint of the own trainer (``None``: the bundled default model)."""
    path = agent_file(path)
    meta = agent_meta(path)
    if meta.get("kind") == KIND:
        setup = {k: meta[k] for k in ("k", "view", "segmentation", "refine_radius")}
        filters = tuple(meta["filters"])
    else:  # a checkpoint of deepexpose train
        cfg = meta["config"]
        setup = {"k": int(cfg["k"]), "view": int(cfg["view"]), "segmentation": "luminosity", "refine_radius": 0}
        filters = DEFAULT_GLOBAL_FILTERS
    model = ActorCritic.from_config(meta["model"])
    load_checkpoint(path, modules={"policy": model})
    return AgentPolicy(model.to(device), filters=filters, meta=meta, **setup)
