"""The two-stage pipeline beats the seed method, guarded on held-out phantom studies in a small setting.

On 100 studies, the foramina: the seed's Sagittal T1 model (the demo recipe, 12 epochs) against stage 1's Sagittal T1
localiser (8 epochs) and stage 2 (4 epochs), validated on the localiser's out-of-fold coordinates. Both predict the
20 test studies; every other row gets the prior in both, so the foraminal term compares the two methods alone."""
import warnings
import pytest
from lumbar_rsna.core import read_train
from lumbar_rsna.phantom import make_phantom
from lumbar_rsna.localize import localize
from lumbar_rsna.runs import calibrate_run
from lumbar_rsna.predict import predict_seed, predict_two_stage
from lumbar_rsna.metrics import score
from lumbar_rsna.train import train, recipe

def test_two_stage_beats_the_seed_models(tmp_path):
    root = make_phantom(tmp_path/'ph', 100, seed=7, test_studies=20, progress=False)
    cache, runs = str(tmp_path/'cache'), tmp_path/'runs'
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        train(recipe('series', 'demo', series_type='Sagittal T1', data=str(root), cache=cache, epochs=12), runs/'seed'/'sagittal_t1', progress=False)
        train(recipe('localize', 'demo', series_type='Sagittal T1', data=str(root), cache=cache, epochs=8), runs/'two'/'localize'/'sagittal_t1', progress=False)
        localize(root, runs/'two'/'localize', tmp_path/'oof.csv', 'train', cache, progress=False)
        train(recipe('grade', 'demo', data=str(root), cache=cache, coordinates=str(tmp_path/'oof.csv'), epochs=4), runs/'two'/'grade', progress=False)
        calibrate_run(runs/'seed'/'sagittal_t1'); calibrate_run(runs/'two'/'grade')
        seed = predict_seed(root, runs/'seed', cache_dir=cache, progress=False)
        two, _ = predict_two_stage(root, runs/'two', cache_dir=cache, progress=False)
    sol = read_train(root/'phantom_test_labels.csv')
    s, t = score(sol, seed)[1]['foraminal'], score(sol, two)[1]['foraminal']
    print(f'foraminal term on 20 held-out studies: seed model {s:.4f}, two-stage {t:.4f}')
    assert t < s - 0.05
