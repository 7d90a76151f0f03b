"""The study's command line, ``python -m multilevel.study``, and the
provenance it writes next to the results."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from multilevel import provenance as _provenance
from multilevel import validate
from multilevel.errors import InputError
from multilevel.fit import ESS_BULK_MIN, R_HAT_MAX
from multilevel.study.config import (
    ENGINES,
    PARAMETRISATIONS,
    STATUSES,
    StudyConfig,
)
from multilevel.study.replicates import _long_frame, reused_rows, run_study
from multilevel.study.summary import summarise


def provenance(
    config: StudyConfig, argv: Sequence[str], wall_seconds: float, workers: int,
) -> dict[str, Any]:
    """What produced a study's files: command, seeds, versions, machine."""
    prov = _provenance.record("multilevel.study", argv)
    prov.update(
        master_seed=config.seed,
        seed_scheme=(
            "replicate i of the design with J cafes: "
            "SeedSequence(master_seed, spawn_key=(J, i)).spawn(2) -> "
            "(data seed, sampler seed), each generate_state(1)[0]"
        ),
        config={k: v for k, v in asdict(config).items() if k != "extra"},
        pymc_thresholds={
            "r_hat_max_below": R_HAT_MAX, "ess_bulk_min_at_least": ESS_BULK_MIN,
            "divergences": 0,
        },
        wall_seconds=round(wall_seconds, 1),
    )
    prov["machine"]["workers"] = workers
    return prov


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m multilevel.study",
        description=(
            "Simulation study of the cafe model: bias, RMSE and interval "
            "coverage of lme4, REML-from-the-equations and PyMC."
        ),
    )
    p.add_argument("--replicates", type=int, default=200,
                   help="replicates of the main design (default 200)")
    p.add_argument("--cafes", type=int, default=20,
                   help="cafes in the main design (default 20)")
    p.add_argument("--replicates-small", type=int, default=50,
                   help="replicates of each other design (default 50)")
    p.add_argument("--cafes-small", type=int, nargs="*", default=[5, 10, 50],
                   help="cafes in the other designs (default 5 10 50)")
    p.add_argument("--visits", type=int, default=10,
                   help="visits per cafe (default 10)")
    p.add_argument("--engines", nargs="+", default=list(ENGINES),
                   help=f"engines to run (default: {' '.join(ENGINES)})")
    p.add_argument("--draws", type=int, default=StudyConfig.draws,
                   help=("PyMC draws per chain after tuning (default "
                         f"{StudyConfig.draws}, as the book's fits)"))
    p.add_argument("--tune", type=int, default=StudyConfig.tune,
                   help=f"PyMC tuning steps per chain (default {StudyConfig.tune})")
    p.add_argument("--chains", type=int, default=StudyConfig.chains,
                   help=f"PyMC chains (default {StudyConfig.chains})")
    p.add_argument("--target-accept", type=float,
                   default=StudyConfig.target_accept,
                   help=("NUTS's target acceptance rate (default "
                         f"{StudyConfig.target_accept})"))
    p.add_argument("--parametrisation", choices=PARAMETRISATIONS,
                   default=None,
                   help=("PyMC's form of the cafe effects: centered, "
                         "non-centered, or auto (chosen per replicate from "
                         "how well the REML fit says each cafe is informed; "
                         f"default {StudyConfig.parametrisation})"))
    p.add_argument("--reml-intervals", choices=["profile", "none"],
                   default="profile",
                   help=("profile intervals of fit_reml's variance components "
                         "(default), or none (estimates only; faster)"))
    p.add_argument("--non-centered", action="store_true",
                   help="the same as --parametrisation non-centered")
    p.add_argument("--replicate-ids", type=int, nargs="+", default=None,
                   help="run only these replicate numbers of every design")
    p.add_argument("--workers", type=int, default=2,
                   help=("worker processes (default 2); with --scheduler, "
                         "how many workers the cluster has"))
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help=("run the replicates on the Dask cluster whose "
                         "scheduler is at ADDRESS (e.g. tcp://10.0.0.5:8786; "
                         "needs the package distributed, and multilevel "
                         "installed on every worker)"))
    p.add_argument("--seed", type=int, required=True, help="master seed")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--quick", action="store_true",
                   help=("a tiny study for tests: 2 replicates at 20 cafes and "
                         "at 5, PyMC with 2 chains x 100 draws after 100 tuning"))
    p.add_argument("--reuse-from", type=Path, default=None, metavar="FOLDER",
                   help=("take the rows of --reuse-engines from the study "
                         "saved in FOLDER (same seed and design) instead of "
                         "fitting them again"))
    p.add_argument("--reuse-engines", nargs="+", default=[],
                   help="engines whose rows --reuse-from provides")
    p.add_argument("--no-progress", action="store_true")
    return p


def config_from_args(args: argparse.Namespace) -> StudyConfig:
    """The StudyConfig a command line asks for (``--quick`` overrides counts)."""
    if args.quick:
        args.replicates, args.replicates_small = 2, 2
        args.cafes_small = [5]
        args.draws, args.tune, args.chains = 100, 100, 2
    designs = [(args.cafes, args.replicates)]
    designs += [(j, args.replicates_small) for j in args.cafes_small]
    designs.sort()
    ids = None if args.replicate_ids is None else tuple(args.replicate_ids)
    parametrisation = args.parametrisation
    if args.non_centered:
        if parametrisation not in (None, "non-centered"):
            raise InputError(
                f"--non-centered contradicts --parametrisation "
                f"{parametrisation}; give one of them."
            )
        parametrisation = "non-centered"
    if parametrisation is None:
        parametrisation = StudyConfig.parametrisation
    return StudyConfig(
        designs=tuple(designs), seed=args.seed, engines=tuple(args.engines),
        n_visits=args.visits, draws=args.draws, tune=args.tune,
        chains=args.chains, parametrisation=parametrisation,
        target_accept=args.target_accept,
        reml_intervals=args.reml_intervals,
        replicate_ids=ids,
    )


def main(argv: Iterable[str] | None = None) -> int:
    """Run the study from the command line; write the three output files."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    try:
        config = config_from_args(args)
        validate.whole_number("workers", args.workers, 1)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if bool(args.reuse_engines) != (args.reuse_from is not None):
        print("error: --reuse-from and --reuse-engines go together: name the "
              "folder and the engines whose rows it provides.", file=sys.stderr)
        return 2
    reused, reuse_record = None, None
    if args.reuse_from is not None:
        try:
            reused, reuse_record = reused_rows(
                config, args.reuse_from, tuple(args.reuse_engines))
        except InputError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    client = None
    if args.scheduler is not None:
        try:
            from distributed import Client
        except ImportError:
            print("error: --scheduler needs Dask's distributed package: "
                  "pip install distributed", file=sys.stderr)
            return 2
        client = Client(args.scheduler)
    # the code the workers import is the checkout's as the run starts
    started = _provenance.record("multilevel.study", argv)
    t0 = time.perf_counter()
    try:
        long = run_study(
            config, workers=args.workers, progress=not args.no_progress,
            checkpoint=out / "replicates.partial.csv",
            executor=None if client is None else client.get_executor(),
        )
    finally:
        if client is not None:
            client.close()
    wall = time.perf_counter() - t0
    if reused is not None:
        long = _long_frame(
            [*long.to_dict("records"), *reused.to_dict("records")])
    summary = summarise(long)
    long.to_csv(out / "replicates.csv", index=False)
    summary.to_csv(out / "summary.csv", index=False)
    prov = provenance(config, argv, wall, args.workers)
    if prov["git"] != started["git"]:  # the checkout changed during the run
        prov["git_at_end"] = prov["git"]
    prov["date_finished"] = prov["date"]
    prov["git"], prov["date"] = started["git"], started["date"]
    prov["machine"]["scheduler"] = args.scheduler  # None: this machine
    prov["reused"] = reuse_record  # None: every engine was run here
    prov["counts"] = {
        "rows": len(long),
        "status": {s: int((long["status"] == s).sum()) for s in STATUSES},
    }
    (out / "provenance.json").write_text(json.dumps(prov, indent=2) + "\n")
    (out / "replicates.partial.csv").unlink(missing_ok=True)
    print(
        f"wrote {len(long)} rows for {len(config.tasks())} replicates to "
        f"{out} in {wall:.0f} s"
    )
    return 0
