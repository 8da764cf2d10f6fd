"`lumbar-rsna pipeline`: the real job in one command on a tiny phantom, end to end and resumable, and its Kaggle dataset names no path of this machine."
import json, subprocess, sys
from pathlib import Path
import pandas as pd
from lumbar_rsna.phantom import make_phantom

def cli(*args, cwd=None):
    return subprocess.run([sys.executable, '-m', 'lumbar_rsna.cli', *map(str, args)], capture_output=True, text=True, cwd=cwd)

def test_pipeline_end_to_end_then_passed_over(tmp_path):
    ph = make_phantom(tmp_path/'ph', 12, seed=1, test_studies=3, progress=False)
    job = ['pipeline', '--data', ph, '--out', tmp_path/'job', '--recipe', 'tiny', '--epochs', 1, '--seed-models', '--device', 'cpu',
           '--jobs', 2]                                     # the seed models in a process of their own
    r = cli(*job)
    assert r.returncode == 0, r.stdout + r.stderr
    steps = [l.split(':')[1].strip() for l in r.stdout.splitlines() if l.startswith('pipeline: ')]
    assert steps == ['preprocess', 'localisers', 'out-of-fold coordinates', 'stage 2', 'seed models', 'calibration', 'cv',
                     'Kaggle dataset'], r.stdout
    assert 'beside stage 1 and 2' in next(l for l in r.stdout.splitlines() if l.startswith('pipeline: seed models')), r.stdout
    assert sorted(p.parent.parent.name for p in (tmp_path/'job'/'runs'/'series').glob('*/fold0/best.pt')) == [
        'axial_t2', 'sagittal_t1', 'sagittal_t2_stir']
    out = tmp_path/'job'
    assert (out/'oof_coordinates.csv').exists() and pd.read_csv(out/'cv.csv').folds.tolist() == ['fold 0', 'all']
    ds = out/'kaggle_dataset'
    assert sorted(p.parent.parent.name for p in (ds/'models'/'localize').glob('*/fold0/best.pt')) == ['axial_t2', 'sagittal_t1', 'sagittal_t2_stir']
    timing = json.loads((ds/'timing.json').read_text())
    assert timing['seconds_per_study'] > 0
    for f in ds.rglob('*'):                                  # nothing published names a path of this machine
        if f.suffix in ('.json', '.csv'):
            text = f.read_text()
            assert str(tmp_path) not in text and str(Path.home()) not in text, f
    assert all(json.loads(c.read_text())['data'] is None for c in (ds/'models').rglob('config.json'))
    r = cli(*job)                                            # again: every step passed over
    assert r.returncode == 0, r.stderr
    assert 'up to date' in r.stdout and 'finished before, passed over' in r.stdout
    assert 'training' not in r.stdout.lower().replace('training studies', '')

def test_full_recipe_without_weights_is_refused(tmp_path):
    ph = make_phantom(tmp_path/'ph', 6, seed=2, test_studies=1, progress=False)
    r = cli('pipeline', '--data', ph, '--out', tmp_path/'job')
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert all(f in r.stderr for f in ('--weights', '--pretrained', '--random-init'))
