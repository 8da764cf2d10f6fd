"The phantom as a benchmark: reader-grade marginals, the oracle's limit, determinism across workers, acquisition variation, refusals."
import json
import numpy as np, pandas as pd, pydicom, pytest
from lumbar_rsna.core import LABEL_COLS, LEVELS, SEVERITIES, PRED_COLS, read_train, read_sample_submission, read_series_descriptions, fit_prior, prior_submission
from lumbar_rsna.metrics import score
from lumbar_rsna.dicom import load_stacks
import lumbar_rsna.phantom as phantom
from lumbar_rsna.phantom import make_phantom, folder_digest, sample_latents, read_grades, labels_frame, oracle_submission

def _freqs(codes): return np.array([[np.mean(c[c >= 0] == k) for k in range(3)] for c in codes.T])

@pytest.fixture(scope='module')
def draw():
    rng = np.random.default_rng(7)
    z = sample_latents(2000, rng); return z, read_grades(z, rng)

def test_oracle_and_prior_on_2000_studies(draw):
    z, codes = draw
    ids = np.arange(2000) + 10**6
    lab = labels_frame(ids, codes)
    oracle, prior = score(lab, oracle_submission(ids, z))[0], score(lab, prior_submission(fit_prior(lab), ids))[0]
    assert 0.25 <= oracle <= 0.31 and 0.77 <= prior <= 0.81, (oracle, prior)

def test_grade_frequencies_match_the_real_ones(draw, real_csvs):
    rt = read_train(real_csvs/'train.csv')
    rc = rt[list(LABEL_COLS)].replace({s: i for i, s in enumerate(SEVERITIES)}).fillna(-1).astype(int).to_numpy()
    assert np.abs(_freqs(draw[1]) - _freqs(rc)).max() < 0.02

@pytest.fixture(scope='module')
def ph(tmp_path_factory):
    return make_phantom(tmp_path_factory.mktemp('p')/'ph', 10, seed=11, test_studies=24, progress=False)

def test_oracle_beats_the_prior_on_the_phantoms_test_studies(ph):
    tl = read_train(ph/'phantom_test_labels.csv')
    oracle = read_sample_submission(ph/'phantom_test_oracle.csv')
    assert oracle.row_id.tolist() == read_sample_submission(ph/'sample_submission.csv').row_id.tolist()
    o, p = score(tl, oracle)[0], score(tl, prior_submission(fit_prior(read_train(ph/'train.csv')), tl.study_id))[0]
    assert o < p - 0.25, (o, p)

def test_formats_equal_the_real_ones(ph, real_csvs):
    pairs = {'train.csv': 'train.csv', 'phantom_test_labels.csv': 'train.csv', 'sample_submission.csv': 'sample_submission.csv',
             'phantom_test_oracle.csv': 'sample_submission.csv', 'train_series_descriptions.csv': 'train_series_descriptions.csv',
             'test_series_descriptions.csv': 'test_series_descriptions.csv', 'train_label_coordinates.csv': 'train_label_coordinates_sample.csv',
             'phantom_test_coordinates.csv': 'train_label_coordinates_sample.csv'}
    for mine, theirs in pairs.items():
        assert pd.read_csv(ph/mine, nrows=0).columns.tolist() == pd.read_csv(real_csvs/theirs, nrows=0).columns.tolist(), mine

def test_tilted_axial_blocks_load_as_several_stacks(ph):
    sd = pd.concat([read_series_descriptions(ph/f'{s}_series_descriptions.csv').assign(split=s) for s in ('train', 'test')])
    n_stacks = []
    for r in sd[sd.series_description == 'Axial T2'].itertuples():
        d = ph/f'{r.split}_images'/str(r.study_id)/str(r.series_id)
        stacks = load_stacks(d)
        assert sum(len(s.pixels) for s in stacks) == len(list(d.iterdir()))
        n_stacks.append(len(stacks))
    assert 1 in n_stacks and max(n_stacks) >= 3, n_stacks

def test_same_bytes_with_one_or_two_workers(tmp_path):
    a = make_phantom(tmp_path/'a', 4, seed=3, test_studies=1, progress=False, workers=1)
    b = make_phantom(tmp_path/'b', 4, seed=3, test_studies=1, progress=False, workers=2)
    assert folder_digest(a) == folder_digest(b)

@pytest.mark.parametrize('kwargs, msg', [(dict(n_studies=0), 'positive integer'), (dict(n_studies=2.5), 'positive integer'),
    (dict(n_studies=2, workers=0), 'workers must be'), (dict(n_studies=2, workers=1.5), 'workers must be'),
    (dict(n_studies=2, size='huge'), 'size must be one of'), (dict(n_studies=2, test_studies=-1), 'non-negative')])
def test_bad_arguments_write_nothing(tmp_path, kwargs, msg):
    with pytest.raises(ValueError, match=msg): make_phantom(tmp_path/'x', **kwargs)
    assert not list(tmp_path.iterdir())

def test_existing_folder_is_kept(tmp_path):
    (tmp_path/'x').mkdir(); (tmp_path/'x'/'keep.txt').write_text('mine')
    with pytest.raises(FileExistsError, match='not empty'): make_phantom(tmp_path/'x', 2)
    with pytest.raises(FileExistsError, match='not a phantom'): make_phantom(tmp_path/'x', 2, overwrite=True)   # overwrite deletes only a phantom
    assert [p.name for p in (tmp_path/'x').iterdir()] == ['keep.txt']

def test_overwrite_replaces_a_phantom(tmp_path):
    make_phantom(tmp_path/'x', 2, test_studies=1, progress=False, workers=1)
    before = (tmp_path/'x'/'train.csv').read_bytes()
    make_phantom(tmp_path/'x', 3, seed=5, test_studies=1, progress=False, workers=1, overwrite=True)
    assert (tmp_path/'x'/'train.csv').read_bytes() != before and json.loads((tmp_path/'x'/'phantom.json').read_text())['studies'] == 3

def test_a_worker_error_names_the_study(tmp_path, monkeypatch):
    def broken(*a, **k): raise ValueError('boom')
    monkeypatch.setattr(phantom, 'make_series', broken)
    with pytest.raises(RuntimeError, match=r'study \d+ \(train\) failed: ValueError: boom'):
        make_phantom(tmp_path/'x', 2, test_studies=0, progress=False, workers=2)
    assert not list(tmp_path.iterdir())

def test_version_1_bytes_are_kept(tmp_path):
    "Version 1 writes what it wrote before version 2 existed (pinned on the code of that time; phantom.json names the package version)."
    p = make_phantom(tmp_path/'v1', 3, seed=5, test_studies=1, size='small', progress=False, workers=1, version=1)
    assert json.loads((p/'phantom.json').read_text())['phantom_version'] == 1
    (p/'phantom.json').unlink()
    assert folder_digest(p) == '57a61e97bac58fd66a51996c4b0a207986d06f01abe47c1561cecad100cc63be'

def test_version_2_bytes_are_kept(tmp_path):
    "Version 2 writes what it wrote before version 3 existed (pinned on the code of that time)."
    p = make_phantom(tmp_path/'v2', 3, seed=5, test_studies=1, size='small', progress=False, workers=1, version=2)
    (p/'phantom.json').unlink()
    assert folder_digest(p) == '28f4ffb2fc54afaa3f3651d8c055cfb358c85fdb2b87a624b8dbb8fe2ab6f25d'

def test_version_3_bytes_are_kept(tmp_path):
    "Version 3 writes what it wrote before version 4 existed (pinned on the code of that time)."
    p = make_phantom(tmp_path/'v3', 3, seed=5, test_studies=1, size='small', progress=False, workers=1, version=3)
    (p/'phantom.json').unlink()
    assert folder_digest(p) == '29ec1d9b0545586829358ea0d26ca0a6c1c6a2fdd59bcbafced049788e1bc44b'

def test_version_3_writes_version_2s_images_and_reads_the_canal(tmp_path):
    "Version 3 changes only the coordinates: the same DICOM files as version 2, the canal marked as readers mark it."
    ps = {v: make_phantom(tmp_path/f'v{v}', 6, seed=3, test_studies=2, progress=False, workers=1, version=v) for v in (2, 3)}
    for split in ('train_images', 'test_images'):
        assert folder_digest(ps[2]/split) == folder_digest(ps[3]/split)
    canal = {v: pd.read_csv(p/'train_label_coordinates.csv').query("condition == 'Spinal Canal Stenosis'") for v, p in ps.items()}
    key = ['study_id', 'level']
    m = canal[2].merge(canal[3], on=key, suffixes=('_2', '_3'))
    assert len(m) >= 25 and ((m.x_2 - m.x_3) ** 2 + (m.y_2 - m.y_3) ** 2).gt(0).all()       # every mark moved a little
    assert canal[3].groupby('series_id').instance_number.nunique().eq(1).mean() >= canal[2].groupby('series_id').instance_number.nunique().eq(1).mean()

def test_version_4_keeps_version_3s_geometry_but_at_a_transition(tmp_path, phantom_v4_transitions):
    "Version 4 keeps version 3's coordinates and files but at a transitional lumbosacral vertebra, and all its grades."
    ps = {3: make_phantom(tmp_path/'v3', 14, seed=2, test_studies=2, size='tiny', progress=False, workers=1, version=3),
          4: phantom_v4_transitions}
    kinds = {int(d.name): phantom.study_spine(ps[4], int(d.name)).anatomy['transition']
             for d in ps[4].glob('*_images/*')}
    assert list(kinds.values()).count(None) == 13 and {'sacralised', 'lumbarised'} <= set(kinds.values())
    for f in ('train_label_coordinates.csv', 'phantom_test_coordinates.csv'):
        co = {v: pd.read_csv(p/f) for v, p in ps.items()}
        plain = lambda c: c[c.study_id.map(kinds).isna()].reset_index(drop=True)
        pd.testing.assert_frame_equal(plain(co[3]), plain(co[4]))
    for f in ('train.csv', 'phantom_test_labels.csv', 'train_series_descriptions.csv'):   # drawn before the anatomy
        pd.testing.assert_frame_equal(pd.read_csv(ps[3]/f), pd.read_csv(ps[4]/f))
    files = lambda d: sorted(f.relative_to(d) for f in d.rglob('*.dcm'))
    for d in ps[4].glob('*_images/*'):                 # the same files (their pixels differ where the vessels moved);
        if kinds[int(d.name)] is None:                   # what a transition draws is checked in 01_phantom
            assert files(d) == files(ps[3]/d.parent.name/d.name), d.name

def _all_coords(ph):
    co = pd.concat([pd.read_csv(ph/'train_label_coordinates.csv').assign(split='train'),
                    pd.read_csv(ph/'phantom_test_coordinates.csv').assign(split='test')])
    sd = pd.concat([pd.read_csv(ph/f'{s}_series_descriptions.csv') for s in ('train', 'test')])
    return co, sd

def test_version_2_files_have_the_real_quirks(ph):
    assert json.loads((ph/'phantom.json').read_text())['phantom_version'] == phantom.PHANTOM_VERSION == 4   # version 2's files
    files = sorted(ph.glob('*_images/*/*/*.dcm'))
    tags = [pydicom.dcmread(f, stop_before_pixels=True) for f in files]
    assert all(int(t.InstanceNumber) == int(f.stem) for f, t in zip(files, tags))      # files named by instance number
    assert any(float(t.get('RescaleIntercept', 0)) != 0 for t in tags)
    assert any('SpacingBetweenSlices' not in t for t in tags) and any('SpacingBetweenSlices' in t for t in tags)
    first = pd.Series([int(f.stem) for f in files]).groupby([str(f.parent) for f in files]).min()
    assert (first == 1).any() and (first > 1).any() and first.max() > 99, first.max()
    co, _ = _all_coords(ph)
    for r in co.itertuples():                                  # every coordinate names a file of its series
        assert (ph/f'{r.split}_images'/str(r.study_id)/str(r.series_id)/f'{r.instance_number}.dcm').exists(), r

def test_version_2_labels_a_second_axial_series(ph):
    co, sd = _all_coords(ph)
    ax = sd[sd.series_description == 'Axial T2']
    two = ax.groupby('study_id').series_id.nunique()
    labelled = co[co.series_id.isin(ax.series_id)].groupby('study_id').series_id.nunique()
    assert (labelled.reindex(two[two > 1].index) == 2).any(), labelled      # both axial series of a study carry points
    sub = co[co.condition.str.contains('Subarticular')].assign(side=lambda d: d.condition.str.split().str[0])
    pairs = sub.pivot_table(index=['study_id', 'level'], columns='side', values='series_id', aggfunc='first').dropna()
    assert (pairs.Left != pairs.Right).any()                # left and right of a level on different series

def test_version_2_rescaled_files_decode_to_the_values(ph):
    "stored = (value − intercept) / slope fits uint16, and the reader's values (stored × slope + intercept) are not negative."
    from lumbar_rsna.dicom import read_dicom
    files = [f for f in sorted(ph.glob('*_images/*/*/*.dcm')) if float(pydicom.dcmread(f, stop_before_pixels=True).get('RescaleIntercept', 0)) < 0]
    assert files
    for f in files[::max(1, len(files) // 20)]:
        ds, value = read_dicom(f)
        stored = pydicom.dcmread(f).pixel_array
        assert stored.max() < 65535 and stored.min() >= -float(ds.RescaleIntercept) / float(ds.RescaleSlope) - 1
        assert value.dtype == np.float32 and value.min() > -2 and value.max() > 100, (f, value.min(), value.max())

def _spine_with(cells: dict, seed=0, version=2):
    "A spine whose finding sizes are 1 except `cells` (label column → size)."
    sizes = np.ones(25)
    for col, v in cells.items(): sizes[LABEL_COLS.index(col)] = v
    return phantom.random_spine(sizes, np.random.default_rng(seed), version)

@pytest.mark.parametrize('cond, contrast, tissue', [('spinal_canal_stenosis', 1, 'csf'),
    ('left_neural_foraminal_narrowing', 0, 'fat'), ('right_subarticular_stenosis', 1, 'recess')])
def test_version_2_draws_each_finding_at_its_landmark_and_size(cond, contrast, tissue):
    "At a normal level the label's tissue fills its landmark and the structure's half-radius; at size 0.2 the half-radius loses it."
    side, (cx, cy, rx, ry, rz) = phantom._structure(cond)
    for seed in range(3):
        for k in range(5):
            col = f'{cond}_{LEVELS[k]}'
            for size, inside in ((1.0, True), (0.2, False)):
                sp = _spine_with({col: size}, seed)
                s = sp.scale
                pts = [sp.to_patient(phantom.LUMBAR + k, (side * cx * s, (cy - 0.5 * ry) * s, 0.0))]
                if size == 1.0: pts.append(phantom.landmark(sp, cond, k))
                v = phantom.render(sp, np.array(pts, np.float32), contrast)
                want = phantom._tissues(sp, contrast)[tissue]
                assert np.allclose(v, want) == inside, (cond, seed, k, size, v, want)

def test_version_2_discs_are_darker_on_t2_where_the_level_is_strained():
    "A disc's nucleus (T2) falls with its level's strain, across studies; version 1's discs do not depend on it."
    strain, signal = [], []
    for seed in range(12):
        z = np.random.default_rng(seed).normal(0.8, 1.2, 25)
        sp = phantom.random_spine(phantom.finding_size(z[None])[0], np.random.default_rng(seed), 2)
        at = sp.centers + np.einsum('kij,j->ki', sp.frames, [0, -18 * sp.scale, 0]) + sp.frames[:, :, 2] * sp.half[:, None] / 3
        strain += list(phantom.level_strain(sp.sizes)[phantom.LUMBAR:])
        signal += list(phantom.render(sp, at.astype(np.float32), 1)[phantom.LUMBAR:])
    strain, signal = np.array(strain), np.array(signal)
    assert np.corrcoef(strain, signal)[0, 1] < -0.6, np.corrcoef(strain, signal)
    assert signal[strain < 0.05].mean() > signal[strain > 0.3].mean() + 0.15
    assert 0.2 < np.corrcoef(strain, signal)[0, 1] ** 2 < 0.95        # tied, not determined: other things vary
