"""Training speed on a CPU: float32 against `cpu_bf16` (bfloat16 mixed precision, channels-last), in one run.

For each model of the demo recipes (the three localisers' network, stage 2's grader, a seed series model) it times
the bare training step (forward, loss, backward, AdamW step) on one random batch of the recipe's shape, float32 and
bfloat16 alternately, `--repeats` times each, and prints the best time of each and their ratio. The ratio is what to
read: this machine is shared and noisy, and both settings see the same noise. On a CPU without native bfloat16
(Intel AMX or AVX512-BF16) `cpu_bf16` is refused by `train.cpu_bf16` with a warning, and this bench says so."""
import argparse, time, warnings
import torch
from lumbar_rsna.config import recipe
from lumbar_rsna.runs import untrained
from lumbar_rsna.train import native_bf16

def batch_of(task: str, cfg) -> torch.Tensor:
    "A random input batch of the recipe's shape."
    if task == 'localize':
        return torch.randn(cfg.batch_size, 3, cfg.image_size, cfg.image_size)
    if task == 'series':
        return torch.randn(cfg.batch_size, cfg.slices, 3, cfg.image_size, cfg.image_size)
    return torch.randn(cfg.batch_size, 5, 5, cfg.n_slices, cfg.crop_px, cfg.crop_px)   # levels × views

def step_seconds(model, x: torch.Tensor, bf16: bool, steps: int) -> float:
    "Seconds per training step of `model` on `x`, in bfloat16 mixed precision and channels-last when `bf16`."
    fmt = torch.channels_last if bf16 else torch.contiguous_format
    model = model.to(memory_format=fmt)
    x = x.contiguous(memory_format=fmt) if x.dim() == 4 else x
    opt = torch.optim.AdamW(model.parameters())
    t = time.perf_counter()
    for _ in range(steps):
        with torch.autocast('cpu', dtype=torch.bfloat16, enabled=bf16):
            out = model(x)
        loss = sum(o.float().mean() for o in (out if isinstance(out, (tuple, list)) else [out]))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return (time.perf_counter() - t) / steps

def main(steps: int, repeats: int, threads: int | None):
    if threads:
        torch.set_num_threads(threads)
    print(f'native bfloat16: {native_bf16()}; {torch.get_num_threads()} threads')
    kinds = [('localize', dict(series_type='Sagittal T2/STIR')), ('grade', {}), ('series', dict(series_type='Sagittal T1'))]
    for task, kw in kinds:
        cfg = recipe(task, 'demo', **kw)
        model = untrained(cfg).model
        model.train()
        x = batch_of(task, cfg)
        step_seconds(model, x, False, 1)
        step_seconds(model, x, True, 1)                                 # warm-up of both paths
        best = {False: float('inf'), True: float('inf')}
        for _ in range(repeats):
            for bf16 in (False, True):
                best[bf16] = min(best[bf16], step_seconds(model, x, bf16, steps))
        print(f'{task:9s} {cfg.model} batch {tuple(x.shape)}: float32 {best[False]:.3f} s/step, '
              f'bfloat16 {best[True]:.3f} s/step, ratio {best[False] / best[True]:.2f}×', flush=True)

if __name__ == '__main__':
    warnings.simplefilter('ignore')
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--steps', type=int, default=3, help='training steps per timing')
    ap.add_argument('--repeats', type=int, default=3, help='timings of each setting (the best counts)')
    ap.add_argument('--threads', type=int, help='torch threads (default: torch\'s own)')
    a = ap.parse_args()
    main(a.steps, a.repeats, a.threads)
