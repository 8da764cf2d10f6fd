"""Training throughput in one run: images/s of the full loop (cache → DataLoader → step) and of the bare model step on a
pre-made batch; the loop should keep at least 90% of the bare step's rate. An image is one slice of one crop or series.

`--task series` (default), the seed method's whole-series model. CPU: resnet10t at 96 px, 5 slices, batch 8. With CUDA:
tf_efficientnetv2_s at 224 px with AMP and channels_last, and the peak GPU memory.
`--task grade`, stage 2 (one sample is a study: 5 levels × 5 views × n_slices crops, cropped and augmented by the loader). CPU: the
demo recipe (test_efficientnet, 32-px crops on 3 slices from a 96-px cache). With CUDA: the full recipe (tf_efficientnetv2_s,
96-px crops on 5 slices from a 512-px cache, 8 studies a batch).
The loader uses the trainer's own worker rule (`default_workers`): in-process loading on a CPU, worker processes beside a GPU.
`--workers N` overrides it, to see what a worker process costs on a CPU."""
import argparse, tempfile, time, warnings
from pathlib import Path
import pandas as pd, torch
from lumbar_rsna.phantom import make_phantom
from lumbar_rsna.cache import preprocess
from lumbar_rsna.data import SeriesDataset, dataset_items
from lumbar_rsna.core import read_train, read_coordinates
from lumbar_rsna.model import SeriesModel, loss_fn
from lumbar_rsna.grade import GradeDataset, GraderModel, grade_loss
from lumbar_rsna.train import recipe
from lumbar_rsna.train import default_workers, cuda_determinism

def series_setup(d: Path, ph: Path, cuda: bool, steps: int):
    "(dataset, model, loss, batch size, images per sample, description) of the seed method's Axial T2 model."
    name, size, bs = ('tf_efficientnetv2_s', 224, 16) if cuda else ('resnet10t', 96, 8)
    preprocess(ph, d/'cache', size=size, progress=False)
    items = dataset_items(d/'cache').query('series_description == "Axial T2"')
    items = pd.concat([items] * -(-(steps + 2) * bs // len(items)), ignore_index=True)   # one epoch covers every timed step, so workers never idle at an epoch's end
    ds = SeriesDataset(items, read_train(ph/'train.csv'), 'Axial T2', d/'cache', slices=5, image_size=size, augment=True)
    return ds, SeriesModel(name, 10, 5), loss_fn, bs, 5, f'series model {name} at {size} px, batch {bs} × 5 slices'

def grade_setup(d: Path, ph: Path, cuda: bool, steps: int):
    "(dataset, model, loss, batch size, images per sample, description) of stage 2 with the full (CUDA) or demo (CPU) recipe."
    c = recipe('grade', 'full' if cuda else 'demo')
    idx = preprocess(ph, d/'cache', size=c.cache_size, progress=False)
    studies = sorted(idx.study_id.unique()) * -(-(steps + 2) * c.batch_size // idx.study_id.nunique())
    ds = GradeDataset(studies, read_train(ph/'train.csv'), read_coordinates(ph/'train_label_coordinates.csv'), idx, d/'cache', c.crop_mm, c.crop_px,
                      c.n_slices, augment=True)
    n = 25 * c.n_slices
    return ds, GraderModel(c.model), grade_loss, c.batch_size, n, f'stage 2 {c.model}, {c.crop_px}-px crops, batch {c.batch_size} studies × {n} crop slices'

def main(task: str = 'series', steps: int = 12, workers: int | None = None, fast: bool = False):
    cuda = torch.cuda.is_available()
    dev = torch.device('cuda' if cuda else 'cpu')
    workers = default_workers(dev) if workers is None else workers
    if cuda: cuda_determinism(not fast)                  # as the trainer does: deterministic kernels unless --fast
    warnings.simplefilter('ignore')
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        ph = make_phantom(d/'ph', 40, seed=0, test_studies=0, progress=False)
        ds, model, loss, bs, per, desc = (grade_setup if task == 'grade' else series_setup)(d, ph, cuda, steps)
        model = model.to(dev)
        if cuda: model = model.to(memory_format=torch.channels_last)
        opt = torch.optim.Adam(model.parameters(), 1e-3)
        scaler = torch.amp.GradScaler('cuda', enabled=cuda)
        def step(x, y):
            with torch.autocast(dev.type, dtype=torch.float16, enabled=cuda): l = loss(model(x), y)
            opt.zero_grad(); scaler.scale(l).backward(); scaler.step(opt); scaler.update()
        def sync():
            if cuda: torch.cuda.synchronize()
        x0, y0 = next(iter(torch.utils.data.DataLoader(ds, bs)))
        x0, y0 = x0.to(dev), y0.to(dev)
        for _ in range(2): step(x0, y0)                      # warm-up
        if cuda: torch.cuda.reset_peak_memory_stats()
        sync(); t = time.perf_counter()
        for _ in range(steps): step(x0, y0)
        sync(); bare = steps * bs * per / (time.perf_counter() - t)
        dl = torch.utils.data.DataLoader(ds, bs, shuffle=True, num_workers=workers, drop_last=True, persistent_workers=workers > 0, pin_memory=cuda)
        it = iter(dl); step(*(v.to(dev) for v in next(it)))     # workers started
        sync(); t = time.perf_counter()
        for _ in range(steps):
            x, y = next(it); step(x.to(dev, non_blocking=True), y.to(dev, non_blocking=True))
        sync(); loop = steps * bs * per / (time.perf_counter() - t)
    print(f'{dev.type}: {desc}, {workers} loader workers' + (', AMP + channels_last' + (', cuDNN autotuning' if fast else ', deterministic kernels') if cuda else ''))
    print(f'bare model step : {bare:8.1f} images/s')
    verdict = '' if cuda else f' (CPU target >= 0.90: {"met" if loop / bare >= .9 else "MISSED"})'   # the target is set for the CPU loop
    print(f'full loop       : {loop:8.1f} images/s  ratio {loop / bare:.2f}{verdict}')
    if cuda: print(f'peak GPU memory : {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB')

if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--task', choices=('series', 'grade'), default='series', help='the seed method\'s series model, or stage 2')
    ap.add_argument('--steps', type=int, default=12); ap.add_argument('--workers', type=int)
    ap.add_argument('--fast', action='store_true', help='CUDA: cuDNN autotuning instead of deterministic kernels')
    a = ap.parse_args(); main(a.task, a.steps, a.workers, a.fast)
