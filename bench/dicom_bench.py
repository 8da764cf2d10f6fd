"""DICOM speed, in one run on the same series: bare pydicom decode, load_series, and reading from the cache.

Bare decode is what a user writes without the project: read every file with pydicom, decode it, and stack the
slices in file-name order into one array (no sorting by position, no rescale, no checks). load_series does that plus
geometry, spatial order, rescale and validation. Targets: load_series keeps at least 80% of bare decode's slices/s;
the cache is at least 10x faster than DICOM."""
import tempfile, time, warnings
from pathlib import Path
import numpy as np, pydicom
from lumbar_rsna.phantom import make_phantom
from lumbar_rsna.core import read_series_descriptions
from lumbar_rsna.dicom import load_series
from lumbar_rsna.cache import cache_series, load_cached, series_file

def rates(fns: dict, n_slices: int, repeat: int = 9) -> dict:
    "Best slices/s of each function, run interleaved so that machine noise hits them alike."
    best = {k: float('inf') for k in fns}
    for _ in range(repeat):
        for k, fn in fns.items():
            t = time.perf_counter(); fn(); best[k] = min(best[k], time.perf_counter() - t)
    return {k: n_slices / v for k, v in best.items()}

def main():
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        ph = make_phantom(d/'ph', 2, seed=0, test_studies=0, size='full', progress=False)
        r = read_series_descriptions(ph/'train_series_descriptions.csv').query("series_description == 'Axial T2'").iloc[0]
        src = ph/'train_images'/str(r.study_id)/str(r.series_id)
        files = sorted(src.iterdir()); n = len(files)
        shape = pydicom.dcmread(files[0]).pixel_array.shape
        cache = d/'cache'; cache_series(src, series_file(cache, 'train', r.study_id, r.series_id, 256), 256)
        warnings.simplefilter('ignore')
        r_ = rates({'bare': lambda: np.stack([pydicom.dcmread(f).pixel_array for f in files]),
                    'ours': lambda: load_series(src), 'cached': lambda: load_cached(cache, r.study_id, r.series_id).image}, n)
        bare, ours, cached = r_['bare'], r_['ours'], r_['cached']
    print(f'series: {n} slices of {shape[0]}x{shape[1]} uint16 (Axial T2, phantom full size); cache at 256x256 uint8')
    print(f'bare pydicom decode : {bare:8.0f} slices/s')
    print(f'load_series         : {ours:8.0f} slices/s  ratio to bare {ours / bare:.2f} (target >= 0.80: {"met" if ours / bare >= .8 else "MISSED"})')
    print(f'cache read          : {cached:8.0f} slices/s  ratio to load_series {cached / ours:.1f}x (target >= 10x: {"met" if cached / ours >= 10 else "MISSED"})')

if __name__ == '__main__': main()
