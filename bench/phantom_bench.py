"""Phantom generation speed: studies/s for 24 tiny studies (target: under 20 s on a 2-core machine)."""
import sys, tempfile, time
from pathlib import Path
from lumbar_rsna.phantom import make_phantom

def main(n: int = 24, size: str = 'tiny') -> float:
    with tempfile.TemporaryDirectory() as d:
        t = time.perf_counter()
        root = make_phantom(Path(d)/'ph', n, seed=0, test_studies=0, size=size, progress=False)
        dt = time.perf_counter() - t
        files = sum(1 for _ in root.rglob('*.dcm'))
    print(f'{n} {size} studies ({files} DICOM files): {dt:.2f} s, {n / dt:.2f} studies/s, {files / dt:.0f} files/s; '
          f'target < 20 s: {"met" if dt < 20 else "MISSED"} (ratio to target {dt / 20:.2f})')
    return dt

if __name__ == '__main__': main(*(int(a) if a.isdigit() else a for a in sys.argv[1:]))
