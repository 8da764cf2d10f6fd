"End to end on a small phantom: three tiny models → submission, the fallbacks, the Kaggle dataset and notebook run offline."
import json, os, shutil, warnings
from pathlib import Path
import numpy as np, pandas as pd, pytest
from lumbar_rsna.core import SERIES_TYPES, read_sample_submission, read_train, validate_submission, series_label_cols, fit_prior, PRED_COLS, series_slug
from lumbar_rsna.phantom import make_phantom
from lumbar_rsna.train import train
from lumbar_rsna.runs import Models
from lumbar_rsna.predict import predict_seed as predict

@pytest.fixture(scope='module')
def setup(tiny_pipeline):
    "The session's tiny phantom, its seed runs (three series models) and its folder."
    return tiny_pipeline.root, tiny_pipeline.runs/'series', tiny_pipeline.dir

def test_round_trip_exact_rows(setup, tmp_path):
    ph, runs, _ = setup
    sub = predict(ph, runs, out=tmp_path/'s.csv', progress=False)
    written = pd.read_csv(tmp_path/'s.csv')
    sample = pd.read_csv(ph/'sample_submission.csv')
    assert list(written.columns) == list(sample.columns)
    assert written.row_id.tolist() == sample.row_id.tolist()
    v = written[list(PRED_COLS)].to_numpy()
    assert np.isfinite(v).all() and (v >= 0).all() and np.allclose(v.sum(1), 1, atol=1e-6)
    prior = fit_prior(read_train(ph/'train.csv'))
    assert not np.allclose(v, prior.loc[written.row_id.str.split('_', n=1).str[1]].to_numpy())   # the models answered

def test_missing_series_type_gets_prior(setup, tmp_path):
    ph, runs, d = setup
    models = Models([r for r in Models.of(runs).runs if r.series_type != 'Axial T2'])
    with pytest.warns(UserWarning, match='no model for'):
        sub = predict(ph, models, progress=False).set_index('row_id')
    prior = fit_prior(read_train(ph/'train.csv'))
    sub_rows = [r for r in sub.index if 'subarticular' in r]
    assert np.allclose(sub.loc[sub_rows].to_numpy(), prior.loc[[r.split('_', 1)[1] for r in sub_rows]].to_numpy())

def test_unreadable_study_gets_prior_and_warning(setup, tmp_path):
    ph, runs, _ = setup
    broken = tmp_path/'ph'; shutil.copytree(ph, broken)
    study = sorted((broken/'test_images').iterdir())[0]
    for f in study.rglob('*.dcm'): f.write_bytes(b'not a dicom file')
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always'); sub = predict(broken, runs, progress=False)
    assert any(f'study {study.name}' in str(x.message) for x in w)
    validate_submission(sub, pd.read_csv(broken/'test_series_descriptions.csv').study_id.unique())
    prior = fit_prior(read_train(ph/'train.csv'))
    mine = sub[sub.row_id.str.startswith(study.name + '_')].set_index('row_id')
    assert np.allclose(mine.to_numpy(), prior.loc[[r.split('_', 1)[1] for r in mine.index]].to_numpy())

def test_empty_test_set(setup, tmp_path):
    ph, runs, _ = setup
    empty = tmp_path/'empty'; empty.mkdir()
    shutil.copy(ph/'train.csv', empty/'train.csv')
    (empty/'test_series_descriptions.csv').write_text('study_id,series_id,series_description\n')
    (empty/'sample_submission.csv').write_text('row_id,normal_mild,moderate,severe\n')
    sub = predict(empty, runs, out=empty/'s.csv', progress=False)
    assert len(sub) == 0 and (empty/'s.csv').read_text().strip() == 'row_id,normal_mild,moderate,severe'

def test_kaggle_notebook_runs_offline(setup, tmp_path, monkeypatch):
    import nbformat
    from nbclient import NotebookClient
    from lumbar_rsna.kaggle import build_kaggle_dataset, kaggle_notebook, DATASET_SLUG
    ph, runs, d = setup
    both = d/'runs'                                                     # the seed models and both stages on three folds
    inp, work = tmp_path/'input', tmp_path/'working'; work.mkdir()
    (inp).mkdir(); os.symlink(ph, inp/'rsna-2024-lumbar-spine-degenerative-classification')
    build_kaggle_dataset(both, inp/DATASET_SLUG, ph)
    assert (inp/DATASET_SLUG/'models'/'localize'/'axial_t2'/'fold2'/'best.pt').exists() and (inp/DATASET_SLUG/'models'/'grade'/'fold1'/'best.pt').exists()
    assert json.loads((inp/DATASET_SLUG/'dataset-metadata.json').read_text())['id'].endswith(DATASET_SLUG)
    nb = kaggle_notebook()
    for k, v in {'LUMBAR_RSNA_KAGGLE_INPUT': str(inp), 'LUMBAR_RSNA_KAGGLE_WORKING': str(work), 'PIP_NO_INDEX': '1'}.items(): monkeypatch.setenv(k, v)
    NotebookClient(nb, timeout=600, kernel_name='python3', resources={'metadata': {'path': str(tmp_path)}}).execute()
    out = ''.join(o.get('text', '') for c in nb.cells if c.cell_type == 'code' for o in c.outputs)
    assert str(work/'site-packages') in out                     # the package came from the wheel in the dataset
    assert 'libraries: ok' in out and 'GiB used, removed' in out and not list(Path('/tmp').glob('lumbar_rsna_cache_*/*'))
    local = [str(ph), str(d), str(Path.home())]
    for f in (inp/DATASET_SLUG).rglob('*'):
        if f.suffix in ('.json', '.csv', '.txt'):
            assert not any(p in f.read_text() for p in local), f       # nothing published names a path of this machine
    assert 'pipeline: two-stage' in out
    sub = read_sample_submission(work/'submission.csv')
    assert sub.row_id.tolist() == pd.read_csv(ph/'sample_submission.csv').row_id.tolist()
