"""The realism gap of stage 1: the same localiser recipe trained on N phantom studies and on N real cases, each scored on
held-out studies of its own kind; the phantom should be no easier than the real scans, or its figures flatter.

Real: N SPIDER cases (sagittal T2, CC BY 4.0: van der Graaf et al., Sci Data 11, 264, 2024) train, the other cases
are the test set (`../shared/tools/spider_to_rsna.py --test-cases`). Phantom: a `full`-size phantom (`--size`) of N
train and `--test-studies` test studies for each version in `--versions`, scored against its hidden
`phantom_test_coordinates.csv`. Only the spinal canal points are scored (SPIDER has no others). The recipe is
`bench/real_localize.py`'s (the localiser's demo recipe plus `BENCH`, `--set` on top), as one run on each
side (that bench's default is now an ensemble of four).

Prints one `all:` line per dataset and a table (and one per lumbosacral anatomy when a phantom of version 4 has a
transitional vertebra in its test studies); `--figure PNG` draws each dataset's cumulative error curve and its
per-level shares within 5 mm (no image of any scan). `--skip-real` / `--versions` choose what runs; `--errors CSV`
keeps the per-point errors (with a `dataset` column) and `--from CSV` redraws from such files without training.
Run with OMP_NUM_THREADS=1 on a shared machine."""
import argparse, json, sys, tempfile, time
from pathlib import Path
import numpy as np, pandas as pd
sys.path.insert(0, str(Path(__file__).resolve().parent))
from real_localize import SHARED, BENCH, bench_one, parse_set, write_spider
from lumbar_rsna.analysis import localization_line, label_check_lines
from lumbar_rsna.data import geometry_faults
from lumbar_rsna.phantom import make_phantom, study_spine


def run_phantom(n: int, test: int, version: int, size: str, seed: int, overrides: dict) -> pd.DataFrame:
    "Errors of the test canal points of a phantom of `n` train studies, version `version`."
    with tempfile.TemporaryDirectory() as w:
        w = Path(w)
        root = make_phantom(w/'ph', n, seed=seed, test_studies=test, size=size, version=version, progress=False)
        err, info = bench_one(root, w, overrides, truth=root/'phantom_test_coordinates.csv')
        err['anatomy'] = err.study_id.map({s: anatomy(root, s) for s in err.study_id.unique()})   # a spine per study
    print(f'phantom v{version} ({size}, {n} train, {test} test): train {info["train_s"]:.0f} s, '
          f'{localization_line(err)}', flush=True)
    return err.assign(dataset=f'phantom v{version} ({size})')


def anatomy(root: Path, study_id: int) -> str:
    "A phantom study's lumbosacral anatomy: 'sacralised', 'lumbarised' (version 4) or 'typical'."
    return (study_spine(root, study_id).anatomy or {}).get('transition') or 'typical'


def by_anatomy(errs: pd.DataFrame) -> pd.DataFrame:
    "`summary` per dataset and lumbosacral anatomy (phantom studies; the real cases are 'unknown')."
    e = errs.assign(anatomy=errs.get('anatomy', pd.Series(index=errs.index, dtype=object)).fillna('unknown'))
    return pd.concat({a: summary(g) for a, g in e.groupby('anatomy')}, names=['anatomy']).swaplevel().sort_index()


def run_real(spider: Path, n: int, seed: int, overrides: dict) -> pd.DataFrame:
    "Errors of the canal points of the SPIDER cases left out when `n` seeded cases train."
    cases = np.random.default_rng(seed).permutation(sorted(pd.read_csv(spider/'levels.csv').case.unique()))
    test = sorted(int(c) for c in cases[n:])
    with tempfile.TemporaryDirectory() as w:
        w = Path(w)
        write_spider(w/'data', spider, test)
        err, info = bench_one(w/'data', w, overrides)
    print(f'real (SPIDER, {n} train, {len(test)} test cases): train {info["train_s"]:.0f} s, {localization_line(err)}',
          flush=True)
    return err.assign(dataset='real (SPIDER)')


def checked(errs: pd.DataFrame) -> pd.DataFrame:
    """Errors with `label_check` (`data.geometry_faults` of each run's labels: a pooled CSV repeats a series), for CSVs
    written before it was kept (one read back has it, empty cells as NaN, which `label_check_lines` reads as '')."""
    if 'label_check' in errs:
        return errs
    runs = [c for c in ('dataset', 'seed', 'repeat', 'fold') if c in errs]
    groups = errs.groupby(runs, sort=False) if runs else [(None, errs)]
    return pd.concat([g.assign(label_check=geometry_faults(g)) for _, g in groups]).loc[errs.index]


def summary(errs: pd.DataFrame) -> pd.DataFrame:
    "Per dataset: points, median mm, shares within 5 and 10 mm, level right."
    g = errs.groupby('dataset', sort=False)
    return pd.DataFrame({'points': g.size(), 'median_mm': g.mm.median(), 'within_5mm': g.mm.apply(lambda m: (m <= 5).mean()),
                         'within_10mm': g.mm.apply(lambda m: (m <= 10).mean()), 'level_right': g.level_right.mean()})


def draw(errs: pd.DataFrame, path: Path):
    "Cumulative error curves and per-level shares within 5 mm, one colour per dataset."
    import matplotlib; matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    names = list(dict.fromkeys(errs.dataset))
    mm = np.linspace(0, 30, 301)
    for i, (name, e) in enumerate(errs.groupby('dataset', sort=False)):
        m = e.mm.fillna(np.inf).to_numpy()
        a.plot(mm, [(m <= t).mean() for t in mm], label=f'{name} (n={len(m)})')
        lv = e.groupby('level', sort=True).mm.apply(lambda x: (x <= 5).mean())
        b.bar(np.arange(len(lv)) + (i - (len(names) - 1) / 2) * 0.8 / len(names), lv.values, 0.8 / len(names), label=name)
        b.set_xticks(np.arange(len(lv)), lv.index)
    a.axvline(5, color='grey', lw=0.8, ls=':')
    a.set(xlabel='distance from the labelled canal point (mm)', ylabel='share of test points within',
          title='stage 1 on held-out studies: error curve', ylim=(0, 1))
    b.set(xlabel='level', ylabel='share within 5 mm', title='per level', ylim=(0, 1))
    a.legend(loc='lower right')
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--n', type=int, default=20, help='training studies (phantom) and cases (real)')
    ap.add_argument('--test-studies', type=int, default=10, help='phantom test studies')
    ap.add_argument('--versions', default='2', help='phantom versions, comma-separated (e.g. 1,2); empty: none')
    ap.add_argument('--size', default='full', choices=['tiny', 'small', 'full'], help='phantom size')
    ap.add_argument('--spider', default=str(SHARED/'data'/'spider_t2'), help='SPIDER folder (levels.csv, images/)')
    ap.add_argument('--skip-real', action='store_true', help='only the phantom')
    ap.add_argument('--seed', type=int, default=0, help='phantom seed and SPIDER case shuffle')
    ap.add_argument('--set', nargs='*', default=[], metavar='KEY=VALUE', help='config fields on top of the bench recipe')
    ap.add_argument('--errors', help='CSV to write the per-point errors to')
    ap.add_argument('--from', dest='from_', nargs='*', default=[], help='error CSVs of earlier runs to add (no training)')
    ap.add_argument('--figure', help='PNG to draw')
    a = ap.parse_args()
    overrides = parse_set(a.set)
    print(f'recipe: demo + {json.dumps({**BENCH, **overrides})}', flush=True)
    t0 = time.perf_counter()
    errs = [checked(pd.read_csv(f)) for f in a.from_]
    for v in [int(v) for v in a.versions.split(',') if v]:
        errs.append(run_phantom(a.n, a.test_studies, v, a.size, a.seed, overrides))
    if not a.skip_real: errs.append(run_real(Path(a.spider), a.n, a.seed, overrides))
    if not errs: raise SystemExit('nothing to run: give --versions, drop --skip-real, or --from')
    errs = pd.concat(errs, ignore_index=True)
    print(summary(errs).round(3).to_string())
    for name, e in errs.groupby('dataset', sort=False):
        for line in label_check_lines(e):
            print(f'{name}: {line}')
    if errs.get('anatomy', pd.Series(dtype=object)).isin(['sacralised', 'lumbarised']).any():
        print(by_anatomy(errs).round(3).to_string())
    print(f'wall time {time.perf_counter() - t0:.0f} s')
    if a.errors: errs.to_csv(a.errors, index=False)
    if a.figure: draw(errs, Path(a.figure))


if __name__ == '__main__':
    main()
