"""synthesize@<source>: write a synthetic cohort in the source's real raw format.

Usage: python -m stages.synthesize <source>   (output: data/synthetic/<source>/)
"""

from __future__ import annotations

import importlib
from pathlib import Path

from amc.data.store import atomic_path
from amc.errors import InputError
from stages._cli import run
from stages.params import load_params

GENERATORS = {
    "mimic": "amc.synthetic.mimic:generate_mimic_cohort",
    "tcga": "amc.synthetic.tcga:generate_tcga_cohort",
    "adni": "amc.synthetic.adni:generate_adni_cohort",
}


def main(argv: list[str]) -> None:
    if len(argv) != 1 or argv[0] not in GENERATORS:
        raise InputError(f"usage: python -m stages.synthesize {{{'|'.join(GENERATORS)}}}")
    source = argv[0]
    params = load_params()
    options = dict(params["sources"][source].get("synthetic") or {})
    module, func = GENERATORS[source].split(":")
    generate = getattr(importlib.import_module(module), func)
    out = Path("data/synthetic") / source
    with atomic_path(out) as tmp:
        generate(tmp, **options)


if __name__ == "__main__":
    run(main)
