"""Inference time per study, from DICOM files to submission rows, and the projection to Kaggle's hidden test set (~700
studies) against its 9-hour limit, at the full recipes: the seed method's three series models (tf_efficientnetv2_s at
224 px), and the two-stage pipeline: the three localisers (tf_efficientnetv2_s at 256 px, stride-2 heatmaps, mirrored
too) then stage 2 (tf_efficientnetv2_s on 5 views × 5 slices of 96-px crops per level, from a 512-px cache). Random
weights (the time does not depend on them); `--size full` studies are like the real test set (~75 DICOM files per study
at 256–640 px); CUDA when available."""
import argparse, tempfile, time, warnings
from pathlib import Path
import torch
from lumbar_rsna.core import SERIES_TYPES, read_series_descriptions
from lumbar_rsna.phantom import make_phantom
from lumbar_rsna.model import SeriesModel
from lumbar_rsna.series import recipe
from lumbar_rsna.inference import predict, TrainedModel
from lumbar_rsna.localize import Localizer, LocalizerModel, localizer_recipe, localize, n_channels
from lumbar_rsna.grade import Grader, GraderModel, grade_recipe, grade_studies
from lumbar_rsna.cache import preprocess

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

def grader(dev) -> Grader:
    "Stage 2 at the full recipe, warmed up."
    cfg = grade_recipe('full')
    g = Grader(GraderModel(cfg.model).to(dev).eval(), cfg)
    with torch.no_grad(): g.model(torch.zeros(1, 5, cfg.n_slices, cfg.crop_px, cfg.crop_px, device=dev))
    return g

def timed(f) -> float:
    t = time.perf_counter(); f(); return time.perf_counter() - t

def main(n_studies: int = 4, size: str = 'small'):
    dev = 'cuda' if torch.cuda.is_available() else 'cpu'
    warnings.simplefilter('ignore')
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        ph = make_phantom(d/'ph', 1, seed=0, test_studies=n_studies, size=size, progress=False)
        models, locs, g = series_models(dev), localizers(dev), grader(dev)
        seed = timed(lambda: predict(ph, models, cache_dir=d/'cache224', workers=1, progress=False)) / n_studies
        coords = []
        stage1 = timed(lambda: coords.append(localize(ph, locs, cache_dir=d/'cache256', workers=1, progress=False))) / n_studies
        def stage2():
            idx = preprocess(ph, d/'cache512', 'test', size=g.cfg.cache_size, workers=1, progress=False, strict=False)
            grade_studies(g, coords[0], idx[idx.status == 'ok'], d/'cache512')
        stage2 = timed(stage2) / n_studies
        n_series = len(read_series_descriptions(ph/'test_series_descriptions.csv'))
    print(f'{dev}: {n_studies} {size} studies ({n_series} series); each step decodes the DICOM files into its own cache')
    for name, per in (('seed models (3 × tf_efficientnetv2_s, 224 px, 5 slices)', seed),
                      ('stage 1: localisation (3 × tf_efficientnetv2_s, 256 px, every slice, mirrored too)', stage1),
                      ('stage 2: grading (tf_efficientnetv2_s, 5 levels × 5 views × 5 slices of 96 px)', stage2),
                      ('two-stage pipeline (stage 1 + stage 2)', stage1 + stage2), ('both pipelines (the two-stage one with the seed fallback)', seed + stage1 + stage2)):
        print(f'{name:>82}: {per:.2f} s/study, 700 studies {700 * per / 3600:.2f} h ({700 * per / (9 * 3600):.1%} of Kaggle\'s 9 h)')

if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0]); ap.add_argument('--studies', type=int, default=4)
    ap.add_argument('--size', default='small', choices=['tiny', 'small', 'full'], help="phantom size; 'full' is like the real test set")
    a = ap.parse_args(); main(a.studies, a.size)
