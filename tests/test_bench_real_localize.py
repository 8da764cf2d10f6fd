"""`bench/real_localize.py`'s own parts: the per-seed summary its `--seeds` prints, and `--runs 2 --jobs 2` (two runs
trained at once in worker processes, then localised as one ensemble) on a tiny phantom."""
import sys
from pathlib import Path
import pandas as pd
from lumbar_rsna.phantom import make_phantom

sys.path.insert(0, str(Path(__file__).resolve().parents[1]/'bench'))   # on the path, so that spawned workers find it too
import real_localize as rl


def errors(seed: int, mm: list, right: list, studies: list) -> pd.DataFrame:
    return pd.DataFrame(dict(seed=seed, repeat=0, fold=0, study_id=studies, mm=mm, level_right=right))


def test_summary_counts_studies_per_seed_and_fold():
    # seed 0: study 1 all right, study 2 one level wrong; seed 1: the same study ids, both all right
    e = pd.concat([errors(0, [1, 2, 6, 11], [True, True, True, False], [1, 1, 2, 2]),
                   errors(1, [1, 1, 1, 12], [True, True, True, True], [1, 1, 2, 2])], ignore_index=True)
    s = rl.summary(e)
    assert s['within 5 mm'] == 5 / 8 and s['within 10 mm'] == 6 / 8 and s['level right'] == 7 / 8
    assert s['studies all right'] == 3 / 4           # study 2 counted once per seed, not pooled across seeds
    t = rl.seeds_table(e)
    assert list(t.index) == ['seed 0', 'seed 1', 'mean', 'min', 'max']
    assert t.loc['seed 0', 'studies all right'] == 50.0 and t.loc['seed 1', 'within 5 mm'] == 75.0
    assert t.loc['mean', 'level right'] == 87.5 and t.loc['min', 'within 5 mm'] == 50.0


def test_runs_trained_in_parallel_make_one_ensemble(tmp_path):
    root = make_phantom(tmp_path/'ph', 8, seed=3, test_studies=2, progress=False)
    err, info = rl.bench_one(root, tmp_path/'work', dict(epochs=1, patience=1, image_size=64, cache_size=64),
                             truth=root/'phantom_test_coordinates.csv', runs=2, jobs=2)
    runs = sorted(p.parent.name for p in (tmp_path/'work'/'runs').glob('*/best.pt'))
    assert runs == ['t2', 't2-fold2']                 # the demo recipe's 4 folds: validation folds 0 and 2
    assert len(err) == 2 * 5 and err.mm.notna().all()   # every test canal point localised by the ensemble
    again, _ = rl.bench_one(root, tmp_path/'work', dict(epochs=1, patience=1, image_size=64, cache_size=64),
                            truth=root/'phantom_test_coordinates.csv', runs=2, jobs=2, reuse=True)
    pd.testing.assert_frame_equal(err, again)          # kept runs are localised again, not trained again


def test_realism_gap_splits_the_phantom_by_lumbosacral_anatomy(phantom_v4_transitions):
    import realism_gap as rg
    root = phantom_v4_transitions
    ids = sorted(int(d.name) for d in root.glob('*_images/*'))
    kinds = {s: rg.anatomy(root, s) for s in ids}
    assert list(kinds.values()).count('typical') == 13 and {'sacralised', 'lumbarised'} <= set(kinds.values())
    odd = [kinds[s] != 'typical' for s in ids]      # say the localiser missed the level of every transitional study
    ph = pd.DataFrame(dict(dataset='phantom v4', study_id=ids, mm=[20.0 if o else 1.0 for o in odd],
                           level_right=[not o for o in odd], anatomy=list(kinds.values())))
    real = pd.DataFrame(dict(dataset='real', study_id=[1, 2], mm=[3.0, 8.0], level_right=[True, True]))
    t = rg.by_anatomy(pd.concat([ph, real], ignore_index=True))
    assert t.loc[('phantom v4', 'typical'), 'points'] == 13 and t.loc[('phantom v4', 'typical'), 'level_right'] == 1
    assert t.loc[('phantom v4', 'sacralised'), 'level_right'] == 0 == t.loc[('phantom v4', 'lumbarised'), 'within_5mm']
    assert t.loc[('real', 'unknown'), 'within_5mm'] == 0.5


def test_spider_has_one_case_off_its_neighbours_line(tmp_path):
    "SPIDER's derived canal points as the bench writes them: case 61's (its L4/L5 inside the disc) fail the label check, no other."
    import pytest
    from lumbar_rsna.core import read_coordinates
    from lumbar_rsna.data import geometry_faults
    spider = rl.SHARED/'data'/'spider_t2'
    if not (spider/'levels.csv').exists(): pytest.skip(f'SPIDER not found at {spider}')
    rl.write_spider(tmp_path/'d', spider, [61])
    train, test = (read_coordinates(tmp_path/'d'/f'{s}_label_coordinates.csv') for s in ('train', 'test'))
    assert train.study_id.nunique() == 26 and (geometry_faults(train) == '').all()
    why = geometry_faults(test)
    assert len(test) == 5 and set(why) == {'off the line of its neighbours'}


def test_realism_gap_checks_each_run_of_a_pooled_csv():
    "A pooled CSV repeats a series once per run: each run's labels are judged alone, not as a series with levels twice."
    import realism_gap as rg
    levels = ['L1/L2', 'L2/L3', 'L3/L4', 'L4/L5', 'L5/S1']
    run = lambda seed, x3: pd.DataFrame(dict(seed=seed, dataset='real', study_id=1, series_id=10, level=levels,
                                             condition='Spinal Canal Stenosis', x=[100, 100, x3, 100, 100],
                                             y=[100, 140, 180, 220, 260]))
    pooled = pd.concat([run(0, 100), run(1, 130)], ignore_index=True)      # seed 1's L3/L4 0.75 level gaps off the line
    assert rg.checked(pooled).label_check.tolist() == [''] * 5 + ['off the line of its neighbours'] * 5
    assert (rg.checked(run(1, 130).drop(columns=['seed', 'dataset'])).label_check != '').all()   # no run columns: one run
    kept = pooled.assign(label_check='kept')
    assert rg.checked(kept) is kept                                          # a CSV that has the check is read as it is
