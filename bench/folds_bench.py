"""Folds and ensembles on the demo's phantom, once (30–40 minutes on 2 cores; a bench, not a test).

The two-stage pipeline at the demo recipes on the demo's phantom (240 training and 60 test studies, 96 px): the three
localisers and stage 2 on all `--folds` folds (stage 2 validated at stage 1's out-of-fold coordinates, calibrated), and
fold 0 once more with another seed (`--seeds 2`, the default: other folds, other initial weights), to show how much one
run moves. Printed:
- the test score and share of the prior→oracle gap of fold 0 alone (both seeds) and of the all-fold ensemble, its
  calibrated probabilities averaged as probabilities and as log-probabilities (`runs.ENSEMBLE_SPACE`);
- the out-of-fold CV score of the whole pipeline on all training studies (`predict.cross_validate`) beside the test
  score of the same runs: how well CV predicts the test.
The seed models are left out (rows stage 2 cannot grade take the prior), to keep the bench within its time. Every step
resumes: run it again with the same `--out` and finished work is reused."""
import argparse, json, time, warnings
from pathlib import Path
import pandas as pd
import lumbar_rsna.runs as runs_module
from lumbar_rsna.core import SERIES_TYPES, series_slug, read_train, read_sample_submission, fit_prior, prior_submission
from lumbar_rsna.phantom import make_phantom, PHANTOM_VERSION
from lumbar_rsna.cache import preprocess
from lumbar_rsna.metrics import score
from lumbar_rsna.train import recipe, train_folds
from lumbar_rsna.runs import Models, calibrate_run
from lumbar_rsna.localize import localize
from lumbar_rsna.predict import predict_two_stage, cross_validate

def say(t0, msg): print(f'[{time.time() - t0:7.1f}s] {msg}', flush=True)

def train_stage(out: Path, root: Path, cache: Path, folds: str, seed: int, t0) -> Path:
    "The three localisers and stage 2 on `folds` at the demo recipes, into out/seed<seed>/; returns that runs folder."
    runs = out/f'seed{seed}'
    common = dict(data=str(root), cache=str(cache), seed=seed)
    for st in SERIES_TYPES:
        say(t0, f'seed {seed}: localiser {st}, folds {folds}')
        train_folds(recipe('localize', 'demo', series_type=st, **common), runs/'localize'/series_slug(st), folds, progress=False)
    oof = runs/'oof_coordinates.csv'
    if not oof.exists():
        say(t0, f'seed {seed}: out-of-fold coordinates')
        localize(root, runs/'localize', oof, 'train', cache, progress=False)
    say(t0, f'seed {seed}: stage 2, folds {folds}')
    train_folds(recipe('grade', 'demo', coordinates=str(oof), **common), runs/'grade', folds, progress=False)
    for r in Models.of(runs/'grade').runs:
        if not (r.path/'temperature.json').exists():
            calibrate_run(r)
    return runs

def test_score(root: Path, models, cache: Path, sol: pd.DataFrame, oracle: float, prior: float) -> dict:
    "Score and gap share of the two-stage submission of `models` on the test studies."
    sub, _ = predict_two_stage(root, models, cache_dir=cache, progress=False)
    s = score(sol, sub)[0]
    return dict(score=s, gap_closed=(prior - s) / (prior - oracle))

def main(out: Path, folds: str, studies: int, test_studies: int, seeds: int = 2, version: int = PHANTOM_VERSION):
    warnings.simplefilter('ignore')
    t0 = time.time()
    out.mkdir(parents=True, exist_ok=True)
    root, cache = out/'phantom', out/'cache'
    if not (root/'train.csv').exists():
        make_phantom(root, studies, 0, test_studies, progress=False, version=version)
    say(t0, f'phantom version {json.loads((root/"phantom.json").read_text()).get("phantom_version", 1)}')
    preprocess(root, cache, 'all', size=96, progress=False)
    all_runs = train_stage(out, root, cache, folds, 0, t0)
    others = [train_stage(out, root, cache, '0', s, t0) for s in range(1, seeds)]
    sol = read_train(root/'phantom_test_labels.csv')
    labels, test_ids = read_train(root/'train.csv'), sol.study_id
    prior = score(sol, prior_submission(fit_prior(labels), test_ids))[0]
    oracle = score(sol, read_sample_submission(root/'phantom_test_oracle.csv'))[0]
    ms = Models.of(all_runs)
    rows = {}
    for seed, runs in enumerate([all_runs, *others]):
        say(t0, f'test: fold 0 alone, seed {seed}')
        rows[f'fold 0 alone (seed {seed})'] = test_score(root, Models([r for r in Models.of(runs).runs if r.fold == 0]), cache, sol, oracle, prior)
    n = len({r.fold for r in ms.runs})
    for space in ('prob', 'logprob'):
        runs_module.ENSEMBLE_SPACE = space
        say(t0, f'test: {n}-fold ensemble, {space} mean')
        rows[f'{n}-fold ensemble ({space} mean)'] = test_score(root, ms, cache, sol, oracle, prior)
    runs_module.ENSEMBLE_SPACE = 'prob'
    say(t0, 'out-of-fold CV of the whole pipeline')
    cv = cross_validate(root, ms, all_runs/'oof_coordinates.csv', out/'cv.csv', cache, progress=False)
    table = pd.DataFrame(rows).T
    table.loc['weighted prior'] = dict(score=prior, gap_closed=0.0)
    table.loc['oracle (phantom limit)'] = dict(score=oracle, gap_closed=1.0)
    print(f'\nTest scores on the {len(sol)} held-out phantom test studies (lower is better):')
    print(table.round(4).to_string())
    print(f'\nOut-of-fold CV of the same {n} folds on {int(cv.loc["all", "studies"])} training studies:')
    print(cv.round(4).to_string())
    ens = rows[f'{n}-fold ensemble (prob mean)']['score']
    print(f'\nCV score {cv.loc["all", "score"]:.4f} (gap closed {cv.loc["all", "gap_closed"]:.1%}) against the test score '
          f'{ens:.4f} of the same runs: CV − test = {cv.loc["all", "score"] - ens:+.4f}; total {time.time() - t0:.0f} s')
    (out/'folds_bench.json').write_text(json.dumps(dict(test=table.to_dict(), cv=cv.reset_index().to_dict('records'),
                                                         seconds=time.time() - t0), indent=1, default=float))

if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--out', default='folds_bench_out', help='working folder (resumable)')
    ap.add_argument('--folds', default='all', help="folds of the ensemble ('all': the demo recipe's 4)")
    ap.add_argument('--studies', type=int, default=240); ap.add_argument('--test-studies', type=int, default=60)
    ap.add_argument('--seeds', type=int, default=2, help='fold 0 trained with this many seeds, to show how much one run moves')
    ap.add_argument('--phantom-version', type=int, default=PHANTOM_VERSION, help='the phantom version to write (ignored when --out has one)')
    a = ap.parse_args()
    main(Path(a.out), a.folds, a.studies, a.test_studies, a.seeds, a.phantom_version)
