"""Inference time per study, from DICOM files to submission rows and coordinates, and the projection to Kaggle's hidden
test set (~700 studies) against its 9-hour limit: the three series models (tf_efficientnetv2_s at 224 px) and the three
localisers of stage 1 (tf_efficientnetv2_s at 256 px, stride-2 heatmaps, with their test-time mirroring), each timed on
its own and added up. Random weights (the time does not depend on them), 'small' phantom studies; CUDA when available."""
import argparse, tempfile, time, warnings
from pathlib import Path
import torch
from lumbar_rsna.core import SERIES_TYPES, read_series_descriptions
from lumbar_rsna.phantom import make_phantom
from lumbar_rsna.model import SeriesModel
from lumbar_rsna.series import recipe
from lumbar_rsna.inference import predict, TrainedModel
from lumbar_rsna.localize import Localizer, LocalizerModel, localizer_recipe, localize, n_channels

def series_models(dev) -> dict:
    "The seed method's three models, warmed up (CUDA context, kernels)."
    models = {}
    for st in SERIES_TYPES:
        cfg = recipe('full', series_type=st)
        models[st] = TrainedModel(SeriesModel.from_config(cfg, for_training=False).to(dev).eval(), cfg)
        with torch.no_grad(): models[st].model(torch.zeros(1, cfg.slices, 3, cfg.image_size, cfg.image_size, device=dev))
    return models

def localizers(dev) -> dict:
    "Stage 1's three localisers at the full recipe, warmed up."
    out = {}
    for st in SERIES_TYPES:
        cfg = localizer_recipe('full', series_type=st)
        out[st] = Localizer(LocalizerModel(cfg.model, n_channels(st), width=cfg.width, stride=cfg.stride).to(dev).eval(), cfg)
        with torch.no_grad(): out[st].model(torch.zeros(2, 3, cfg.image_size, cfg.image_size, device=dev))
    return out

def timed(f) -> float:
    t = time.perf_counter(); f(); return time.perf_counter() - t

def main(n_studies: int = 4):
    dev = 'cuda' if torch.cuda.is_available() else 'cpu'
    warnings.simplefilter('ignore')
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        ph = make_phantom(d/'ph', 1, seed=0, test_studies=n_studies, size='small', progress=False)
        models, locs = series_models(dev), localizers(dev)
        seed = timed(lambda: predict(ph, models, cache_dir=d/'cache224', workers=1, progress=False)) / n_studies
        stage1 = timed(lambda: localize(ph, locs, cache_dir=d/'cache256', workers=1, progress=False)) / n_studies
        n_series = len(read_series_descriptions(ph/'test_series_descriptions.csv'))
    print(f'{dev}: {n_studies} studies ({n_series} series); each step decodes the DICOM files into its own cache')
    for name, per in (('seed models (3 × tf_efficientnetv2_s, 224 px, 5 slices)', seed),
                      ('localisation (3 × tf_efficientnetv2_s, 256 px, every slice, mirrored too)', stage1), ('total', seed + stage1)):
        print(f'{name:>72}: {per:.2f} s/study, 700 studies {700 * per / 3600:.2f} h ({700 * per / (9 * 3600):.1%} of Kaggle\'s 9 h)')

if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0]); ap.add_argument('--studies', type=int, default=4)
    main(ap.parse_args().studies)
