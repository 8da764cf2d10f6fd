"""Issue 22: faults of real data (from public bug reports of DICOM readers and of this competition's data), each as a tiny
phantom with one thing changed. A fault is handled as a kind: the label, series or slice it touches is used by a stated
rule or left out with one warning that names it, and the run goes on."""
import re, shutil, subprocess, sys, warnings
import numpy as np, pandas as pd, pydicom, pytest, torch
from lumbar_rsna.core import read_coordinates, read_series_descriptions
from lumbar_rsna.phantom import make_phantom
from lumbar_rsna.dicom import load_series
from lumbar_rsna.cache import cache_series, preprocess, summarise
from lumbar_rsna.cli import main

TYPES = ('Sagittal T2/STIR', 'Sagittal T1', 'Axial T2')
from conftest import random_localizers      # a localiser of each type with random weights


@pytest.fixture(scope='module')
def ph(tmp_path_factory):
    return make_phantom(tmp_path_factory.mktemp('faults')/'ph', 12, seed=0, test_studies=3, progress=False)


@pytest.fixture
def ph_copy(ph, tmp_path):
    "A copy of the phantom that a test may damage."
    return shutil.copytree(ph, tmp_path/'ph')


def caught(fn):
    "fn's result and the messages of the warnings it gave."
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always')
        out = fn()
    return out, [str(x.message) for x in w]


def series_dir(root, split, study, series):
    return root/f'{split}_images'/str(study)/str(series)


def copy_series(src, d, edit=None, name=None):
    "A copy of series folder `src` in `d`, `edit(ds, i)` applied to the i-th file (file-name order), saved as `name(ds, f)`."
    d.mkdir(parents=True)
    for i, f in enumerate(sorted(src.iterdir(), key=lambda f: int(f.stem))):
        ds = pydicom.dcmread(f)
        if edit: edit(ds, i)
        ds.save_as(d/(name(ds, f) if name else f.name))
    return d


def canal_rows(root) -> pd.DataFrame:
    co = read_coordinates(root/'train_label_coordinates.csv')
    return co[co.condition == 'Spinal Canal Stenosis']


def delete_canal_instances(root, width: int = 1) -> pd.DataFrame:
    "Delete, in every Sagittal T2/STIR series, the file of the instance its canal points are labelled on (and `width` // 2 on either side); the points it removes."
    gone = canal_rows(root).drop_duplicates(['series_id', 'instance_number'])
    for r in gone.itertuples():
        for n in range(r.instance_number - width // 2, r.instance_number + width // 2 + 1):
            (series_dir(root, 'train', r.study_id, r.series_id)/f'{n}.dcm').unlink(missing_ok=True)
    return gone


# ---- Kind 1: one missing or unreadable piece loses more than itself ----

def test_labelled_instance_missing_from_its_series_is_moved_with_one_warning(ph_copy, tmp_path, capsys):
    "The issue's case: every canal point's file deleted. Each point moves to the slice beside the gap (within 7 mm of where the missing one lies), with one warning per dataset naming series and instance, and the run completes."

    gone = delete_canal_instances(ph_copy)
    idx, msgs = caught(lambda: preprocess(ph_copy, tmp_path/'c', 'train', size=64, workers=1, progress=False))
    notes = idx.set_index('series_id').notes
    assert all('instance gap' in notes[s] for s in gone.series_id)              # preprocessing notes the gap
    rc = main(['train-localizer', '--recipe', 'tiny', '--series', 'Sagittal T2/STIR', '--data', str(ph_copy),
               '--cache', str(tmp_path/'c'), '--epochs', '1', '--out', str(tmp_path/'run')])
    out, err = capsys.readouterr()
    assert rc == 0, err
    said = [l for l in err.splitlines() if 'not in its series' in l]
    assert 1 <= sum('moved to the nearer slice' in l for l in said) <= 2       # one per dataset (training, validation)
    one = gone.iloc[0]
    assert any(f'series {one.series_id} instance {one.instance_number} → ' in l for l in said)
    moved = re.search(r'(\d+) labelled points moved to a neighbouring slice', out)        # the counts, in the run's summary
    lost = re.search(r'(\d+) labelled points left out \(\d+: instance not in its series\)', out)   # two canal files side by side
    assert moved and int(moved[1]) + (int(lost[1]) if lost else 0) == len(canal_rows(ph_copy))


@pytest.mark.parametrize('width', [1, 3])
def test_stage_two_crops_a_missing_instance_only_from_a_slice_beside_it(ph_copy, tmp_path, width):
    "One file missing: the canal crop comes from the slice beside the gap, said once. Three in a row: the neighbours are two slice spacings (> 7 mm) away, so the point is left out, its view missing."
    from lumbar_rsna.grade import GradeDataset
    from lumbar_rsna.core import read_train
    gone = delete_canal_instances(ph_copy, width)
    idx, _ = caught(lambda: preprocess(ph_copy, tmp_path/'c', 'train', size=64, workers=1, progress=False))
    study = int(gone.study_id.iloc[0])
    ds, msgs = caught(lambda: GradeDataset([study], read_train(ph_copy/'train.csv'),
                                           read_coordinates(ph_copy/'train_label_coordinates.csv'), idx, tmp_path/'c',
                                           crop_px=16, n_slices=3))
    x, _ = ds[0]
    assert (x[:, 0].abs().max() > 0) == (width == 1)                           # the canal view: beside the gap, or missing
    assert x[:, 1:].abs().max() > 0                                             # the other views are there
    assert sum('not in its series' in m for m in msgs) == 1
    rule = 'moved to a neighbouring slice' if width == 1 else 'instance not in its series'
    assert ds.label_fixes == {rule: 5}


def test_report_leaves_out_a_labelled_point_whose_instance_is_missing(ph_copy):
    from lumbar_rsna.analysis import localization_errors
    gone = delete_canal_instances(ph_copy)
    truth = read_coordinates(ph_copy/'train_label_coordinates.csv')
    study = int(gone.study_id.iloc[0])
    truth = truth[truth.study_id == study]
    pred = truth[truth.condition != 'Spinal Canal Stenosis']
    e, msgs = caught(lambda: localization_errors(pred, truth, ph_copy, 'train'))
    assert len(e) == len(truth) - 5 and (e.condition != 'Spinal Canal Stenosis').all()
    assert e.mm.max() < 1e-6
    assert sum('not in its series' in m for m in msgs) == 1




def test_second_series_of_a_sagittal_type_is_used_when_the_first_does_not_load(ph_copy, tmp_path):
    from lumbar_rsna.localize import localize
    sd = read_series_descriptions(ph_copy/'test_series_descriptions.csv')
    study = int(sd.study_id.iloc[0])
    t1 = sd[(sd.study_id == study) & (sd.series_description == 'Sagittal T1')].series_id.iloc[0]
    bad = int(t1) - 1                                                           # listed first, and first by id
    d = shutil.copytree(series_dir(ph_copy, 'test', study, t1), series_dir(ph_copy, 'test', study, bad))
    for f in d.iterdir(): f.write_bytes(b'not a dicom file')
    row = pd.DataFrame(dict(study_id=[study], series_id=[bad], series_description=['Sagittal T1']))
    pd.concat([row, sd]).to_csv(ph_copy/'test_series_descriptions.csv', index=False)
    p, msgs = caught(lambda: localize(ph_copy, random_localizers(), split='test', cache_dir=tmp_path/'c', progress=False))
    mine = p[p.study_id == study]
    assert mine.condition.str.contains('Foraminal').sum() == 10
    assert set(mine[mine.condition.str.contains('Foraminal')].series_id) == {t1}
    assert not any('no usable Sagittal T1' in m for m in msgs)


# ---- Kind 2: geometry compared exactly, slice identity taken on trust ----

def test_orientations_equal_but_for_float_noise_are_one_stack(ph, tmp_path):
    sd = read_series_descriptions(ph/'train_series_descriptions.csv')
    r = sd[sd.series_description == 'Sagittal T2/STIR'].iloc[0]
    src = series_dir(ph, 'train', r.study_id, r.series_id)

    def edit(ds, i):
        o = np.array(ds.ImageOrientationPatient, float)
        o[:3] = [0.005 + (1e-7 if i % 2 else -1e-7), np.sqrt(1 - 0.005 ** 2), 0]
        o[3:] = [0, 0, -1]
        ds.ImageOrientationPatient = [float(x) for x in o]
    d = copy_series(src, tmp_path/str(r.study_id)/str(r.series_id), edit)
    v, msgs = caught(lambda: load_series(d))
    assert not any('stacks' in m for m in msgs), msgs
    cache_series(d, tmp_path/'c.npz', 32)
    z = np.load(tmp_path/'c.npz')
    x = z['positions'][:, 0]
    assert (np.diff(x) > 0).all() or (np.diff(x) < 0).all(), x                 # monotone in position
    assert 'stacks' not in str(z['notes'])


def _first_sagittal(ph):
    sd = read_series_descriptions(ph/'train_series_descriptions.csv')
    r = sd[sd.series_description == 'Sagittal T2/STIR'].iloc[0]
    return series_dir(ph, 'train', r.study_id, r.series_id)


@pytest.mark.parametrize('header', ['reversed', 'repeated', 'missing'])
def test_a_label_lands_on_the_file_it_names(ph, tmp_path, header):
    src = _first_sagittal(ph)
    n = len(list(src.iterdir()))

    def edit(ds, i):
        if header == 'reversed': ds.InstanceNumber = n - i
        elif header == 'repeated': ds.InstanceNumber = 1
        else: del ds.InstanceNumber
    d = copy_series(src, tmp_path/'s', edit)
    v, msgs = caught(lambda: load_series(d))
    for k in range(1, n + 1):
        np.testing.assert_array_equal(v.pixels[v.slice_of(k)], pydicom.dcmread(d/f'{k}.dcm').pixel_array)
    if header != 'missing': assert any('file names' in m for m in msgs), msgs


def test_a_label_on_a_repeated_instance_number_is_refused(ph, tmp_path):
    src = _first_sagittal(ph)

    def edit(ds, i): ds.InstanceNumber = 3 if i in (2, 5) else ds.InstanceNumber
    d = copy_series(src, tmp_path/'s', edit, name=lambda ds, f: f'IMG{int(f.stem) * 7:04d}.dcm')
    v, msgs = caught(lambda: load_series(d))
    with pytest.raises(KeyError, match='instance 3 .*more than one'): v.slice_of(3)
    assert v.slice_of(2) >= 0


# ---- Kind 3: a description or a label's series is a claim; the image geometry is the fact ----

def move_canal_labels_to_t1(root) -> int:
    "Put every canal point of the first study on its Sagittal T1 series (as in one real study); that study."
    co = read_coordinates(root/'train_label_coordinates.csv')
    sd = read_series_descriptions(root/'train_series_descriptions.csv')
    study = int(co.study_id.iloc[0])
    t1 = sd[(sd.study_id == study) & (sd.series_description == 'Sagittal T1')].series_id.iloc[0]
    on = (co.study_id == study) & (co.condition == 'Spinal Canal Stenosis')
    co.loc[on, 'series_id'] = t1
    co.loc[on, 'instance_number'] = 5
    co.to_csv(root/'train_label_coordinates.csv', index=False)
    return study


def test_canal_labels_on_sagittal_t1_are_not_mixed_into_the_canal_view(ph_copy, tmp_path, capsys):
    from lumbar_rsna.grade import GradeDataset
    from lumbar_rsna.core import read_train
    study = move_canal_labels_to_t1(ph_copy)
    idx, _ = caught(lambda: preprocess(ph_copy, tmp_path/'c', 'train', size=64, workers=1, progress=False))
    ds, msgs = caught(lambda: GradeDataset([study], read_train(ph_copy/'train.csv'),
                                           read_coordinates(ph_copy/'train_label_coordinates.csv'), idx, tmp_path/'c',
                                           crop_px=16, n_slices=3))
    x, _ = ds[0]
    assert x[:, 0].abs().max() == 0                                             # no Sagittal T1 crop in the canal view
    assert sum(f'study {study}' in m and 'Sagittal T1' in m for m in msgs) == 1
    rc = main(['train-grader', '--recipe', 'tiny', '--data', str(ph_copy), '--cache', str(tmp_path/'c'),
               '--epochs', '1', '--out', str(tmp_path/'run')])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert f'study {study}' in err and 'another type' in err
    assert '5 labelled points left out (5: another series type)' in out
    assert 'validation loss' not in out and 'competition score' in out       # each number named for what it is


def test_series_whose_plane_contradicts_its_description(ph_copy, tmp_path):
    "An axial series listed as Sagittal T1: preprocessing says so, naming it, and stage 1 does not take foramina from it."
    from lumbar_rsna.localize import localize
    sd = read_series_descriptions(ph_copy/'test_series_descriptions.csv')
    study = int(sd.study_id.iloc[0])
    ax = sd[(sd.study_id == study) & (sd.series_description == 'Axial T2')].series_id.iloc[0]
    sd.loc[sd.series_id == ax, 'series_description'] = 'Sagittal T1'
    sd.to_csv(ph_copy/'test_series_descriptions.csv', index=False)
    p, msgs = caught(lambda: localize(ph_copy, random_localizers(), split='test', cache_dir=tmp_path/'c', progress=False))
    assert any(str(ax) in m and 'axial' in m and 'Sagittal T1' in m for m in msgs), msgs
    assert ax not in set(p.series_id)


# ---- found as a new user ----

def test_run_refuses_weights_of_another_input_size(tmp_path):
    from lumbar_rsna.train import make_task, recipe
    from lumbar_rsna.runs import load_run
    run = tmp_path/'run'
    run.mkdir()
    task = make_task(recipe('series', 'tiny', series_type='Sagittal T1', image_size=96))
    torch.save(dict(model=task.build_model().state_dict(), meta=task.meta(), epoch=0), run/'best.pt')
    recipe('series', 'tiny', series_type='Sagittal T1', image_size=48).save(run/'config.json')
    with pytest.raises(ValueError, match='image_size'): load_run(run)
    meta = {k: v for k, v in task.meta().items() if k != 'image_size'}         # a checkpoint older than the key
    torch.save(dict(model=task.build_model().state_dict(), meta=meta, epoch=0), run/'best.pt')
    m, msgs = caught(lambda: load_run(run))
    assert m.cfg.image_size == 48 and any('image_size' in m and 'not recorded' in m for m in msgs)


def test_python_m_cli_runs_the_command_line():
    r = subprocess.run([sys.executable, '-m', 'lumbar_rsna.cli', '--help'], capture_output=True, text=True)
    assert r.returncode == 0 and 'usage: lumbar-rsna' in r.stdout


def test_help_imports_no_heavy_library():
    code = ("import sys; from lumbar_rsna.cli import parser; p = parser(); "
            "print(sorted(m for m in ('torch', 'timm', 'pandas') if m in sys.modules))")
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == '[]'


def test_stacks_note_says_what_it_means():
    rows = pd.DataFrame(dict(study_id=[1], series_id=[2], split=['train'], status=['ok'],
                             notes=['stacks: 3 stacks of different orientation ([4, 4, 4] slices) kept in spatial order']))
    line = next(l for l in summarise(rows) if l.startswith('stacks'))
    assert 'blocks' in line and 'nothing to do' in line


def test_real_coordinates_on_another_series_type(real_csvs):
    """The real coordinates: exactly the 5 spinal canal rows on a Sagittal T1 series are left out by the series-type rule,
    and the 5 canal rows of the one series whose levels are out of order (study 1973833645: L1/L2 below L2/L3)."""
    from lumbar_rsna.data import check_labels
    co = read_coordinates(real_csvs/'train_label_coordinates.csv')
    idx = read_series_descriptions(real_csvs/'train_series_descriptions.csv').assign(status='not cached')
    (kept, fixes), msgs = caught(lambda: check_labels(co, idx, cache_dir=None, geometry=True))
    assert fixes == {'another series type': 5, 'levels out of order': 5} and len(kept) == len(co) - 10
    assert sum('another type' in m for m in msgs) == 1
    order = [m for m in msgs if 'level order' in m]
    assert len(order) == 1 and 'study 1973833645 series 833708507 Spinal Canal Stenosis L1/L2, L2/L3' in order[0]
