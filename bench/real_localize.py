"""Stage 1 on real anatomy: the Sagittal T2/STIR localiser trained on a dataset's training studies from random weights, on
the CPU, then scored on its test studies against their labelled points, with the report `localize --report` prints.

`--data FOLDER`: one dataset in the competition's format with `test_label_coordinates.csv` (e.g. written by
`../shared/tools/spider_to_rsna.py`). `--spider DIR --holdouts K`: the SPIDER cases of DIR (default
`../shared/data/spider_t2`) in K folds; each fold in turn is the test set of a dataset written by spider_to_rsna.py
`--test-cases` (the other cases train), and the K reports are pooled. `--repeats R` repeats that with R shufflings.

SPIDER: J. W. van der Graaf et al., "Lumbar spine segmentation in MR images: a dataset and a public benchmark",
Scientific Data 11, 264 (2024), CC BY 4.0. Its images stay in the temporary folders this bench writes.

The recipe is the localiser's `demo` recipe (test_efficientnet, random weights) with the bench's own defaults on top
(`BENCH`), each changeable with `--set key=value` (any `LocalizerConfig` field; `--set max_gap_mm=0 image_size=96
cache_size=96 shared_slice=0 level_candidates=0 context=0 scanner=0 zoom_tta=0` is the first contact's recipe). Each data set gets `--runs` runs (default 4),
each validating on another fold, localised as one ensemble (heatmaps averaged), trained `--jobs` at a time (default 2, one
process each: about 400–500 s per data set on 2 cores; `--runs 1` is one run). `--keep DIR` keeps each hold-out's dataset and run; `--reuse` then localises them again without
training (e.g. with another `max_gap_mm` or `level_candidates`). `--seeds 0,1,2` repeats the whole bench with each training seed
(initial weights, data order, augmentation; the cases' folds stay) and prints each seed's pooled line and their mean and
range: one run of this recipe moves by 15 points or more between seeds, so a change is judged on several. Run it with
OMP_NUM_THREADS=1 on a shared machine; the wall times printed are measured, under whatever load there is."""
import argparse, contextlib, io, json, multiprocessing, os, subprocess, sys, tempfile, time, warnings
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from functools import partial
from pathlib import Path
import numpy as np, pandas as pd, torch
from lumbar_rsna.core import read_coordinates
from lumbar_rsna.train import train, recipe, run_result
from lumbar_rsna.runs import Models
from lumbar_rsna.localize import localize
from lumbar_rsna.analysis import localization_errors, localization_report, localization_line, label_check_lines

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent/'shared'
SERIES = 'Sagittal T2/STIR'
BENCH = dict(epochs=80, patience=80, max_gap_mm=55.0,   # on top of the demo recipe: the first contact's 80 epochs, no level skipping a disc,
             image_size=256, cache_size=256,        # 2.7× the demo's input: a heatmap cell of 2.75 mm on SPIDER's 352 mm field (192 px: 3.7 mm)
             shared_slice=5.0,                      # the levels' shared evidence in each level's slice (`localize.choose_slices`)
             level_candidates=12,                   # where the levels' own peaks allow no order, their shared ones (`localize.shared_peaks`)
             context=4,                             # dilated blocks on the stride-16 features: each cell sees the whole spine (`localize.ContextBlock`)
             scanner=0.3)                           # bias field, lower resolution and noise in training (`localize.random_scanner`)
INFERENCE = ('max_gap_mm', 'shared_slice', 'level_candidates', 'zoom_tta')  # settings used only when localising: a kept run can be localised again with others


def parse_set(items: list[str]) -> dict:
    "`key=value` overrides of the config, each value read as JSON when it parses (numbers, true/false), else as text."
    out = {}
    for s in items:
        k, _, v = s.partition('=')
        if not _: raise SystemExit(f'--set {s}: expected key=value')
        try: out[k] = json.loads(v)
        except json.JSONDecodeError: out[k] = v
    return out


@contextlib.contextmanager
def silenced():
    "Warnings and stderr kept out of the bench's output."
    with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter('ignore')
        yield


def train_quiet(cfg, out: Path, threads: int) -> dict:
    "`train` in a worker process of `--jobs`, with `threads` torch threads and no messages."
    torch.set_num_threads(threads)
    with silenced():
        return train(cfg, out, progress=False)


def bench_one(data: Path, work: Path, overrides: dict, quiet: bool = True, reuse: bool = False,
              truth: Path | None = None, runs: int = 1, jobs: int = 1) -> tuple[pd.DataFrame, dict]:
    """Train on `data`'s training studies, localise its test studies: (errors of the test canal points against `truth`,
    default `data`/test_label_coordinates.csv; timings and the first run's result). `runs` > 1 trains that many runs,
    each validating on another of the recipe's folds, and localises with their ensemble (heatmaps averaged); `jobs` > 1
    trains them in that many processes at once, each with its share of this one's torch threads (at least 1)."""
    cfg = recipe('localize', 'demo', series_type=SERIES, data=str(data), cache=str(work/'cache'), **{**BENCH, **overrides})
    t0 = time.perf_counter()
    with silenced():
        folds = [(cfg.fold + i * cfg.n_folds // runs) % cfg.n_folds for i in range(runs)]
        plan = [(replace(cfg, fold=f), work/'runs'/('t2' if i == 0 else f't2-fold{f}')) for i, f in enumerate(folds)]
        todo = [(c, out) for c, out in plan if not (reuse and (out/'best.pt').exists())]
        if jobs > 1 and len(todo) > 1:
            cfg.prepared_data(progress=False)               # the cache written once, before the workers read it
            work_one = partial(train_quiet, threads=max(1, torch.get_num_threads() // jobs))
            with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context('spawn')) as ex:
                done = dict(zip([out for _, out in todo], ex.map(work_one, *zip(*todo))))
        else:
            done = {out: train(c, out, progress=not quiet) for c, out in todo}
        results = [done[out] if out in done else run_result(out) for _, out in plan]
        t1 = time.perf_counter()
        locs = Models.of(work/'runs').load('localize', 'cpu')
        for m in locs[SERIES]:
            for k in INFERENCE: setattr(m.cfg, k, getattr(cfg, k))      # a reused run is localised with this recipe's inference settings
        pred = localize(data, locs, split='test', cache_dir=work/'cache', progress=False)
        truth = read_coordinates(truth or data/'test_label_coordinates.csv')
        truth = truth[truth.condition == 'Spinal Canal Stenosis']
        err = localization_errors(pred, truth, data, 'test')
    log = pd.read_csv(work/'runs'/'t2'/'log.csv') if (work/'runs'/'t2'/'log.csv').exists() else None
    return err, dict(train_s=t1 - t0, localize_s=time.perf_counter() - t1, epochs=len(log) if log is not None else None,
                     val_median_mm=results[0].get('val_median_mm'), best_epoch=results[0].get('best_epoch'), runs=runs)


def print_report(err: pd.DataFrame, title: str):
    print(f'--- {title}')
    print(localization_report(err).round(3).to_string())
    print('\n'.join([localization_line(err)] + label_check_lines(err)), flush=True)


def write_spider(out: Path, spider: Path, test_cases: list[int]):
    "A competition-format dataset at `out` of `spider`'s cases, `test_cases` held out (`spider_to_rsna.py`)."
    subprocess.run([sys.executable, str(SHARED/'tools'/'spider_to_rsna.py'), str(out), '--data', str(spider),
                    '--test-cases', ','.join(map(str, test_cases))], check=True, stdout=subprocess.DEVNULL)


def spider_folds(spider: Path, k: int, seed: int) -> list[list[int]]:
    "The cases of `spider`'s levels.csv in `k` folds of a seeded shuffle."
    cases = sorted(pd.read_csv(spider/'levels.csv').case.unique())
    perm = np.random.default_rng(seed).permutation(cases)
    return [sorted(int(c) for c in f) for f in np.array_split(perm, k)]


def summary(errs: pd.DataFrame) -> dict:
    "Within 5 mm, within 10 mm, level right (shares of the points) and studies with every level right (share of the studies)."
    by = [c for c in ('seed', 'repeat', 'fold') if c in errs] + ['study_id']
    return {'within 5 mm': (errs.mm <= 5).mean(), 'within 10 mm': (errs.mm <= 10).mean(),
            'level right': errs.level_right.astype(bool).mean(),
            'studies all right': errs.groupby(by).level_right.apply(lambda s: s.astype(bool).all()).mean()}


def seeds_table(errs: pd.DataFrame) -> pd.DataFrame:
    "`summary` per training seed, then their mean, min and max (percent)."
    t = pd.DataFrame({f'seed {s}': summary(e) for s, e in errs.groupby('seed')}).T * 100
    return pd.concat([t, t.agg(['mean', 'min', 'max'])]).round(1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument('--data', help='dataset folder with train and test studies and test_label_coordinates.csv')
    g.add_argument('--spider', nargs='?', const=str(SHARED/'data'/'spider_t2'), help='SPIDER folder (levels.csv, images/) for the hold-out mode')
    ap.add_argument('--holdouts', type=int, default=3, help='folds of the SPIDER cases, each held out once')
    ap.add_argument('--repeats', type=int, default=1, help='shufflings of the cases into folds')
    ap.add_argument('--folds', help='only these folds of each shuffling (e.g. 0 or 0,2), for a quick look')
    ap.add_argument('--seed', type=int, default=0, help='shuffling of the cases (repeat r uses seed + r)')
    ap.add_argument('--seeds', help='training seeds, each a whole bench (e.g. 0,1,2; default: the recipe\'s, 0); '
                    'with --keep, each in its own folder sS')
    ap.add_argument('--runs', type=int, default=4, help='runs per data set, each validating on another fold; localised as an ensemble (1: one run)')
    ap.add_argument('--jobs', type=int, default=2, help='runs trained at once, each in its own process (2 on 2 cores with OMP_NUM_THREADS=1)')
    ap.add_argument('--set', nargs='*', default=[], metavar='KEY=VALUE', help='config fields on top of the bench recipe')
    ap.add_argument('--errors', help='CSV to write the pooled errors to (one row per test point)')
    ap.add_argument('--verbose', action='store_true', help='print the training epochs')
    ap.add_argument('--keep', help='folder to keep each hold-out\'s dataset, cache and run in (default: temporary, removed)')
    ap.add_argument('--reuse', action='store_true', help='with --keep: a hold-out whose run is there is not trained again, only localised (with --set\'s inference settings)')
    a = ap.parse_args()
    overrides = parse_set(a.set)
    print(f'recipe: demo + {json.dumps({**BENCH, **overrides})}; torch threads {torch.get_num_threads()}, '
          f'OMP_NUM_THREADS={os.environ.get("OMP_NUM_THREADS")}', flush=True)
    t0 = time.perf_counter()
    if a.data:
        with tempfile.TemporaryDirectory() as w:
            err, info = bench_one(Path(a.data), Path(w), overrides, not a.verbose, runs=a.runs, jobs=a.jobs)
        print(f'train {info["train_s"]:.0f} s ({info["epochs"]} epochs, best {info["best_epoch"]}), localise {info["localize_s"]:.0f} s')
        print_report(err, Path(a.data).name)
        errs = [err]
    else:
        spider, errs = Path(a.spider), []
        seeds = [int(x) for x in a.seeds.split(',')] if a.seeds else [overrides.get('seed', 0)]
        for seed in seeds:
            one = []
            for r in range(a.repeats):
                folds = spider_folds(spider, a.holdouts, a.seed + r)
                pick = range(len(folds)) if a.folds is None else [int(f) for f in a.folds.split(',')]
                for f in pick:
                    with tempfile.TemporaryDirectory() as w:
                        w = Path(a.keep)/(f's{seed}' if a.seeds else '')/f'r{r}f{f}' if a.keep else Path(w)
                        if not (a.reuse and (w/'data'/'test_label_coordinates.csv').exists()):
                            write_spider(w/'data', spider, folds[f])
                        err, info = bench_one(w/'data', w, {**overrides, 'seed': seed}, not a.verbose, a.reuse, runs=a.runs, jobs=a.jobs)
                    one.append(err.assign(seed=seed, repeat=r, fold=f))
                    print(f'seed {seed} repeat {r} fold {f} (test cases {folds[f]}): train {info["train_s"]:.0f} s ({info["epochs"]} epochs, '
                          f'best {info["best_epoch"]}), localise {info["localize_s"]:.0f} s; {localization_line(err)}', flush=True)
            if len(seeds) > 1: print(f'seed {seed}: {localization_line(pd.concat(one))}', flush=True)
            errs += one
        print_report(pd.concat(errs, ignore_index=True), f'pooled over {len(errs)} hold-outs (SPIDER, CC BY 4.0: van der Graaf et al., Sci Data 11, 264, 2024)')
        if len(seeds) > 1:
            print('--- per training seed (%)')
            print(seeds_table(pd.concat(errs, ignore_index=True)).to_string())
    pooled = pd.concat(errs, ignore_index=True)
    n = pooled.groupby([c for c in ('seed', 'repeat', 'fold', 'study_id') if c in pooled]).ngroups
    print(f'studies with every level right: {summary(pooled)["studies all right"]:.1%} of {n}; wall time {time.perf_counter() - t0:.0f} s')
    if a.errors: pooled.to_csv(a.errors, index=False)


if __name__ == '__main__':
    main()
