"""Synthetic ADNI-like cohort written in ADNI's real raw formats.

What is written under ``out_dir`` (all seeded, deterministic, byte-identical for the same seed):

- ``mri/<PTID>/<PTID>_bl_T1.nii.gz``: one T1 volume per subject (int16 NIfTI), built from the MNI152
  template and grey/white-matter probability maps that nilearn ships (offline, inside the
  package; skull-stripped like the preprocessed images the paper used). The template is
  resampled once to a working grid of ``volume_shape`` voxels covering a 192 mm cube; per subject
  it gets class-dependent atrophy (medial-temporal "hippocampal" grey matter and cortical grey
  matter pulled towards CSF intensity, ventricles expanded by a radial warp), a random smooth
  affine + elastic deformation, a multiplicative bias field, a scanner gain, magnitude noise
  and, for low-quality scans, blur or extra noise. Scanners differ: voxel size (coarse
  ``192/shape`` mm, fine ``x 0.8`` or anisotropic) and on-disk orientation (RAS, LAS, LPS, or
  permuted axes like a sagittal acquisition), always with a correct affine.
- ``DXSUM_PDXCONV.csv``: RID, PTID, PHASE, VISCODE, VISCODE2, EXAMDATE, DIAGNOSIS (1=CN, 2=MCI,
  3=AD), plus DXCURREN (ADNI1 rows) and DXCHANGE (ADNIGO/2 rows) as the real merged file has;
  several visits per subject, some without any diagnosis, some ADNI2 rows with DXCHANGE only.
- ``UPENNBIOMK.csv``: RID, VISCODE, BATCH, RUNDATE, CSF ABETA42 / TAU / PTAU (Elecsys-style, values
  out of the assay range written ``<200`` / ``>1700`` etc.) and plasma markers, several visits,
  realistic missingness.
- ``APOERES.csv``: RID, APGEN1, APGEN2 (alleles 2/3/4), for subjects with biospecimens.
- ``ADNIMERGE.csv``: RID, PTID, VISCODE, EXAMDATE, DX_bl, DX, AGE, PTGENDER, PTEDUCAT, PTETHCAT,
  PTRACCAT, PTMARRY, APOE4, MMSE, CDRSB, ADAS11, ADAS13, FAQ, MOCA, RAVLT_immediate, ...
- ``genotypes.raw``: PLINK ``--recode A`` dosages (``FID IID PAT MAT SEX PHENOTYPE rs..._A ...``,
  ``NA`` for missing calls), IID = PTID; APOE SNPs rs429358_C / rs7412_T agree with APOERES and a
  few GWAS-hit variants carry class signal.
- ``quality.csv``: patient_id, modality, quality in [0, 1], corruption (``none``, ``missing`` or the
  degradation applied). Ground truth for analysis only; training never reads it.
- ``README.txt``: says the data are synthetic.

Class signal: one latent severity per subject (class mean + shared + modality-specific noise);
each modality observes it mixed with noise according to its per-subject quality, so each modality
alone is moderately predictive (roughly 50-70 % 3-class accuracy) and fusion helps. Missing
modalities follow ADNI: some subjects lack MRI, biospecimens or genotypes, and a few appear only in
the diagnosis table.
"""

from amc.synthetic.adni.cohort import generate_adni_cohort
from amc.synthetic.adni.mri import FOV_MM, load_mni152
from amc.synthetic.adni.subjects import CLASS_NAMES, CLASS_PROBS, MODALITIES

__all__ = [
    "CLASS_NAMES",
    "CLASS_PROBS",
    "FOV_MM",
    "MODALITIES",
    "generate_adni_cohort",
    "load_mni152",
]
