"DICOM loading on untidy series, and the cache built in parallel."
import shutil, warnings
import numpy as np, pydicom, pytest
from lumbar_rsna.phantom import make_phantom
from lumbar_rsna.core import read_series_descriptions, read_coordinates
from lumbar_rsna.dicom import load_series, load_stacks, level_slices
from lumbar_rsna.cache import preprocess, load_cached, read_cache_index

@pytest.fixture(scope='module')
def ph(tmp_path_factory):
    return make_phantom(tmp_path_factory.mktemp('d')/'ph', 6, seed=2, test_studies=2, progress=False)

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
    assert 'resampled to the most common' in msgs and 'repeat a position' in msgs and '2 stacks' in msgs
    assert v.pixels.shape[0] == n and len(set(v.pixels.shape[1:])) == 1
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
