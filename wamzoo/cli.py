"""The ``wamzoo`` command line (rich output).

    wamzoo list [PATTERN] [--kind K ...] [--recipes] [--pretrained] [--plain]
    wamzoo info [KIND:]NAME
    wamzoo recipe show RECIPE [key=value ...]
    wamzoo train RECIPE [key=value ...] [--out DIR]
    wamzoo data metaworld --suite mw-easy --episodes N --out DIR
    wamzoo data stats DIR [--force]
    wamzoo eval POLICY_OR_CHECKPOINT --suite mw-easy --episodes N --seed S [--json F] [--video DIR]
    wamzoo bench latency TARGET... [--steps N] [--json F]
    wamzoo bench train TARGET [--json F]
    wamzoo export RUN OUT [--name N] [--results JSON] [--force]
    wamzoo push RUN ORG/REPO [--results JSON]
    wamzoo pull NAME
    wamzoo new-plugin NAME [--dir DIR]
    wamzoo doctor
"""

from __future__ import annotations

import argparse
import inspect
import sys
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from wamzoo.registry import COMPONENT_KINDS, KINDS, split_kind, unknown

console = Console()


def _plugins():
    from wamzoo.plugins import get_plugins

    return get_plugins()


# -- list / info -----------------------------------------------------------------------------
def _plain(args) -> bool:
    """Plain output for pipes and scripts: ``--plain``, or standard output is not a terminal."""
    return bool(getattr(args, "plain", False)) or not sys.stdout.isatty()


def cmd_list(args) -> int:
    pattern = args.pattern or "*"
    if args.compatible:
        return _list_compatible(args.compatible)
    kinds = list(args.kind or []) + ["recipe"] * args.recipes + ["pretrained"] * args.pretrained
    entries = _plugins().registry.entries(pattern, kinds or None)
    if _plain(args):  # one `kind<TAB>name` line per entry: no table, no colour, no truncation
        sys.stdout.write("".join(f"{e.kind}\t{e.name}\n" for e in entries))
        if not entries:
            print(f"nothing matched {pattern!r}", file=sys.stderr)
        return 0
    what = " and ".join(sorted(set(kinds), key=KINDS.index)) if kinds else "names"
    table = Table(title=f"{what} matching {pattern!r}")
    for col in ("kind", "name", "plugin", "summary"):
        table.add_column(col, style="bold cyan" if col == "name" else None)
    for e in entries:
        summary = e.summary
        if e.kind == "pretrained":
            source = "shipped" if e.target.repo_id.startswith("local:") else e.target.repo_id
            summary = f"[{source}, {e.target.converter or 'native format'}] {summary}"
        table.add_row(e.kind, e.name, e.plugin, escape(summary))
    console.print(table)
    if not entries:
        console.print("[yellow]nothing matched[/]; try `wamzoo list '*'`")
    return 0


def _list_compatible(name: str) -> int:
    """The components of the other roles that compose with ``name`` (declared capabilities)."""
    from wamzoo.composition import ROLES, compatible
    from wamzoo.registry import unknown

    reg = _plugins().registry
    own = [e for e in reg.entries(name) if e.name == name and e.kind in ROLES]
    if not own:
        raise unknown("component", name, [e.name for e in reg.entries() if e.kind in ROLES])
    entry = own[0]
    fits = compatible(entry.kind, entry.obj, {r: [(e.name, e.obj) for e in reg.entries(kind=r)] for r in ROLES})
    if not sys.stdout.isatty():  # plain: one `role<TAB>name` line each, for pipes and scripts
        print("\n".join(f"{role}\t{n}" for role, names in fits.items() for n in names))
        return 0
    table = Table(title=f"what composes with {entry.kind} {name!r}")
    table.add_column("role")
    table.add_column("components", style="bold cyan")
    for role, names in fits.items():
        table.add_row(role, ", ".join(names) or "[yellow]none[/]")
    console.print(table)
    return 0


def cmd_info(args) -> int:
    registry = _plugins().registry
    matches = registry.find(args.name)
    if not matches:
        kind, _ = split_kind(args.name)
        raise unknown("name", args.name, [f"{e.kind}:{e.name}" if kind else e.name for e in registry.entries(kind=kind)],
                      hint="`wamzoo list` shows every name.")
    for e in matches:
        console.rule(f"[bold]{e.kind}[/] {e.name}  (plugin {e.plugin})")
        if e.doc:
            console.print(e.doc, markup=False, highlight=False)
        if e.kind in COMPONENT_KINDS:
            table = Table(title="arguments")
            for col in ("name", "type", "default"):
                table.add_column(col)
            for p in e.parameters().values():
                ann = "" if p.annotation is inspect.Parameter.empty else str(p.annotation)
                default = "(required)" if p.default is inspect.Parameter.empty else repr(p.default)
                table.add_row(p.name, escape(ann), escape(default))
            console.print(table)
            if e.tiny:
                console.print(f"tiny config: {e.tiny}", markup=False, highlight=False, soft_wrap=True)
        elif e.kind == "recipe":
            from wamzoo.recipes import compose

            console.print(f"# {e.target}", markup=False, highlight=False, soft_wrap=True)
            console.print(compose(e.target).to_yaml(), markup=False, highlight=False, soft_wrap=True)
        elif e.kind == "pretrained":
            spec = e.target
            for key in ("repo_id", "revision", "files", "converter", "options"):
                if getattr(spec, key):
                    console.print(f"{key}: {getattr(spec, key)}", markup=False, highlight=False, soft_wrap=True)
        elif e.kind == "converter":
            console.print(f"function: {e.target if isinstance(e.target, str) else e.target.__qualname__}",
                          markup=False, highlight=False, soft_wrap=True)
    return 0


# -- recipes / training ----------------------------------------------------------------------
def cmd_recipe(args) -> int:
    from wamzoo.recipes import compose

    recipe = compose(args.recipe, args.overrides)
    console.print(f"# composed from {recipe.source}")
    for note in recipe.notes:
        console.print(f"# note: {note}", markup=False, highlight=False, soft_wrap=True)
    console.print(recipe.to_yaml(), markup=False, highlight=False, soft_wrap=True)
    return 0


def cmd_train(args) -> int:
    from wamzoo.recipes import compose
    from wamzoo.training import train

    recipe = compose(args.recipe, args.overrides)
    run = train(recipe, out_dir=args.out)
    console.print(f"[green]done[/]: checkpoints in {run / 'checkpoints'}, logs in {run}")
    return 0


# -- benchmark (Meta-World) ------------------------------------------------------------------
def cmd_data(args) -> int:
    from wamzoo.data.generate import generate_from_args

    return generate_from_args(args)


def cmd_data_stats(args) -> int:
    from wamzoo.data.lerobot import recompute_stats

    console.print(f"[green]wrote[/] {recompute_stats(args.root, force=args.force)}")
    return 0


def cmd_eval(args) -> int:
    from wamzoo.evaluate import evaluate_from_args

    return evaluate_from_args(args)


def cmd_bench(args) -> int:
    from wamzoo import bench

    if args.what == "latency":
        bench.latency(args.targets, steps=args.steps, repeats=args.repeats, warmup=args.warmup,
                      json_path=args.json, threads=args.threads, overrides=args.set, device=args.device,
                      dtype=args.dtype, reference=args.reference)
    else:
        if len(args.targets) != 1:
            console.print("[red]`wamzoo bench train` takes exactly one target[/]")
            return 2
        bench.train_step(args.targets[0], steps=args.steps, json_path=args.json, threads=args.threads,
                         overrides=args.set)
    return 0


def _results(path: str | None) -> dict | None:
    import json

    return json.loads(Path(path).read_text()) if path else None


def cmd_export(args) -> int:
    from wamzoo import load

    policy = load(args.source)
    folder = policy.save_pretrained(args.out, name=args.name, results=_results(args.results), dtype=args.dtype,
                                    force=args.force)
    console.print(f"[green]saved[/] {folder} (config.json, model.safetensors, stats.json, README.md)")
    return 0


def cmd_push(args) -> int:
    from wamzoo import load

    info = load(args.source).push_to_hub(args.repo_id, results=_results(args.results), private=args.private)
    console.print(f"[green]pushed[/] {info.commit_url}")
    return 0


def cmd_pull(args) -> int:
    from wamzoo.hub import download, resolve

    files = download(resolve(args.name))
    for f, p in files.items():
        console.print(f"{f}: {p}")
    return 0


# -- plugins ---------------------------------------------------------------------------------
def cmd_new_plugin(args) -> int:
    from wamzoo.scaffold import new_plugin

    folder = new_plugin(args.name, Path(args.dir))
    console.print(f"[green]created[/] {folder}\nnext: pip install -e {folder} && wamzoo list '{args.name}*'"
                  f" && pytest {folder}")
    return 0


def cmd_doctor(args) -> int:
    from wamzoo.doctor import doctor

    return doctor(console)


# -- entry -----------------------------------------------------------------------------------
def _placement(s: argparse.ArgumentParser) -> None:
    """``--device`` and ``--dtype`` of a command that runs a policy (:mod:`wamzoo.runtime`)."""
    s.add_argument("--device", default=None, choices=("auto", "cpu", "cuda", "mps"),
                   help="where the policy runs (default: cpu; auto: CUDA, else MPS, else CPU)")
    s.add_argument("--dtype", default=None, choices=("float32", "bfloat16", "float16"),
                   help="precision of the policy's weights and inference (default: float32)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="wamzoo", description="A zoo of World Action Models.")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("list", help="list registered names: components, recipes, pretrained policies, converters",
                       description="Registered names of every kind matching PATTERN (shell wildcards; KIND:PATTERN"
                                   " restricts the kind). Piped, or with --plain, one `kind<TAB>name` line each.")
    s.add_argument("pattern", nargs="?", default="*")
    s.add_argument("--kind", action="append", choices=KINDS, help="only this kind (repeatable)")
    s.add_argument("--recipes", action="store_true", help="only recipes (--kind recipe)")
    s.add_argument("--pretrained", action="store_true", help="only pretrained policies (--kind pretrained)")
    s.add_argument("--plain", action="store_true", help="one `kind<TAB>name` line per name (the default when piped)")
    s.add_argument("--compatible", metavar="NAME", help="what combines with the component NAME")
    s.set_defaults(fn=cmd_list)

    s = sub.add_parser("info", help="describe a registered name: component, recipe, pretrained policy or converter")
    s.add_argument("name", help="a name, or KIND:NAME where several kinds share it")
    s.set_defaults(fn=cmd_info)

    s = sub.add_parser("recipe", help="recipes")
    rs = s.add_subparsers(dest="action", required=True)
    show = rs.add_parser("show", help="print the composed recipe")
    show.add_argument("recipe")
    show.add_argument("overrides", nargs="*")
    show.set_defaults(fn=cmd_recipe)

    s = sub.add_parser("train", help="train a recipe with Lightning")
    s.add_argument("recipe")
    s.add_argument("overrides", nargs="*", help="dot-list overrides, e.g. trainer.max_steps=100")
    s.add_argument("--out", default=None, help="runs folder (default: trainer.out_dir)")
    s.set_defaults(fn=cmd_train)

    s = sub.add_parser("data", help="generate demonstration datasets")
    ds = s.add_subparsers(dest="source", required=True)
    mw = ds.add_parser("metaworld", help="scripted-expert demonstrations on Meta-World")
    mw.add_argument("--suite", default="mw-easy", help="mw-easy or mw-mt10")
    mw.add_argument("--tasks", default=None, help="comma-separated task names (overrides --suite)")
    mw.add_argument("--episodes", type=int, default=20, help="episodes per task")
    mw.add_argument("--out", required=True, help="dataset folder (LeRobot v3 + arrays; a rerun resumes)")
    mw.add_argument("--workers", type=int, default=2, help="worker processes (0 runs inline)")
    mw.add_argument("--seed", type=int, default=0, help="first training seed (training seeds are < 1000000)")
    mw.add_argument("--keep-failures", action="store_true", help="also keep episodes the expert failed")
    mw.add_argument("--size", type=int, default=None, help="camera resolution in pixels, square (default 64)")
    mw.add_argument("--cameras", default=None, help="comma-separated camera names (default oblique,top)")
    mw.add_argument("--noise", type=float, default=0.0, help="DART: the expert's executed actions perturbed by"
                    " Gaussian noise of this standard deviation, its own actions recorded (default 0: none)")
    mw.add_argument("--settle", type=int, default=0, help="steps each episode goes on after the expert's first"
                    " success, so it shows the goal reached and held (default 0: ends at the first success)")
    mw.add_argument("--aim", choices=("wrist", "fingertips"), default="wrist", help="where the reach experts point"
                    " the hand: Meta-World's wrist on the goal (default), or the fingertips, from which success is"
                    " measured")
    mw.add_argument("--lerobot-env", action="store_true", help="the camera and state of LeRobot's Meta-World env"
                    " (lerobot-eval --env.type=metaworld), frames as PNG in the parquet files")
    mw.set_defaults(fn=cmd_data)
    st = ds.add_parser("stats", help="recompute a dataset's normalisation statistics (meta/stats.json)")
    st.add_argument("root", help="dataset folder (LeRobot v3)")
    st.add_argument("--force", action="store_true", help="replace an existing meta/stats.json")
    st.set_defaults(fn=cmd_data_stats)

    s = sub.add_parser("eval", help="closed-loop evaluation on the Meta-World benchmark")
    s.add_argument("target", nargs="?", default=None, help="checkpoint, run folder, saved folder or pretrained name")
    s.add_argument("--policy", default=None, help="'scripted' evaluates Meta-World's expert policies")
    s.add_argument("--suite", default=None, help="mw-easy or mw-mt10 (default: the recipe's eval.suite)")
    s.add_argument("--tasks", default=None, help="comma-separated task names (overrides --suite)")
    s.add_argument("--episodes", type=int, default=None, help="episodes per task (default: eval.episodes)")
    s.add_argument("--seed", type=int, default=None, help="first evaluation seed, >= 1000000 (default: eval.seed)")
    s.add_argument("--replan", type=int, default=None, help="actions executed per predicted chunk (default: 8)")
    s.add_argument("--ensemble", type=float, default=None, metavar="M",
                   help="temporal ensembling (ACT): a call every step, the action averaged over every chunk's"
                        " prediction for it, the i-th oldest weighted exp(-M i); replaces --replan")
    s.add_argument("--max-steps", type=int, default=None, help="steps before an episode fails (default: 300)")
    s.add_argument("--workers", type=int, default=None, help="worker processes, 0 runs inline (default: 2)")
    s.add_argument("--batch", type=int, default=None,
                   help="episodes of a task stepped together, one batched policy call per chunk (default: 10)")
    s.add_argument("--frame-lag", type=int, default=0,
                   help="the policy's frames end this many steps before the present (a lagging camera or planner);"
                        " state and the present frame (batch.rgb_now) stay current (default: 0)")
    _placement(s)
    s.add_argument("--json", default=None, help="report file; finished episodes wait in JSON.partial until it is"
                                                " written, and the same command run again resumes from them")
    s.add_argument("--video", default=None, help="folder for one video per episode")
    s.set_defaults(fn=cmd_eval)

    s = sub.add_parser("bench", help="benchmarks: per-chunk latency, training throughput")
    s.add_argument("what", choices=("latency", "train"))
    s.add_argument("targets", nargs="+", help="recipes, checkpoints or pretrained names")
    s.add_argument("--steps", type=int, default=None, help="latency: repeated calls; train: optimiser steps")
    s.add_argument("--repeats", type=int, default=20)
    s.add_argument("--warmup", type=int, default=3)
    s.add_argument("--threads", type=int, default=None,
                   help="CPU threads (default: latency, torch's; train, the recipe's trainer.threads, as it trains)")
    s.add_argument("--set", action="append", default=[], help="recipe override applied to every target")
    s.add_argument("--reference", action="store_true",
                   help="latency: time the reference path (inference fast paths off; see wamzoo.fastpath)")
    _placement(s)
    s.add_argument("--json", default=None)
    s.set_defaults(fn=cmd_bench)

    s = sub.add_parser("export", help="save a trained run as a policy folder with its model card")
    s.add_argument("source", help="run folder, .ckpt, saved folder or pretrained name")
    s.add_argument("out")
    s.add_argument("--name", default=None, help="name shown in the card (default: the folder name)")
    s.add_argument("--results", default=None, help="evaluator JSON (wamzoo eval --json) for the card")
    s.add_argument("--dtype", default=None, choices=("float32", "float16", "bfloat16"),
                   help="store the parameters at this precision (half the size for float16)")
    s.add_argument("--force", action="store_true", help="replace the export in a folder that is not empty")
    s.set_defaults(fn=cmd_export)

    s = sub.add_parser("push", help="upload a policy to the Hugging Face Hub")
    s.add_argument("source")
    s.add_argument("repo_id")
    s.add_argument("--results", default=None)
    s.add_argument("--private", action="store_true")
    s.set_defaults(fn=cmd_push)

    s = sub.add_parser("pull", help="download a pretrained policy into the Hugging Face cache")
    s.add_argument("name")
    s.set_defaults(fn=cmd_pull)

    s = sub.add_parser("new-plugin", help="write a working plugin package")
    s.add_argument("name")
    s.add_argument("--dir", default=".")
    s.set_defaults(fn=cmd_new_plugin)

    s = sub.add_parser("doctor", help="plugins, problems and environment")
    s.set_defaults(fn=cmd_doctor)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and hasattr(args, "overrides") and not any(e.startswith("-") for e in extra):
        args.overrides += extra  # key=value overrides may follow options
    elif extra:
        parser.parse_args(argv)  # reports the unrecognised arguments
    from wamzoo.errors import Interrupted, WamzooError

    try:
        return int(args.fn(args) or 0)
    except Interrupted as exc:
        console.print(escape(str(exc)), highlight=False, soft_wrap=True)
        return 130
    except (WamzooError, FileNotFoundError, FileExistsError) as exc:
        console.print("[bold red]error:[/] " + escape(str(exc)), highlight=False)
        return 2
    except KeyError as exc:  # UnknownNameError
        console.print("[bold red]error:[/] " + escape(str(exc.args[0] if exc.args else exc)), highlight=False)
        return 2


if __name__ == "__main__":
    sys.exit(main())
