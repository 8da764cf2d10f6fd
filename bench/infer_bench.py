"""Inference time per study, from DICOM files to submission rows, per stage and per run of an ensemble, and the projection
to Kaggle's hidden test set (about 720 studies) against its 9-hour limit for 1, 5 and 10 runs per kind, at the full
recipes: the seed method's three series models (tf_efficientnetv2_s at 224 px), and the two-stage pipeline: the three
localisers (tf_efficientnetv2_s at 256 px, stride-2 heatmaps, mirrored too) then stage 2 (tf_efficientnetv2_s on
5 views × 5 slices of 96-px crops per level, from a 512-px cache). Random weights (the time does not depend on them);
`--size full` studies are like the real test set (~75 DICOM files per study at 256–640 px); CUDA when available.

Each stage is timed on warm caches, after one untimed warm-up pass: decoding the DICOM files into its cache (once,
whatever the number of runs), then predicting with 1 and with 2 runs per kind; a run's own cost is the difference, the
rest is fixed. On a busy CPU the split is noisy; the totals are what to read."""
import argparse, tempfile, time, warnings
from pathlib import Path
import torch
from lumbar_rsna.core import SERIES_TYPES, read_series_descriptions
from lumbar_rsna.phantom import make_phantom
from lumbar_rsna.cache import preprocess
from lumbar_rsna.train import recipe
from lumbar_rsna.runs import untrained, resolve_device
from lumbar_rsna.localize import localize
from lumbar_rsna.grade import grade_studies
from lumbar_rsna.predict import predict_seed

KAGGLE_STUDIES, KAGGLE_SECONDS = 720, 9 * 3600

def timed(f) -> float:
    t = time.perf_counter()
    f()
    return time.perf_counter() - t

def stage_times(decode, predict, n_studies: int) -> dict:
    "Seconds per study: decoding, then predicting with one run and with two runs of each kind; a run's own cost and the fixed rest."
    d = timed(decode) / n_studies
    predict(1)                                      # warm-up: first calls, allocations, CUDA kernels
    one, two = timed(lambda: predict(1)) / n_studies, timed(lambda: predict(2)) / n_studies
    return dict(decode=d, per_run=two - one, fixed=d + 2 * one - two)

def main(n_studies: int = 4, size: str = 'small'):
    dev = resolve_device('auto')
    warnings.simplefilter('ignore')
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        ph = make_phantom(d/'ph', 1, seed=0, test_studies=n_studies, size=size, progress=False)
        seed = {st: untrained(recipe('series', 'full', series_type=st), dev) for st in SERIES_TYPES}
        locs = {st: untrained(recipe('localize', 'full', series_type=st), dev) for st in SERIES_TYPES}
        g = untrained(recipe('grade', 'full'), dev)
        cache = lambda n: d/f'cache{n}'
        decode = lambda size: lambda: preprocess(ph, cache(size), 'test', size=size, workers=1, progress=False, strict=False)
        times, coords = {}, []
        times['seed models'] = stage_times(decode(224), lambda r: predict_seed(
            ph, {st: [m] * r for st, m in seed.items()}, cache_dir=cache(224), progress=False, device=dev), n_studies)
        times['stage 1'] = stage_times(decode(256), lambda r: coords.append(localize(
            ph, {st: [m] * r for st, m in locs.items()}, cache_dir=cache(256), progress=False, device=dev)), n_studies)
        idx = []
        times['stage 2'] = stage_times(lambda: idx.append(decode(512)()), lambda r: grade_studies(
            [g] * r, coords[0], idx[0][idx[0].status == 'ok'], cache(512)), n_studies)
        n_series = len(read_series_descriptions(ph/'test_series_descriptions.csv'))
    print(f'{dev}: {n_studies} {size} studies ({n_series} series), seconds per study')
    print(f'{"stage":>12} {"decode":>8} {"fixed":>8} {"per run":>8}   ' + '   '.join(f'{r:>2} runs/kind: h ({KAGGLE_STUDIES} studies)' for r in (1, 5, 10)))
    for name, t in [*times.items(), ('two-stage', {k: times['stage 1'][k] + times['stage 2'][k] for k in times['stage 1']})]:
        proj = [(t['fixed'] + r * t['per_run']) * KAGGLE_STUDIES for r in (1, 5, 10)]
        cells = '   '.join(f'{p / 3600:>13.2f} ({p / KAGGLE_SECONDS:>6.1%} of 9 h)' for p in proj)
        print(f'{name:>12} {t["decode"]:8.2f} {t["fixed"]:8.2f} {t["per_run"]:8.2f}   {cells}')

if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--studies', type=int, default=4)
    ap.add_argument('--size', default='small', choices=['tiny', 'small', 'full'], help="phantom size; 'full' is like the real test set")
    a = ap.parse_args()
    main(a.studies, a.size)
