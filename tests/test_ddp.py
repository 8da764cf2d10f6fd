"Multi-process training through torchrun: 2 CPU processes with the gloo backend train to the same weights."
import json, os, shutil, subprocess, sys
from pathlib import Path
import pandas as pd, pytest
from lumbar_rsna.phantom import make_phantom

def test_torchrun_two_processes(tmp_path):
    exe = next((str(p) for p in (Path(sys.executable).parent/'lumbar-rsna', shutil.which('lumbar-rsna')) if p and Path(p).exists()), None)
    assert exe, 'the lumbar-rsna console script is not installed beside this Python'
    ph = make_phantom(tmp_path/'ph', 8, seed=0, test_studies=1, progress=False)
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node', '2', '--master_port', '29533', exe, 'train',
           '--series', 'Sagittal T2/STIR', '--data', str(ph), '--cache', str(tmp_path/'cache'), '--out', str(tmp_path/'run'),
           '--model', 'test_efficientnet', '--image-size', '32', '--cache-size', '32', '--slices', '3', '--epochs', '2',
           '--batch-size', '2', '--n-folds', '2', '--workers', '0', '--random-init', '--ema', '0.9']
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env={**os.environ, 'OMP_NUM_THREADS': '1', 'CUDA_VISIBLE_DEVICES': ''})   # CPUs and gloo, also beside a GPU
    assert r.returncode == 0, r.stderr[-3000:]
    ddp = json.loads((tmp_path/'run'/'ddp.json').read_text())
    assert ddp['world_size'] == 2 and ddp['checksums'][0] == ddp['checksums'][1]
    assert pd.read_csv(tmp_path/'run'/'log.csv').epoch.tolist() == [0, 1]
    lines = r.stdout.strip().splitlines()                 # rank 0 prints each epoch's line and the result, once
    heads = [ln.split(':')[0] for ln in lines]
    assert heads == ['Sagittal T2/STIR epoch 0', 'Sagittal T2/STIR epoch 1', str(tmp_path/'run')], r.stdout
    assert 'nan' not in lines[-1], lines[-1]
