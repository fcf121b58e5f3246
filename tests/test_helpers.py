"""tests/helpers.py pieces that CI's pipeline checks also use."""

from __future__ import annotations

from tests.helpers import stages_ran

# the shape of a `dvc exp run` log: stages of the root dvc.yaml and of pipelines/*/dvc.yaml,
# skipped stages, and commands that mention a stage name
LOG = """\
Stage 'synthesize@tcga' didn't change, skipping
Running stage 'configure':
> python -m stages.configure --out data/configs --code data/code/run.json
Running stage 'pipelines/amc/dvc.yaml:run@tcga-ucec':
> python -m stages.run tcga-ucec amc --config data/configs/tcga-ucec/amc.json
05:15:22 stages.train: tcga-ucec amc: 5 seed(s) on 2 worker(s) x 1 thread(s)
Running stage 'pipelines/baselines/dvc.yaml:run-baseline@adni-late':
Updating lock file 'pipelines/amc/dvc.yaml.lock'
Running stage 'extract@tcga-wsi':
"""


def test_stages_ran_names_run_stages_without_their_dvc_yaml():
    assert stages_ran(LOG) == {
        "configure",
        "run@tcga-ucec",
        "run-baseline@adni-late",
        "extract@tcga-wsi",
    }
    assert stages_ran("Stage 'report' didn't change, skipping\n") == set()
