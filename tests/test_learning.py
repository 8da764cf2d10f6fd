"""Learning, guarded: a small model trained on the phantom beats the weighted prior on held-out studies.

If the chain from DICOM to targets mismatched images and labels anywhere (a left/right swap, a level off by one, slices
out of order), no model could beat the prior and this test would fail."""
import numpy as np, pandas as pd, pytest
from lumbar_rsna.core import LABEL_COLS, PRED_COLS, fit_prior, series_label_cols, row_id
from lumbar_rsna.data import split_by_fold
from lumbar_rsna.metrics import score
from lumbar_rsna.phantom import make_phantom
from lumbar_rsna.series import recipe, series_data
from lumbar_rsna.train import train

def prior_score(cfg):
    "The weighted prior's score on the run's validation studies, fitted on its training studies."
    labels, items, _ = series_data(cfg, False)
    _, va = split_by_fold(items, labels, cfg.fold, cfg.n_folds, cfg.seed)
    prior, cols, vs = fit_prior(labels[~labels.study_id.isin(va.study_id)]), series_label_cols(cfg.series_type), va.study_id.unique()
    sub = pd.DataFrame([(row_id(s, c), *prior.loc[c]) for s in vs for c in cols], columns=['row_id', *PRED_COLS])
    sol = labels[labels.study_id.isin(vs)].copy(); sol[[c for c in LABEL_COLS if c not in cols]] = np.nan
    return score(sol, sub)[0]

@pytest.mark.parametrize('series_type', ['Sagittal T1'])
def test_beats_the_prior(tmp_path_factory, series_type):
    d = tmp_path_factory.mktemp('learn')
    ph = make_phantom(d/'ph', 120, seed=1, test_studies=0, progress=False)
    cfg = recipe('tiny', series_type=series_type, data=str(ph), cache=str(d/'cache'), image_size=64, cache_size=64, slices=5, epochs=10,
                 batch_size=8, n_folds=4, patience=3)
    res = train(cfg, d/'run', progress=False)
    base = prior_score(cfg)
    print(f'{series_type}: model {res["val_score"]:.4f} vs weighted prior {base:.4f}')
    assert res['val_score'] < base - 0.03
