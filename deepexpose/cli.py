"""The ``deepexpose`` command: one sub-command per job, each explained by ``deepexpose COMMAND --help``."""

from __future__ import annotations

import argparse
import codecs
import contextlib
import io
import os
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path


def _cmd_demo(args: argparse.Namespace) -> int:
    from .samples import run_demo

    sheet, scores = run_demo(args.output, method=args.method, model=args.model, overwrite=args.overwrite,
                             progress=args.progress)
    print(f"{'sample':<22} {'error':<38} {'PSNR before':>11} {'after':>6} {'ΔE00 before':>11} {'after':>6}")
    for s in scores:
        print(f"{s['sample']:<22} {s['error']:<38} {s['before_psnr']:>11.2f} {s['after_psnr']:>6.2f} "
              f"{s['before_delta_e2000']:>11.2f} {s['after_delta_e2000']:>6.2f}")
    print(f"wrote {sheet} (samples, enhanced photos with their parameters, scores.json beside it)")
    return 0


def _cmd_showcase(args: argparse.Namespace) -> int:
    from .showcase import run_showcase

    sheet = run_showcase(args.output, size=args.size, overwrite=args.overwrite)
    print(f"wrote {sheet} (and each edited photo plus showcase.json beside it)")
    return 0


def _cmd_filters(args: argparse.Namespace) -> int:
    from .filters import FILTERS

    for f in FILTERS.values():
        kind = " (one value per sub-image)" if f.per_mask else ""
        print(f"{f.name}{kind}: {(f.doc or '').strip().splitlines()[0]}")
        for p in f.params:
            unit = f" {p.unit}" if p.unit else ""
            print(f"    {p.name:<12} [{p.low:g}, {p.high:g}]{unit}, unchanged at {p.identity:g}  {p.doc}")
    return 0


def _cmd_detune(args: argparse.Namespace) -> int:
    from .data.make_pairs import detune_folder

    summary = detune_folder(args.input, args.output, scheme=args.scheme, copies=args.copies, seed=args.seed,
                            overwrite=args.overwrite)
    print(summary)
    return 1 if summary.failed else 0


TRAIN_METHODS = ("agent", "cgan", "classifier", "histogram")


def _trainer(method: str):
    """The config dataclass and training function of ``deepexpose train --method METHOD``."""
    if method == "agent":
        from deepexpose.agents.train import TrainConfig, train

        return TrainConfig, train
    if method == "cgan":
        from deepexpose.agents.cgan import CganConfig, train_cgan

        return CganConfig, train_cgan
    if method == "classifier":
        from deepexpose.agents.classifier import ClassifierConfig, train_classifier

        return ClassifierConfig, train_classifier
    from deepexpose.agents.histogram import HistogramConfig, train_histogram

    return HistogramConfig, train_histogram


def _cmd_train(args: argparse.Namespace) -> int:
    from .config import from_namespace

    cls, fn = _trainer(args.method)
    cfg = from_namespace(cls, args)
    try:
        result = fn(cfg)
    except KeyboardInterrupt as e:
        if hasattr(cfg, "resume"):  # the agent's trainers: say what --resume continues from
            from deepexpose.agents.train import resume_note

            e.add_note(resume_note(cfg.out))
        raise
    flat = {k: v for k, v in result.items() if isinstance(v, (int, float, str))}
    print("final: " + " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in flat.items()))
    return 0


def _cmd_enhance(args: argparse.Namespace) -> int:
    from .config import from_namespace
    from .enhance import EnhanceConfig, enhance_paths

    summary = enhance_paths(args.inputs, from_namespace(EnhanceConfig, args))
    print(summary)
    return summary.exit_code


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from .config import from_namespace
    from .evaluate import EvaluateConfig, run_evaluation
    from .io import shown_name

    cfg = from_namespace(EvaluateConfig, args)
    result = run_evaluation(cfg)
    unpaired = f", {result['unpaired']} more that could not be paired" if result.get("unpaired") else ""
    if result.get("without_input"):
        unpaired += f", {result['without_input']} target{'s' if result['without_input'] > 1 else ''} without an input"
    if result.get("available", result["images"]) > result["images"]:
        unpaired += f"; --limit {result['images']} of {result['available']}"
    print(f"\n{result['scored_images']} of {result['images']} images scored{unpaired} "
          f"(--dataset {result['settings']['dataset']})\n")
    print(result["table"])
    for s in result["skipped"]:
        print(f"skipped {shown_name(s['name'])}: {s['reason']}")
    for f in result["failures"]:
        print(f"failed {f['method']} on {shown_name(f['name'])}: {f['reason']}")
    for note in result["notes"]:
        print(f"note: {note}")
    print(f"\nwrote {cfg.out}/results.json, per_image.csv, results.md"
          + (", contact_sheet.png" if result.get("contact_sheet") else "")
          + (" and outputs/" if cfg.save_outputs else ""))
    return 1 if result["failures"] else 0


def _cmd_score(args: argparse.Namespace) -> int:
    from .io import shown_name
    from .score import score_paths

    failed: list[tuple[str, str]] = []
    rows, mean = score_paths(args.prediction, args.target, failed)
    for name, m in rows:
        print(f"{shown_name(name)}: " + "  ".join(f"{k} {v:.4f}" for k, v in m.items()))
    print("mean: " + "  ".join(f"{k} {v:.4f}" for k, v in mean.items())
          + (f" ({len(rows)} scored, {len(failed)} failed)" if failed else ""))
    for name, reason in failed:
        print(f"failed {shown_name(name)}: {reason}")
    return 1 if failed else 0


TRAIN_DESCRIPTIONS = {
    "agent": "Train the DeepExposure agent on the bundled demo photos, a folder of good photos, a paired folder, "
             "FiveK or the Afifi layout. Checkpoints (safetensors + JSON), TensorBoard logs and evaluations go to "
             "--out; --resume continues a stopped run.",
    "cgan": "Train the pix2pix cGAN baseline (Isola et al. 2017; seeds 001 and 004), a U-Net that paints the "
            "corrected photo, on detuned good photos or on pairs. Its model and eval.json go to --out.",
    "classifier": "Train the \"what is wrong\" classifier baseline (seed 001): a small CNN names one of 24 single "
                  "errors (or \"correct\") and the correction undoes the error it names. Its model goes to --out.",
    "histogram": "Train the histogram network baseline (seed 002): it maps a photo's 3D RGB histogram to that of "
                 "its good version, and distribution transfer gives the photo that histogram. Its model and "
                 "eval.json go to --out.",
}
"""The description of ``deepexpose train --method M --help``."""


def build_parser(train_method: str | None = None, command: str | None = None) -> argparse.ArgumentParser:
    """The whole parser (``command`` None); with a ``command`` only that sub-command gets its options, the others
    are only listed (``""``: none gets them), so that ``deepexpose --help`` and the light commands do not import
    torch for the options of train, enhance and evaluate."""

    def wants(name: str) -> bool:
        return command is None or command == name

    parser = argparse.ArgumentParser(
        prog="deepexpose",
        description="Fix the exposure and colour of photos the way a colourist would: an RL agent "
                    "(DeepExposure, NeurIPS 2018) picks the settings of classic, differentiable filters.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("demo", help="enhance the bundled sample photos and write a before/after sheet",
                       description="Write sample photos with known errors (bundled photos the default model "
                                   "never saw), enhance them and lay out sample | enhanced | original with "
                                   "PSNR and CIEDE2000 against the original.")
    p.add_argument("-o", "--output", default="out/demo", help="output folder (default: out/demo)")
    p.add_argument("--method", default="agent", help="correction method (default: agent)")
    p.add_argument("--model", default="", help="model file (default: the bundled model)")
    p.add_argument("--overwrite", action="store_true", help="replace files left by an earlier run")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True, help="show a progress bar")
    p.set_defaults(func=_cmd_demo, parser=p)

    p = sub.add_parser("showcase", help="show the filters, sub-images and detunings on the bundled photos",
                       description="Edit the photos that ship with the installed packages: luminosity "
                                   "sub-images, a local exposure edit chosen at 64x64 and applied at full "
                                   "size, and synthetic detunings; writes a contact sheet and the parameters.")
    p.add_argument("-o", "--output", default="out/showcase", help="output folder (default: out/showcase)")
    p.add_argument("--size", type=int, default=384, help="short side of the images shown (default: 384)")
    p.add_argument("--overwrite", action="store_true", help="replace files left by an earlier run")
    p.set_defaults(func=_cmd_showcase, parser=p)

    p = sub.add_parser("filters", help="list the filters, their parameters and ranges",
                       description="List every registered filter with its parameters, their ranges and the "
                                   "value that leaves the photo unchanged.")
    p.set_defaults(func=_cmd_filters, parser=p)

    p = sub.add_parser("detune", help="make detuned copies of a folder of good photos (training pairs)",
                       description="Write detuned copies of every photo under INPUT to OUTPUT/input/ and the "
                                   "untouched originals to OUTPUT/target/ (a paired-folder layout), with "
                                   "OUTPUT/detuning.jsonl recording every edit. Seeded and reproducible.")
    p.add_argument("input", help="folder of good photos (searched recursively)")
    p.add_argument("-o", "--output", required=True, help="output folder")
    p.add_argument("--scheme", choices=("single", "mixed", "basic", "afifi"), default="mixed",
                   help="single: seed 001's 24 single-error classes; mixed: seed 002's random edits; basic: "
                        "exposure, white balance, contrast and saturation errors; afifi: exposure offsets "
                        "-1.5..+1.5 EV (default: mixed)")
    p.add_argument("--copies", type=int, default=1, help="detuned copies per photo (default: 1)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.set_defaults(func=_cmd_detune, parser=p)

    from .config import add_dataclass_arguments

    method = train_method or "agent"
    p = sub.add_parser("train", help="train the agent (or a baseline: --method cgan|classifier|histogram)",
                       description=TRAIN_DESCRIPTIONS[method] + " Each --method has options of its own: see "
                       "deepexpose train --method METHOD --help.")
    p.add_argument("--method", choices=TRAIN_METHODS, default="agent",
                   help=f"what to train (default: agent); the options below are those of {method}")
    if wants("train"):
        add_dataclass_arguments(p, _trainer(method)[0])
    p.set_defaults(func=_cmd_train, parser=p)

    p = sub.add_parser("enhance", help="correct photos, folders, frame sequences, animations and videos",
                       description="Correct every photo (animation, video) given, folders recursively, into --out "
                                   "under the same relative path, name and format (a camera RAW photo: a 16-bit TIFF). "
                                   "One bad file never stops the batch: "
                                   "the summary lists what was done, skipped and failed (exit status 1 if any "
                                   "failed, 130 if interrupted). Inputs are never modified; outputs are written "
                                   "atomically; a photo the edit leaves unchanged is copied byte for byte.")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image or video files and folders")
    if wants("enhance"):
        from .enhance import EnhanceConfig

        add_dataclass_arguments(p, EnhanceConfig, short={"out": "-o"})
    p.set_defaults(func=_cmd_enhance, parser=p)

    p = sub.add_parser("evaluate", help="compare methods on FiveK, Afifi, paired folders or synthetic errors",
                       description="Correct every input of a paired benchmark with each method and score it "
                                   "against its target (FiveK-480p protocol: 8-bit, whole RGB image, per image then "
                                   "averaged): PSNR, SSIM, ΔEab, CIEDE2000, seconds per image and parameter count. "
                                   "Writes results.json, per_image.csv, results.md and a contact sheet with ΔE "
                                   "heat maps to --out. Images without a target are reported and skipped.")
    if wants("evaluate"):
        from .evaluate import EvaluateConfig

        add_dataclass_arguments(p, EvaluateConfig, short={"out": "-o"})
    p.set_defaults(func=_cmd_evaluate, parser=p)

    p = sub.add_parser("score", help="PSNR, SSIM, ΔE76 and CIEDE2000 of images against targets",
                       description="Score a prediction image (or folder) against a target image (or folder, "
                                   "matched by relative path, extension ignored) with the FiveK-480p protocol: "
                                   "8-bit quantised, whole RGB image, averaged over images. A pair that cannot be "
                                   "scored (a name without its target or prediction, unreadable, two sizes) is "
                                   "listed as failed, the others scored, and the exit status is 1.")
    p.add_argument("prediction", help="image file or folder")
    p.add_argument("target", help="image file or folder")
    p.set_defaults(func=_cmd_score, parser=p)
    return parser


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread so that it unwinds like Ctrl-C: training stops its worker processes
    and every command leaves only complete files."""


STOPPED: list[type[KeyboardInterrupt]] = []
"""The interruption a signal asked for, kept as well as raised: an exception raised while the signal handler runs
inside a fork handler (a subprocess started with ``preexec_fn``, as imageio-ffmpeg starts ffmpeg) is discarded by
Python, so long loops also ask :func:`raise_if_stopped` between their steps."""


def _on_sigterm(signum, frame) -> None:
    STOPPED.append(Terminated)
    raise Terminated


def _on_sigint(signum, frame) -> None:
    STOPPED.append(KeyboardInterrupt)
    raise KeyboardInterrupt


def raise_if_stopped() -> None:
    """Raise the interruption a signal asked for that was not raised where it came (see :data:`STOPPED`)."""
    if STOPPED:
        raise STOPPED.pop()()


def _warning_printer(command: str, default: Callable) -> Callable:
    """``warnings.showwarning`` that prints deepexpose's own warnings (:class:`deepexpose.DeepExposeWarning`) as
    one line, ``deepexpose COMMAND: warning: MESSAGE``, without the file, line and source line; those of other
    packages keep Python's form, wherever they point."""
    from . import DeepExposeWarning

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        if issubclass(category, DeepExposeWarning):
            print(f"deepexpose {command}: warning: {message}", file=sys.stderr if file is None else file)
        else:
            default(message, category, filename, lineno, file, line)
    show.command = command  # type: ignore[attr-defined]  # worker processes print the same way (enhance --jobs)
    return show


def shown_characters(error: UnicodeError) -> tuple[str, int]:
    """Codec error handler ``deepexpose.shown`` (:func:`codecs.register_error`): a character the output stream
    cannot encode is printed as an escape instead of ending the command after its work is done, a byte of a file
    name that is not UTF-8 (a surrogateescape of PEP 383) as ``\\xNN``, any other character as ``\\uNNNN``."""
    from .io import shown_name

    if not isinstance(error, UnicodeEncodeError):
        raise error
    bad = error.object[error.start:error.end]
    return "".join(shown_name(c) if 0xDC80 <= ord(c) <= 0xDCFF  # as a summary line shows such a byte
                   else c.encode("ascii", "backslashreplace").decode() for c in bad), error.end


codecs.register_error("deepexpose.shown", shown_characters)


@contextlib.contextmanager
def _printable_streams() -> Iterator[None]:
    """Within it, standard output and error print what they cannot encode with :func:`shown_characters`: a file
    name that is not UTF-8, printed to a terminal whose locale is (``en_US.UTF-8`` makes standard output strict),
    lost the summary with "'utf-8' codec can't encode character '\\udce9'" and exit status 2."""
    changed = []
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper) and stream.errors in ("strict", "backslashreplace"):
            changed.append((stream, stream.errors))
            stream.reconfigure(errors="deepexpose.shown")
    try:
        yield
    finally:
        for stream, errors in changed:
            with contextlib.suppress(ValueError):  # a stream closed meanwhile
                stream.reconfigure(errors=errors)


EXPECTED_ERRORS = (OSError, ValueError, RuntimeError)
"""What a command reports as one line (exit status 2): a missing or unwritable file, a bad value, a failed step
(``ImageIOError`` is added where it is imported, to keep this module light)."""


def run_script(main: Callable[[], int | None], file: str) -> int:
    """Run a ``scripts/`` entry point as the ``deepexpose`` command runs its commands: an expected error (a
    missing photo library or model, a bad value, an output it cannot write) is one line, ``NAME: error: REASON``,
    with exit status 2, and Ctrl-C exits 130, instead of a traceback."""
    from .io import ImageIOError

    name = Path(file).name
    try:
        return main() or 0
    except (ImageIOError, *EXPECTED_ERRORS) as e:
        print(f"{name}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\n{name}: interrupted", file=sys.stderr)
        return 130


def main(argv: Sequence[str] | None = None) -> int:
    import signal
    import threading

    argv = list(sys.argv[1:] if argv is None else argv)
    method = None
    if argv[:1] == ["train"]:  # each trainer has its own options: pick the parser by --method first
        pre = argparse.ArgumentParser(add_help=False)
        pre.add_argument("--method", choices=TRAIN_METHODS, default="agent")
        method = pre.parse_known_args(argv[1:])[0].method
    parser = build_parser(method, command=argv[0] if argv and not argv[0].startswith("-") else "")
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # said by the command's parser, whose usage lists the options it takes (when it was built)
        named = argv[0] == getattr(args, "command", None)
        (args.parser if named else parser).error(f"unrecognized arguments: {' '.join(unknown)}")
    func: Callable[[argparse.Namespace], int] = args.func
    main_thread = threading.current_thread() is threading.main_thread()
    STOPPED.clear()
    previous = signal.signal(signal.SIGTERM, _on_sigterm) if main_thread else None
    previous_int = signal.signal(signal.SIGINT, _on_sigint) if main_thread else None
    shown = warnings.showwarning
    warnings.showwarning = _warning_printer(args.command, shown)
    try:
        with _printable_streams():
            return _run(func, args)
    finally:
        warnings.showwarning = shown
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
            signal.signal(signal.SIGINT, previous_int)


def _stdout_closed() -> bool:
    """Whether the standard output is a pipe nobody reads any more (its write end reports an error to ``poll``)."""
    import select

    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & (select.POLLERR | select.POLLHUP) for _, events in poller.poll(0))
    except (AttributeError, OSError, ValueError):  # no poll (Windows), or no file behind sys.stdout
        return False


def _run(func: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """``func(args)``, an expected error printed as one line (exit status 2) and an interruption as a note
    (130, or 143 when terminated)."""
    from .io import ImageIOError

    try:
        return func(args)
    except BrokenPipeError as e:
        if _stdout_closed():  # what reads the output stopped reading (| head): stop quietly, as a piped tool does
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # Python's own flush at exit too
            return 141  # 128 + SIGPIPE
        print(f"deepexpose {args.command}: error: {e}", file=sys.stderr)  # another pipe (ffmpeg's): an error
        return 2
    except (ImageIOError, *EXPECTED_ERRORS) as e:
        print(f"deepexpose {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:  # finished outputs are complete (written atomically); a rerun finishes the rest
        STOPPED.clear()
        terminated = isinstance(e, Terminated)
        notes = "".join(f"; {n}" for n in getattr(e, "__notes__", []))
        print(f"\ndeepexpose {args.command}: {'terminated' if terminated else 'interrupted'}{notes}", file=sys.stderr)
        return 143 if terminated else 130


if __name__ == "__main__":
    sys.exit(main())
