"""Phantom generation speed: studies/s at `tiny`, `small` and `full`, and the projected time for 300 `full` studies.

Targets: 24 tiny studies in under 20 s; 300 full studies in at most 10 minutes on a 2-core machine (`--workers 2`).
Usage: python bench/phantom_bench.py [workers] [n_tiny n_small n_full]"""
import os, sys, tempfile, time
from pathlib import Path
from lumbar_rsna.phantom import make_phantom

def run(n: int, size: str, workers: int) -> float:
    "Seconds to write `n` train studies of `size` with `workers` processes."
    with tempfile.TemporaryDirectory() as d:
        t = time.perf_counter()
        root = make_phantom(Path(d)/'ph', n, seed=0, test_studies=0, size=size, progress=False, workers=workers)
        dt = time.perf_counter() - t
        files = sum(1 for _ in root.rglob('*.dcm'))
    print(f'{n:4d} {size:5s} studies, {workers} worker(s) ({files} DICOM files): {dt:6.2f} s, {n / dt:6.2f} studies/s, {files / dt:5.0f} files/s', flush=True)
    return dt

def main(workers: int | None = None, n_tiny: int = 24, n_small: int = 12, n_full: int = 12):
    workers = workers or os.cpu_count() or 1
    tiny = run(n_tiny, 'tiny', workers)
    print(f'     target: 24 tiny studies < 20 s: {"met" if tiny * 24 / n_tiny < 20 else "MISSED"} ({tiny * 24 / n_tiny:.1f} s for 24)')
    run(n_small, 'small', workers)
    full = run(n_full, 'full', workers)
    proj = full * 300 / n_full
    print(f'     projected: 300 full studies with {workers} worker(s): {proj / 60:.1f} min; target <= 10 min: {"met" if proj <= 600 else "MISSED"}')

if __name__ == '__main__': main(*(int(a) for a in sys.argv[1:]))
