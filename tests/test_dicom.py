"DICOM loading on untidy series, and the cache built in parallel."
import shutil, warnings
import numpy as np, pydicom, pytest
from lumbar_rsna.phantom import make_phantom
from lumbar_rsna.core import read_series_descriptions, read_coordinates
from lumbar_rsna.dicom import load_series, load_stacks, level_slices
from lumbar_rsna.cache import preprocess, load_cached, read_cache_index

@pytest.fixture(scope='module')
def ph(tmp_path_factory):
    return make_phantom(tmp_path_factory.mktemp('d')/'ph', 6, seed=2, test_studies=2, progress=False,
                        version=2)   # exact points: the projection test reads each level's axial slice off them

def _series(ph, desc):
    sd = read_series_descriptions(ph/'train_series_descriptions.csv')
    r = sd[sd.series_description == desc].iloc[0]
    return r, ph/'train_images'/str(r.study_id)/str(r.series_id)

def test_projection_finds_the_axial_slice_of_each_level(ph):
    sd, co = read_series_descriptions(ph/'train_series_descriptions.csv'), read_coordinates(ph/'train_label_coordinates.csv')
    checked = 0
    for study in co.study_id.unique():
        c = co[co.study_id == study]
        sag, ax = c[c.condition == 'Spinal Canal Stenosis'], c[c.condition == 'Left Subarticular Stenosis']
        if not len(sag) or not len(ax): continue
        img = lambda sid: load_series(ph/'train_images'/str(study)/str(sid))
        lv = level_slices(img(sag.series_id.iloc[0]), sag, img(ax.series_id.iloc[0])).set_index('level')
        for r in ax.itertuples():
            if r.level in lv.index:
                assert abs(lv.loc[r.level, 'axial_instance'] - r.instance_number) <= 1; checked += 1
    assert checked >= 10

def test_mixed_sizes_duplicates_and_two_stacks(ph, tmp_path):
    r, src = _series(ph, 'Axial T2')
    d = tmp_path/'s'; shutil.copytree(src, d)
    n = len(list(d.iterdir()))
    ds = pydicom.dcmread(d/'1.dcm')            # a slice of another size
    big = np.kron(ds.pixel_array, np.ones((2, 2), ds.pixel_array.dtype))
    ds.Rows, ds.Columns, ds.PixelData = big.shape[0], big.shape[1], big.tobytes(); ds.PixelSpacing = [v / 2 for v in ds.PixelSpacing]
    ds.save_as(d/'1.dcm')
    shutil.copy(d/'2.dcm', d/'dup.dcm')        # a repeated position
    ds = pydicom.dcmread(d/'3.dcm'); ds.ImageOrientationPatient = [1, 0, 0, 0, 0, -1]; ds.InstanceNumber = 999; ds.save_as(d/'other.dcm')  # a coronal slice
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always'); v = load_series(d)
    msgs = ' '.join(str(x.message) for x in w)
    assert 'resampled to the most common' in msgs and 'repeat a position' in msgs and 'another plane left out (instances [999]' in msgs
    assert v.pixels.shape == (n, *pydicom.dcmread(d/'2.dcm').pixel_array.shape)          # every slice at the series' common size
    assert np.allclose(v.spacings, pydicom.dcmread(d/'2.dcm').PixelSpacing)     # the resampled slice's spacing follows its new size
    assert sorted(v.instance_numbers.tolist()) == list(range(1, n + 1))
    assert [len(s.pixels) for s in load_stacks(d)] == [n, 1]

def test_missing_geometry_falls_back_to_instance_order(ph, tmp_path):
    r, src = _series(ph, 'Sagittal T1')
    d = tmp_path/'g'; d.mkdir()
    for f in src.iterdir():
        ds = pydicom.dcmread(f); del ds.ImagePositionPatient; ds.save_as(d/f'x{1000 - ds.InstanceNumber}.dcm')
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always'); v = load_series(d)
    assert any('ordered by InstanceNumber' in str(x.message) for x in w)
    assert v.instance_numbers.tolist() == sorted(v.instance_numbers.tolist())

def test_parallel_cache_matches_serial(ph, tmp_path):
    a = preprocess(ph, tmp_path/'a', split='all', size=48, workers=2, progress=False)
    b = preprocess(ph, tmp_path/'b', split='all', size=48, workers=1, progress=False)
    assert (a.status == 'ok').all() and len(a) == len(read_cache_index(tmp_path/'a'))
    assert set(a.split) == {'train', 'test'}
    for r in a.itertuples():
        x, y = load_cached(tmp_path/'a', r.study_id, r.series_id, r.split), load_cached(tmp_path/'b', r.study_id, r.series_id, r.split)
        assert np.array_equal(x.image, y.image) and np.array_equal(x.instance_numbers, y.instance_numbers)


# ---- hardening (issue 12): each test reproduces a defect found with bad inputs ----
import json, os, signal, subprocess, sys, time
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset
import lumbar_rsna.cache as C
from lumbar_rsna.cache import ensure_cached, canonical_order
from lumbar_rsna.dicom import read_dicom

def _copy(src, d, edit=None, name=None):
    "Copy a series folder to `d`, applying `edit(ds, i)` (i = position in file-name order) to each dataset."
    d.mkdir(parents=True)
    for i, f in enumerate(sorted(src.iterdir())):
        ds = pydicom.dcmread(f)
        if edit: edit(ds, i)
        ds.save_as(d/(name(ds, f) if name else f.name))
    return d

def _caught(fn):
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always'); out = fn()
    return out, [str(x.message) for x in w]

@pytest.fixture
def ph_copy(ph, tmp_path):
    "A copy of the phantom that a test may damage."
    return shutil.copytree(ph, tmp_path/'ph')

def test_two_preprocess_runs_at_once_keep_both_splits(ph, tmp_path, monkeypatch):   # item 3
    orig, other = C.cache_series, []
    def the_other_run_starts_meanwhile(src, dst, size, strict=True):
        if not other: other.append(1); C.preprocess(ph, tmp_path/'c', 'test', size=32, workers=1, progress=False)
        return orig(src, dst, size, strict)
    monkeypatch.setattr(C, 'cache_series', the_other_run_starts_meanwhile)
    C.preprocess(ph, tmp_path/'c', 'train', size=32, workers=1, progress=False)
    idx = read_cache_index(tmp_path/'c')
    n = {s: len(read_series_descriptions(ph/f'{s}_series_descriptions.csv')) for s in ('train', 'test')}
    assert idx.split.value_counts().to_dict() == n and (idx.status == 'ok').all()

class Killed(BaseException): "The run stopped from outside (as by Ctrl-C or a lost machine): not an Exception, so no series handler catches it."

def test_interrupted_preprocess_keeps_finished_series(ph, tmp_path, monkeypatch):   # item 4
    orig, calls, stop_at = C.cache_series, [], [3]
    def interrupted_at_the_third(src, dst, size, strict=True):
        calls.append(src)
        if len(calls) in stop_at: raise Killed
        return orig(src, dst, size, strict)
    monkeypatch.setattr(C, 'cache_series', interrupted_at_the_third)
    with pytest.raises(Killed): C.preprocess(ph, tmp_path/'c', 'train', size=32, workers=1, progress=False)
    assert len(read_cache_index(tmp_path/'c')) == 2
    calls.clear(); stop_at.clear(); C.preprocess(ph, tmp_path/'c', 'train', size=32, workers=1, progress=False)
    assert len(calls) == len(read_series_descriptions(ph/'train_series_descriptions.csv')) - 2

def test_cache_sizes_coexist_and_replaced_dicoms_are_redone(ph_copy, tmp_path):   # item 5
    c = tmp_path/'c'
    a = preprocess(ph_copy, c, 'train', size=32, workers=1, progress=False)
    r = a.iloc[0]
    stamp = {s: (c/p).stat().st_mtime_ns for s, p in zip(a.series_id, a.path)}
    preprocess(ph_copy, c, 'train', size=48, workers=1, progress=False)
    assert load_cached(c, r.study_id, r.series_id, size=32).image.shape[-1] == 32
    assert load_cached(c, r.study_id, r.series_id, size=48).image.shape[-1] == 48
    src = ph_copy/'train_images'/str(r.study_id)/str(r.series_id)
    ds = pydicom.dcmread(src/'1.dcm'); ds.PixelData = (ds.pixel_array // 2).tobytes(); ds.save_as(src/'1.dcm')   # a DICOM replaced
    b = preprocess(ph_copy, c, 'train', size=32, workers=1, progress=False)
    again = {s: (c/p).stat().st_mtime_ns for s, p in zip(b.series_id, b.path)}
    assert [s for s in stamp if stamp[s] != again[s]] == [r.series_id]

@pytest.mark.parametrize('desc', ['Sagittal T1', 'Axial T2'])
@pytest.mark.parametrize('bad', ['missing', 'malformed'])
def test_one_file_without_geometry_keeps_every_slice_in_instance_order(ph, tmp_path, desc, bad):   # item 6
    r, src = _series(ph, desc)
    def edit(ds, i):
        if i == 2:
            if bad == 'missing': del ds.ImagePositionPatient
            else: ds.ImagePositionPatient = [1, 2]
    d = _copy(src, tmp_path/'g', edit)
    v, msgs = _caught(lambda: load_series(d))
    n = len(list(d.iterdir()))
    assert len(v.pixels) == n and any('ordered by InstanceNumber' in m for m in msgs)
    assert canonical_order(v).instance_numbers.tolist() == sorted(v.instance_numbers.tolist())   # sagittal right → left, axial head → feet

def _tilted_blocks(src, d, n_blocks=3, degrees=12):
    "The series as `n_blocks` consecutive blocks, the outer ones tilted about the patient's x axis through their centre (as scanners angle blocks to the discs)."
    files = sorted(src.iterdir(), key=lambda f: pydicom.dcmread(f).InstanceNumber)
    blocks = np.array_split(np.arange(len(files)), n_blocks)
    d.mkdir(parents=True)
    for b, idx in enumerate(blocks):
        a = np.deg2rad(degrees * (b - 1))
        rot = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
        dss = [pydicom.dcmread(files[i]) for i in idx]
        centre = np.mean([np.array(ds.ImagePositionPatient, float) for ds in dss], 0)
        for ds in dss:
            iop = np.array(ds.ImageOrientationPatient, float)
            ds.ImageOrientationPatient = [round(float(x), 6) for x in np.r_[rot @ iop[:3], rot @ iop[3:]]]
            ds.ImagePositionPatient = [round(float(x), 4) for x in centre + rot @ (np.array(ds.ImagePositionPatient, float) - centre)]
            ds.save_as(d/f'{ds.InstanceNumber}.dcm')
    return d, [len(x) for x in blocks]

def test_tilted_blocks_keep_every_slice_with_its_geometry(ph, tmp_path):   # item 7
    r, src = _series(ph, 'Axial T2')
    d, sizes = _tilted_blocks(src, tmp_path/r.study_id.astype(str)/str(r.series_id))
    n = sum(sizes)
    v, msgs = _caught(lambda: load_series(d))
    assert len(v.pixels) == n and any('3 stacks' in m for m in msgs)
    cs = C.cache_series(d, tmp_path/'c.npz', 32)
    z = np.load(tmp_path/'c.npz')
    assert z['image'].shape[0] == n and z['positions'].shape == (n, 3) and z['orientations'].shape == (n, 6)
    assert z['instance_numbers'].tolist() == list(range(1, n + 1))      # head → feet across the blocks
    for k, i in enumerate(z['instance_numbers']):                       # each slice's own tags
        ds = pydicom.dcmread(d/f'{i}.dcm')
        assert np.allclose(z['positions'][k], ds.ImagePositionPatient, atol=1e-3) and np.allclose(z['orientations'][k], ds.ImageOrientationPatient, atol=1e-5)
    for k in range(n):                                                   # a point on a tilted slice is found on that slice
        kk, row, col, dist = v.to_voxel(v.to_patient(k, 20.5, 30.25))
        assert kk == k and dist < 1e-6 and np.allclose([row, col], [20.5, 30.25])

def test_preprocess_records_warnings_and_summarises_them_once(ph_copy, tmp_path):   # item 8
    r, src = _series(ph_copy, 'Sagittal T1')
    for f in src.iterdir():
        ds = pydicom.dcmread(f); del ds.PixelSpacing; ds.save_as(f)
    idx, msgs = _caught(lambda: preprocess(ph_copy, tmp_path/'c', 'train', size=32, workers=1, progress=False))
    notes = idx.set_index('series_id').notes
    assert 'PixelSpacing' in notes[r.series_id] and not notes.drop(r.series_id).str.contains('PixelSpacing').any()
    assert sum('PixelSpacing' in m for m in msgs) == 1
    summary = next(m for m in msgs if 'PixelSpacing' in m)
    assert f'{r.study_id}/{r.series_id}' in summary and '1 series' in summary
    assert 'PixelSpacing' in read_cache_index(tmp_path/'c').set_index('series_id').notes[r.series_id]

def test_monochrome1_is_inverted(ph, tmp_path):   # item 9
    r, src = _series(ph, 'Sagittal T1')
    d = _copy(src, tmp_path/'m1', lambda ds, i: setattr(ds, 'PhotometricInterpretation', 'MONOCHROME1'))
    v0, (v1, msgs) = load_series(src), _caught(lambda: load_series(d))
    assert np.corrcoef(v0.pixels.ravel().astype(float), v1.pixels.ravel().astype(float))[0, 1] < -0.999
    assert any('MONOCHROME1' in m and 'inverted' in m for m in msgs)

def test_missing_spacing_and_instance_numbers_are_said(ph, tmp_path):   # item 10
    r, src = _series(ph, 'Sagittal T1')
    v0 = load_series(src)
    def edit(ds, i):
        if i == 0: ds.InstanceNumber = 0
        if i == 1: del ds.InstanceNumber
        del ds.PixelSpacing
    d = _copy(src, tmp_path/'t', edit)
    v, msgs = _caught(lambda: load_series(d))
    assert len(v.pixels) == len(v0.pixels)
    assert sorted(v.instance_numbers.tolist()) == sorted(v0.instance_numbers.tolist())   # files named by number keep their names' numbers (issue 22)
    assert np.allclose(v.pixel_spacing, 1)
    a, b = sorted(f.name for f in src.iterdir())[:2]           # the files edited (instance numbers need not start at 1)
    said = ('no valid PixelSpacing; assumed 1 mm', f"InstanceNumber other than their file names' ({{'{a}': 0}}",
            f"no valid InstanceNumber; numbered by their file names {{'{b}': {int(b.removesuffix('.dcm'))}}}")
    for s in said: assert any(s in m for m in msgs), s
    assert sum('PixelSpacing' in m for m in msgs) == 1

def test_ensure_cached_uses_only_series_that_loaded(ph_copy, tmp_path):   # item 12
    first = read_series_descriptions(ph_copy/'train_series_descriptions.csv').iloc[0]
    for f in (ph_copy/'train_images'/str(first.study_id)/str(first.series_id)).iterdir(): f.write_bytes(b'garbage')
    with warnings.catch_warnings():
        warnings.simplefilter('ignore'); preprocess(ph_copy, tmp_path/'c', 'train', size=32, workers=1, progress=False)
        ensure_cached(ph_copy, tmp_path/'c', 32, progress=False)

def test_corrupt_cached_file_is_named_and_remade(ph, tmp_path):   # item 13
    a = preprocess(ph, tmp_path/'c', 'train', size=32, workers=1, progress=False)
    r = a.iloc[0]; p = tmp_path/'c'/r.path
    p.write_bytes(b'\0' * p.stat().st_size)
    with pytest.raises(Exception, match=str(p.name)): load_cached(tmp_path/'c', r.study_id, r.series_id, size=32)
    b = preprocess(ph, tmp_path/'c', 'train', size=32, workers=1, progress=False)
    assert (b.status == 'ok').all() and load_cached(tmp_path/'c', r.study_id, r.series_id, size=32).image.shape[-1] == 32

def _children(pid):
    try: return [int(x) for x in open(f'/proc/{pid}/task/{pid}/children').read().split()]
    except FileNotFoundError: return []

def test_sigterm_shuts_the_worker_pool_down(ph, tmp_path):   # item 14
    script = ("import time, sys, lumbar_rsna.cache as C\n"
              "orig = C.cache_series\n"
              "def slow(*a, **k): time.sleep(0.5); return orig(*a, **k)\n"
              "C.cache_series = slow\n"
              f"C.preprocess({str(ph)!r}, {str(tmp_path/'c')!r}, 'train', size=32, workers=2, progress=False)\n")
    p = subprocess.Popen([sys.executable, '-c', script], env={**os.environ, 'PYTHONPATH': os.pathsep.join(sys.path)})
    for _ in range(300):
        workers = _children(p.pid)
        if len(workers) >= 2: break
        time.sleep(0.05)
    assert len(workers) >= 2, 'no pool started'
    time.sleep(0.3); p.send_signal(signal.SIGTERM); p.wait(20)
    time.sleep(0.5)
    alive = [w for w in workers if os.path.exists(f'/proc/{w}') and open(f'/proc/{w}/stat').read().split()[2] != 'Z']
    for w in alive: os.kill(w, signal.SIGKILL)     # (so that a failure leaks nothing)
    assert not alive, f'workers {alive} outlived their parent'

def test_file_without_preamble_is_read_with_a_warning(tmp_path):   # item 19
    from pydicom.data import get_testdata_file
    src = get_testdata_file('MR_small.dcm', download=False)
    ds = pydicom.dcmread(src)
    fp = DicomBytesIO(); fp.is_little_endian, fp.is_implicit_VR = True, True
    write_dataset(fp, ds)                                # a raw dataset: no preamble, no DICM, no file meta
    d = tmp_path/'raw'; d.mkdir(); (d/'1.dcm').write_bytes(fp.getvalue())
    v, msgs = _caught(lambda: load_series(d))
    assert np.array_equal(v.pixels[0], ds.pixel_array) and any('DICM' in m for m in msgs)
