"""Learning, guarded, and its control.

A small model trained on the phantom beats the weighted prior on held-out studies (and stays above the phantom's oracle,
the limit no model beats in expectation). If the chain from DICOM to targets mismatched images and labels anywhere (a
left/right swap, a level off by one, slices out of order), no model could beat the prior. The control trains the same
model on the same images with the labels shuffled between studies: if it beat the prior too, something other than the
drawn findings (a position, an intensity, a file order) would be carrying the labels."""
import os, shutil
import numpy as np, pandas as pd, pytest
from lumbar_rsna.core import LABEL_COLS, PRED_COLS, fit_prior, series_label_cols, row_id, read_train, read_sample_submission
from lumbar_rsna.data import split_by_fold
from lumbar_rsna.metrics import score
from lumbar_rsna.phantom import make_phantom
from lumbar_rsna.series import series_data
from lumbar_rsna.train import recipe
from lumbar_rsna.train import train

SERIES = 'Sagittal T2/STIR'

def validation_scores(cfg, root) -> dict:
    "The weighted prior (fitted on the training folds) and the phantom's oracle on the run's validation studies."
    labels, items, _ = series_data(cfg, False)
    _, va = split_by_fold(items, labels, cfg.fold, cfg.n_folds, cfg.seed)
    cols, vs = series_label_cols(cfg.series_type), va.study_id.unique()
    sol = labels[labels.study_id.isin(vs)].copy(); sol[[c for c in LABEL_COLS if c not in cols]] = np.nan
    prior = fit_prior(labels[~labels.study_id.isin(vs)])
    sub = pd.DataFrame([(row_id(s, c), *prior.loc[c]) for s in vs for c in cols], columns=['row_id', *PRED_COLS])
    oracle = read_sample_submission(root/'phantom_train_oracle.csv')
    oracle = oracle[oracle.row_id.isin(sub.row_id)].reset_index(drop=True)
    return dict(prior=score(sol, sub)[0], oracle=score(sol, oracle)[0])

@pytest.fixture(scope='module')
def phantom(tmp_path_factory):
    d = tmp_path_factory.mktemp('learn')
    return make_phantom(d/'ph', 240, seed=1, test_studies=0, progress=False), d

def config(root, d, **kw):
    "The demo's CPU setting (a tiny backbone from random weights at 96 px, patience 12), capped at 20 epochs."
    return recipe('series', 'demo', series_type=SERIES, data=str(root), cache=str(d/'cache'), epochs=20, **kw)

def test_beats_the_prior(phantom):
    root, d = phantom
    cfg = config(root, d)
    res, ref = train(cfg, d/'run', progress=False), validation_scores(cfg, root)
    print(f'{SERIES}: model {res["val_score"]:.4f}, weighted prior {ref["prior"]:.4f}, oracle {ref["oracle"]:.4f}; '
          f'gap closed {(ref["prior"] - res["val_score"]) / (ref["prior"] - ref["oracle"]):.1%}')
    assert ref['oracle'] < res['val_score'] < ref['prior'] - 0.03

def test_shuffled_labels_do_not(phantom):
    root, d = phantom
    shuffled = d/'shuffled'; shuffled.mkdir()
    for f in root.iterdir():
        if f.name != 'train.csv': os.symlink(f, shuffled/f.name)
    labels = read_train(root/'train.csv')
    perm = np.random.default_rng(0).permutation(len(labels))
    labels[list(LABEL_COLS)] = labels[list(LABEL_COLS)].to_numpy()[perm]          # each study gets another study's grades
    labels.to_csv(shuffled/'train.csv', index=False)
    cfg = config(shuffled, d)                                                     # the same cache: the same images
    res, ref = train(cfg, d/'run_shuffled', progress=False), validation_scores(cfg, shuffled)
    print(f'{SERIES}, shuffled labels: model {res["val_score"]:.4f}, weighted prior {ref["prior"]:.4f}')
    assert res['val_score'] > ref['prior'] - 0.01
