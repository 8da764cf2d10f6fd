"""Training throughput in one run: images/s of the full loop (cache → DataLoader → step) and of the bare model step on a
pre-made batch; the loop should keep at least 90% of the bare step's rate. An image is one slice of one sample.

CPU (default): resnet10t at 96 px, 5 slices, batch 8. With CUDA: tf_efficientnetv2_s at 224 px with AMP and channels_last, and the
peak GPU memory. The loader uses the trainer's own worker rule (`default_workers`): in-process loading on a CPU, worker
processes beside a GPU. `--workers N` overrides it, to see what a worker process costs on a CPU."""
import argparse, tempfile, time, warnings
from pathlib import Path
import pandas as pd, torch
from lumbar_rsna.phantom import make_phantom
from lumbar_rsna.cache import preprocess
from lumbar_rsna.data import SeriesDataset, dataset_items
from lumbar_rsna.core import read_train
from lumbar_rsna.model import SeriesModel
from lumbar_rsna.model import loss_fn
from lumbar_rsna.train import default_workers, cuda_determinism

def main(steps: int = 12, workers: int | None = None, fast: bool = False):
    cuda = torch.cuda.is_available()
    dev = torch.device('cuda' if cuda else 'cpu')
    name, size, bs = ('tf_efficientnetv2_s', 224, 16) if cuda else ('resnet10t', 96, 8)
    workers = default_workers(dev) if workers is None else workers
    if cuda: cuda_determinism(not fast)                  # as the trainer does: deterministic kernels unless --fast
    warnings.simplefilter('ignore')
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        ph = make_phantom(d/'ph', 40, seed=0, test_studies=0, progress=False)
        preprocess(ph, d/'cache', size=size, progress=False)
        items = dataset_items(d/'cache').query('series_description == "Axial T2"')
        items = pd.concat([items] * -(-(steps + 2) * bs // len(items)), ignore_index=True)   # one epoch covers every timed step, so
        ds = SeriesDataset(items, read_train(ph/'train.csv'), 'Axial T2', d/'cache', slices=5, image_size=size, augment=True)  # workers never idle at an epoch's end
        model = SeriesModel(name, 10, 5).to(dev)
        if cuda: model = model.to(memory_format=torch.channels_last)
        opt = torch.optim.Adam(model.parameters(), 1e-3)
        scaler = torch.amp.GradScaler('cuda', enabled=cuda)
        def step(x, y):
            with torch.autocast(dev.type, dtype=torch.float16, enabled=cuda): loss = loss_fn(model(x), y)
            opt.zero_grad(); scaler.scale(loss).backward(); scaler.step(opt); scaler.update()
        def sync():
            if cuda: torch.cuda.synchronize()
        x0, y0 = next(iter(torch.utils.data.DataLoader(ds, bs)))
        x0, y0 = x0.to(dev), y0.to(dev)
        for _ in range(2): step(x0, y0)                      # warm-up
        if cuda: torch.cuda.reset_peak_memory_stats()
        sync(); t = time.perf_counter()
        for _ in range(steps): step(x0, y0)
        sync(); bare = steps * bs * 5 / (time.perf_counter() - t)
        dl = torch.utils.data.DataLoader(ds, bs, shuffle=True, num_workers=workers, drop_last=True, persistent_workers=workers > 0, pin_memory=cuda)
        it = iter(dl); step(*(v.to(dev) for v in next(it)))     # workers started
        sync(); t = time.perf_counter()
        for _ in range(steps):
            x, y = next(it); step(x.to(dev, non_blocking=True), y.to(dev, non_blocking=True))
        sync(); loop = steps * bs * 5 / (time.perf_counter() - t)
    print(f'{dev.type}: {name} at {size} px, batch {bs} × 5 slices, {workers} loader workers' + (', AMP + channels_last' + (', cuDNN autotuning' if fast else ', deterministic kernels') if cuda else ''))
    print(f'bare model step : {bare:8.1f} images/s')
    verdict = '' if cuda else f' (CPU target >= 0.90: {"met" if loop / bare >= .9 else "MISSED"})'   # the target is set for the CPU loop
    print(f'full loop       : {loop:8.1f} images/s  ratio {loop / bare:.2f}{verdict}')
    if cuda: print(f'peak GPU memory : {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB')

if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0]); ap.add_argument('--steps', type=int, default=12); ap.add_argument('--workers', type=int)
    ap.add_argument('--fast', action='store_true', help='CUDA: cuDNN autotuning instead of deterministic kernels')
    a = ap.parse_args(); main(a.steps, a.workers, a.fast)
