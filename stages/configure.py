"""configure: the resolved settings of every (dataset, method) run, one JSON file each.

Usage: python -m stages.configure --out data/configs
Outputs: ``<out>/<dataset>/<method>.json``, what :func:`stages.params.run_params` resolves for
that run (global blocks, the dataset's overrides, the method's overrides; key-sorted, so the
bytes change only when a setting the run reads changes). ``python -m stages.run ... --config
FILE`` trains and evaluates from that file. ``<out>/params.json``: the ``sources``, ``split``
and ``datasets`` blocks, validated and with every default filled in, the params file of the
synthesize, extract and split stages. ``<out>/efficiency.json``: the settings of every run the
efficiency stage measures (AMC and the baselines, not the variants); ``<out>/report.json``: the
(dataset, method) runs in the tables' order and the split seeds. With ``--code FILE`` (the run
stages' code fingerprint, data/code/run.json) every run's file carries that file's SHA-256 as
``code_fingerprint``.

Why: each run stage depends on its own config file instead of declaring params. With params
declared on ~100 run stages, DVC re-parsed params.yaml once per stage on every `dvc repro` and
`dvc status`, and kept each run's params values in dvc.lock (~60 lines per run), which DVC
re-parses and rewrites after every stage it runs. Which runs a params change re-runs is the same:
those whose resolved settings change (a baseline's settings hold only the keys it reads).
The ~23 data stages keep their narrow params keys, read from params.json: DVC reads params once
per stage on every `dvc repro`, and JSON is much cheaper to parse than params.yaml's ~260 lines
of commented YAML (the 27 params reads of a no-op repro of the default: 0.50 s -> 0.15-0.19 s).
Defaults are filled in, so a default changed in the code re-runs exactly the stages that read it.
The run stages reach their code the same way: a code change rewrites data/code/run.json, this
stage re-runs and every run file's ``code_fingerprint`` changes, so each run stage depends on
two files (its settings and its split) instead of three: ~100 fewer deps to hash and lock on
every `dvc repro`. Efficiency and report read their file here instead of declaring params
blocks (~650 fewer lines of dvc.lock, which DVC parses twice per `dvc repro`).
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path
from typing import Any

from amc.data.store import atomic_path
from amc.errors import InputError
from stages._cli import run, stage_parser
from stages.params import CODE_KEY, is_variant, list_runs, load_params, run_params


def run_configs(params: dict[str, Any], code: str | None = None) -> dict[tuple[str, str], str]:
    """``{(dataset, method): JSON text}`` of every run the params define (with ``code``, the
    run code's fingerprint digest, as ``code_fingerprint``)."""
    stamp = {} if code is None else {CODE_KEY: code}
    return {
        (dataset, method): _json({**run_params(params, dataset, method), **stamp})
        for dataset, method in list_runs(params)
    }


def efficiency_config(params: dict[str, Any]) -> str:
    """efficiency.json: ``{"runs": [settings, ...]}`` of AMC and every baseline on every dataset
    (a variant costs what AMC costs), in the tables' order."""
    runs = [run_params(params, dataset, method) for dataset, method in list_runs(params)]
    return _json({"runs": [r for r in runs if not is_variant(r)]})


def report_config(params: dict[str, Any]) -> str:
    """report.json: ``{"runs": [[dataset, method], ...], "seeds": [...]}``."""
    return _json({"runs": [list(r) for r in list_runs(params)], "seeds": params["split"]["seeds"]})


def _json(data: Any) -> str:
    return json.dumps(data, indent=1, sort_keys=True) + "\n"


#: the params blocks the synthesize / extract / split stages declare (through params.json)
DATA_BLOCKS = ("sources", "split", "datasets")


def data_params(params: dict[str, Any]) -> str:
    """params.json: the validated ``sources``, ``split`` and ``datasets`` blocks (key-sorted)."""
    return _json({k: params[k] for k in DATA_BLOCKS})


def code_digest(path: Path) -> str:
    """SHA-256 of a code fingerprint file."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError:
        raise InputError(f"{path}: not found", hint="run `dvc repro code` first") from None


def config_path(folder: Path, dataset: str, method: str) -> Path:
    return folder / dataset / f"{method}.json"


def main(argv: list[str]) -> None:
    parser: argparse.ArgumentParser = stage_parser("configure", __doc__)
    parser.add_argument("--out", type=Path, required=True, help="the folder of config files")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument(
        "--code", type=Path, help="the run stages' code fingerprint (data/code/run.json)"
    )
    args = parser.parse_args(argv)
    params = load_params(args.params)
    configs = run_configs(params, code=code_digest(args.code) if args.code else None)
    with atomic_path(args.out) as tmp:
        tmp.mkdir()
        (tmp / "params.json").write_text(data_params(params))
        (tmp / "efficiency.json").write_text(efficiency_config(params))
        (tmp / "report.json").write_text(report_config(params))
        for (dataset, method), text in configs.items():
            path = config_path(tmp, dataset, method)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)


if __name__ == "__main__":
    run(main)
