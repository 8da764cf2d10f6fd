import os
from pathlib import Path
import pytest

TYPES = ('Sagittal T2/STIR', 'Sagittal T1', 'Axial T2')

def random_localizers(seed: int = 0) -> dict:
    "A localiser of each series type with random weights (eval mode), as `localize` takes them: for checks that hold whatever the weights."
    import torch
    from lumbar_rsna.train import recipe
    from lumbar_rsna.runs import untrained
    torch.manual_seed(seed)
    return {st: [untrained(recipe('localize', 'tiny', series_type=st))] for st in TYPES}

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT.parent/'shared'/'data'/'rsna2024_real'

@pytest.fixture
def real_csvs():
    "The real competition CSVs beside the checkout; the test is skipped when they are absent."
    if not (REAL/'train.csv').exists(): pytest.skip(f'real competition CSVs not found at {REAL}')
    return REAL

@pytest.fixture(scope='session')
def phantom_v4_transitions(tmp_path_factory):
    "A tiny version 4 phantom (seed 2, 14 + 2 studies) whose studies include a sacralised L5 and a lumbarised S1."
    from lumbar_rsna.phantom import make_phantom
    return make_phantom(tmp_path_factory.mktemp('v4')/'v4', 14, seed=2, test_studies=2, size='tiny', progress=False,
                        workers=1, version=4)

@pytest.fixture(scope='session')
def tiny_pipeline(tmp_path_factory):
    """One tiny phantom and every kind of run on it, trained once per test session (about 15 s): the seed's three series
    models (fold 0, calibrated) in runs/series/, the three localisers on all three folds in runs/localize/<type>/fold<k>/,
    stage 1's out-of-fold coordinates of every training study (oof.csv), and stage 2 on all three folds, validated at
    those coordinates and calibrated, in runs/grade/fold<k>/. Tests copy what they change."""
    import warnings
    from types import SimpleNamespace
    from lumbar_rsna.core import SERIES_TYPES, series_slug
    from lumbar_rsna.phantom import make_phantom
    from lumbar_rsna.train import train, train_folds, recipe
    from lumbar_rsna.runs import calibrate_run
    from lumbar_rsna.localize import localize
    d = tmp_path_factory.mktemp('pipeline')
    ph = make_phantom(d/'ph', 12, seed=0, test_studies=4, progress=False)
    runs, cache, cache64 = d/'runs', d/'cache', d/'cache64'
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        for st in SERIES_TYPES:
            seed = runs/'series'/series_slug(st)
            train(recipe('series', 'tiny', series_type=st, data=str(ph), cache=str(cache)), seed, progress=False)
            calibrate_run(seed)
            loc = recipe('localize', 'tiny', series_type=st, data=str(ph), cache=str(cache64), epochs=1)
            train_folds(loc, runs/'localize'/series_slug(st), 'all', progress=False)
        localize(ph, runs, d/'oof.csv', 'train', cache64, progress=False)
        grade = recipe('grade', 'tiny', data=str(ph), cache=str(cache64), coordinates=str(d/'oof.csv'), epochs=1)
        train_folds(grade, runs/'grade', 'all', progress=False)
        for k in range(3): calibrate_run(runs/'grade'/f'fold{k}')
    return SimpleNamespace(root=ph, dir=d, runs=runs, cache=cache, cache64=cache64, oof=d/'oof.csv')
