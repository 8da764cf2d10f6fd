"""Inference time per study for the three models, from DICOM files to submission rows, and the projection to Kaggle's
hidden test set (~700 studies) against its 9-hour limit. Uses tf_efficientnetv2_s at 224 px (random weights: the time
does not depend on them) on 'small' phantom studies; CUDA when available."""
import argparse, tempfile, time, warnings
from pathlib import Path
import torch
from lumbar_rsna.core import SERIES_TYPES, read_series_descriptions
from lumbar_rsna.phantom import make_phantom
from lumbar_rsna.model import SeriesModel
from lumbar_rsna.series import recipe
from lumbar_rsna.inference import predict, TrainedModel

def main(n_studies: int = 4):
    dev = 'cuda' if torch.cuda.is_available() else 'cpu'
    warnings.simplefilter('ignore')
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        ph = make_phantom(d/'ph', 1, seed=0, test_studies=n_studies, size='small', progress=False)
        models = {}
        for st in SERIES_TYPES:
            cfg = recipe('full', series_type=st)
            models[st] = TrainedModel(SeriesModel.from_config(cfg, for_training=False).to(dev).eval(), cfg)
            with torch.no_grad(): models[st].model(torch.zeros(1, cfg.slices, 3, cfg.image_size, cfg.image_size, device=dev))   # warm-up: CUDA context, kernels
        t = time.perf_counter()
        predict(ph, models, cache_dir=d/'cache', workers=1, progress=False)
        per = (time.perf_counter() - t) / n_studies
        n_series = len(read_series_descriptions(ph/'test_series_descriptions.csv'))
    print(f'{dev}: {n_studies} studies ({n_series} series), tf_efficientnetv2_s × 3 at 224 px, 5 slices per series')
    print(f'seconds per study : {per:.2f} (DICOM decode + cache + 3 models)')
    print(f'700 studies       : {700 * per / 3600:.2f} h projected, {700 * per / (9 * 3600):.1%} of Kaggle\'s 9 h')

if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0]); ap.add_argument('--studies', type=int, default=4)
    main(ap.parse_args().studies)
