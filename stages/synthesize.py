"""synthesize@<source>: write a synthetic cohort in the source's real raw format.

Usage: python -m stages.synthesize <source> [--out data/synthetic/<source>]
Params: sources.<source>.synthetic (cohort size, seed).
"""

from __future__ import annotations

import importlib
import logging
from pathlib import Path

from amc.data.store import atomic_path
from stages._cli import run, stage_parser
from stages.params import load_params

log = logging.getLogger("stages.synthesize")

GENERATORS = {
    "mimic": "amc.synthetic.mimic:generate_mimic_cohort",
    "tcga": "amc.synthetic.tcga:generate_tcga_cohort",
    "adni": "amc.synthetic.adni:generate_adni_cohort",
}


def main(argv: list[str]) -> None:
    parser = stage_parser("synthesize", __doc__)
    parser.add_argument("source", choices=sorted(GENERATORS), help="which source to synthesize")
    parser.add_argument("--out", type=Path, help="output folder (default data/synthetic/<source>)")
    args = parser.parse_args(argv)
    source = args.source
    params = load_params()
    options = dict(params["sources"][source].get("synthetic") or {})
    module, func = GENERATORS[source].split(":")
    generate = getattr(importlib.import_module(module), func)
    out = args.out or Path("data/synthetic") / source
    with atomic_path(out) as tmp:
        generate(tmp, **options)
    log.info("wrote %s", out)


if __name__ == "__main__":
    run(main)
