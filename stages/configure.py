"""configure: the resolved settings of every (dataset, method) run, one JSON file each.

Usage: python -m stages.configure --out data/configs
Outputs: ``<out>/<dataset>/<method>.json``, what :func:`stages.params.run_params` resolves for
that run (global blocks, the dataset's overrides, the method's overrides; key-sorted, so the
bytes change only when a setting the run reads changes). ``python -m stages.run ... --config
FILE`` trains and evaluates from that file. ``<out>/params.json``: the ``sources``, ``split``
and ``datasets`` blocks, validated and with every default filled in, the params file of the
synthesize, extract and split stages.

Why: each run stage depends on its own config file instead of declaring params. With params
declared on ~100 run stages, DVC re-parsed params.yaml once per stage on every `dvc repro` and
`dvc status`, and kept each run's params values in dvc.lock (~60 lines per run), which DVC
re-parses and rewrites after every stage it runs. Which runs a params change re-runs is the same:
those whose resolved settings change (a baseline's settings hold only the keys it reads).
The ~23 data stages keep their narrow params keys, read from params.json: DVC reads params once
per stage on every `dvc repro`, and JSON is much cheaper to parse than params.yaml's ~260 lines
of commented YAML (the 27 params reads of a no-op repro of the default: 0.50 s -> 0.15-0.19 s).
Defaults are filled in, so a default changed in the code re-runs exactly the stages that read it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from amc.data.store import atomic_path
from stages._cli import run, stage_parser
from stages.params import list_runs, load_params, run_params


def run_configs(params: dict[str, Any]) -> dict[tuple[str, str], str]:
    """``{(dataset, method): JSON text}`` of every run the params define."""
    return {
        (dataset, method): json.dumps(run_params(params, dataset, method), indent=1, sort_keys=True)
        + "\n"
        for dataset, method in list_runs(params)
    }


#: the params blocks the synthesize / extract / split stages declare (through params.json)
DATA_BLOCKS = ("sources", "split", "datasets")


def data_params(params: dict[str, Any]) -> str:
    """params.json: the validated ``sources``, ``split`` and ``datasets`` blocks (key-sorted)."""
    return json.dumps({k: params[k] for k in DATA_BLOCKS}, indent=1, sort_keys=True) + "\n"


def config_path(folder: Path, dataset: str, method: str) -> Path:
    return folder / dataset / f"{method}.json"


def main(argv: list[str]) -> None:
    parser: argparse.ArgumentParser = stage_parser("configure", __doc__)
    parser.add_argument("--out", type=Path, required=True, help="the folder of config files")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = parser.parse_args(argv)
    params = load_params(args.params)
    configs = run_configs(params)
    with atomic_path(args.out) as tmp:
        tmp.mkdir()
        (tmp / "params.json").write_text(data_params(params))
        for (dataset, method), text in configs.items():
            path = config_path(tmp, dataset, method)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)


if __name__ == "__main__":
    run(main)
