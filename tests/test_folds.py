"""Folds, out-of-fold coordinates, ensembles and the CV score, on the session's tiny pipeline (three folds of each stage).

Out of fold means: a study is only ever predicted by runs whose validation fold held it."""
import shutil, warnings
import numpy as np, pandas as pd, pytest, torch
from lumbar_rsna.core import PRED_COLS, read_coordinates, read_train
from lumbar_rsna.data import dataset_items
from lumbar_rsna.train import TrainConfig
from lumbar_rsna.runs import Models, held_out, resolve_device
from lumbar_rsna.localize import localize
from lumbar_rsna.predict import predict_two_stage, predict_submission
from lumbar_rsna.cli import main

def values(sub): return sub[list(PRED_COLS)].to_numpy()

def test_folds_oof_ensemble_and_cv(tiny_pipeline, tmp_path, capsys):
    fx = tiny_pipeline
    labels = read_train(fx.root/'train.csv')
    ms = Models.of(fx.runs)
    for (task, st), runs in ms.kinds().items():                          # every stage trained on all three folds
        assert sorted(r.fold for r in runs) == ([0] if task == 'series' else [0, 1, 2]), (task, st)
    # out-of-fold coordinates for every training study that has the series, each by the runs that held it out
    oof = read_coordinates(fx.oof)
    items = dataset_items(fx.cache64, 'train', size=64)
    for cond, st in (('Spinal Canal Stenosis', 'Sagittal T2/STIR'), ('Left Neural Foraminal Narrowing', 'Sagittal T1')):
        has = set(items[items.series_description == st].study_id) & set(labels.study_id)
        assert set(oof[oof.condition == cond].study_id) == has, cond
    # fold 0's runs alone localise only their own fold, and say so
    fold0 = Models([r for r in ms.runs if r.task == 'localize' and r.fold == 0])
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always')
        p0 = localize(fx.root, fold0, split='train', cache_dir=fx.cache64, progress=False)
    assert set(p0.study_id) == held_out(fold0.runs[0].cfg, labels) & set(items.study_id)
    assert any('seen in training by every localiser' in str(x.message) for x in w)
    a = p0.merge(oof, on=['study_id', 'condition', 'level'], suffixes=('', '_all'))
    assert len(a) == len(p0) and np.allclose(a[['x', 'y']].to_numpy(), a[['x_all', 'y_all']].to_numpy())  # the same runs, the same points
    # the ensemble of the three folds predicts otherwise than fold 0 alone
    one = Models([r for r in ms.runs if r.fold == 0])
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        ens, _ = predict_two_stage(fx.root, ms, cache_dir=fx.cache64, progress=False)
        alone, _ = predict_two_stage(fx.root, one, cache_dir=fx.cache64, progress=False)
    assert ens.row_id.tolist() == alone.row_id.tolist()
    assert np.abs(values(ens) - values(alone)).max() > 1e-3
    # the CV score of the whole pipeline, out of fold on all twelve training studies
    rc = main(['cv', '--data', str(fx.root), '--models', str(fx.runs), '--coordinates', str(fx.oof),
               '--cache', str(fx.cache64), '--out', str(tmp_path/'cv.csv'), '--device', 'cpu'])
    out = capsys.readouterr().out
    assert rc == 0 and 'CV score' in out and 'on 12 studies out of fold' in out, out
    table = pd.read_csv(tmp_path/'cv.csv').set_index('folds')
    assert table.index.tolist() == ['fold 0', 'fold 1', 'fold 2', 'all']
    assert table.studies.drop('all').sum() == table.studies['all'] == 12
    assert np.isfinite(table[['score', 'prior', 'oracle', 'gap_closed']].to_numpy()).all()
    print(table.round(4).to_string())

def test_a_study_no_run_held_out_is_not_scored(tiny_pipeline, capsys):
    "Without fold 2's grade run, fold 2's studies are counted and left out of the CV score, never scored in fold."
    fx = tiny_pipeline
    ms = Models([r for r in Models.of(fx.runs).runs if not (r.task == 'grade' and r.fold == 2)])
    from lumbar_rsna.predict import cross_validate
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always')
        table = cross_validate(fx.root, ms, fx.oof, cache_dir=fx.cache64, progress=False)
    assert table.index.tolist() == ['fold 0', 'fold 1', 'all'] and table.studies['all'] == 8
    assert any('4 of 12 training studies were held out by no two-stage run' in str(x.message) for x in w)

def test_one_prediction_reads_each_run_once(tiny_pipeline, monkeypatch):
    fx = tiny_pipeline
    read, load = [], TrainConfig.load
    monkeypatch.setattr(TrainConfig, 'load', staticmethod(lambda p: read.append(str(p)) or load(p)))
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        predict_submission(fx.root, fx.runs, cache_dir=fx.cache64, progress=False)
    assert len(read) == len(set(read)) == 3 + 3 * 3 + 3             # seed models, localisers and graders: each config once

def test_run_weights_and_the_device(tiny_pipeline, tmp_path, capsys):
    "Weights per run change the ensemble (a zero weight drops a run); --device cuda without a GPU is one clear error."
    fx = tiny_pipeline
    w = tmp_path/'w.json'
    w.write_text('{"grade/fold1": 0, "grade/fold2": 0}')
    common = ['--data', str(fx.root), '--models', str(fx.runs), '--cache', str(fx.cache64)]
    assert main(['predict', *common, '--out', str(tmp_path/'w.csv'), '--run-weights', str(w)]) == 0
    assert main(['predict', *common, '--out', str(tmp_path/'e.csv')]) == 0
    out = capsys.readouterr().out
    assert 'method: two-stage (localiser and grade runs found)' in out
    assert not np.allclose(values(pd.read_csv(tmp_path/'w.csv')), values(pd.read_csv(tmp_path/'e.csv')))
    w.write_text('{"grade/fold7": 1}')
    assert main(['predict', *common, '--out', str(tmp_path/'x.csv'), '--run-weights', str(w)]) == 2
    assert "'grade/fold7': no such run" in capsys.readouterr().err
    assert resolve_device('auto').type == ('cuda' if torch.cuda.is_available() else 'cpu')
    if not torch.cuda.is_available():
        assert main(['predict', *common, '--out', str(tmp_path/'x.csv'), '--device', 'cuda']) == 2
        assert 'no CUDA device here' in capsys.readouterr().err

def test_calibrate_passes_over_localisers_and_goes_on(tiny_pipeline, tmp_path, capsys):
    fx = tiny_pipeline
    runs = tmp_path/'runs'
    shutil.copytree(fx.runs, runs, ignore=shutil.ignore_patterns('series'))
    (runs/'grade'/'fold0'/'best.pt').write_bytes(b'junk')
    rc = main(['calibrate', str(runs), '--device', 'cpu'])
    o = capsys.readouterr()
    assert rc == 2 and o.out.count('has no temperature to fit: passed over') == 9
    assert o.out.count('temperature ') == 9 + 2 and 'fold0/best.pt: not a checkpoint' in o.err
