"""The radiologist's report on a small phantom with tiny runs: its values are the submission's, the page stands alone,
text from the data is inert, fallbacks say why, the command and the Kaggle cell write it, and Chromium renders it."""
import base64, os, re, shutil, warnings
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace
import numpy as np, pandas as pd, pydicom, pytest
from lumbar_rsna.core import CONDITIONS, LEVELS, PRED_COLS, SERIES_TYPES, series_slug, row_id, read_train, fit_prior
from lumbar_rsna.phantom import make_phantom
from lumbar_rsna.train import train
from lumbar_rsna.train import recipe
from lumbar_rsna.runs import calibrate_run
from lumbar_rsna.predict import predict_two_stage, load_prior
from lumbar_rsna.report import study_evidence, StudyReport, report_cells, find_chromium, screenshot

@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    """A phantom (12 train, 3 test studies), tiny localisers and grader (one epoch each), an Axial T2 seed model, and
    the report of the first test study."""
    d = tmp_path_factory.mktemp('report')
    ph = make_phantom(d/'ph', 12, seed=0, test_studies=3, progress=False)
    cache = d/'cache'
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        for st in SERIES_TYPES:
            cfg = recipe('localize', 'tiny', series_type=st, data=str(ph), cache=str(cache), epochs=1)
            train(cfg, d/'runs'/'localize'/series_slug(st), progress=False)
        train(recipe('grade', 'tiny', data=str(ph), cache=str(cache), epochs=1), d/'runs'/'grade', progress=False)
        calibrate_run(d/'runs'/'grade')
        seed = recipe('series', 'tiny', series_type='Axial T2', data=str(ph), cache=str(cache), epochs=1)
        train(seed, d/'seed', progress=False)
        studies = sorted(pd.read_csv(ph/'test_series_descriptions.csv').study_id.unique())
        ev = study_evidence(ph, d/'runs', studies[0], cache_dir=cache)
    html = StudyReport(ev).html
    return SimpleNamespace(d=d, ph=ph, cache=cache, runs=d/'runs', studies=studies, ev=ev, html=html)

def _study_rows(sub: pd.DataFrame, study: int) -> pd.DataFrame:
    return sub[sub.row_id.str.startswith(f'{study}_')].set_index('row_id')

def test_cells_are_the_submission(setup):
    "The 25 cells carry the row ids and the probabilities `predict` writes for the study among all the test studies."
    s = setup
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        sub, _ = predict_two_stage(s.ph, s.runs, cache_dir=s.cache, progress=False)
    cells = report_cells(s.html)
    study = s.studies[0]
    assert cells.row_id.tolist() == [row_id(study, f'{c}_{lv}') for lv in LEVELS for c in CONDITIONS]
    want = _study_rows(sub, study).loc[cells.row_id, list(PRED_COLS)].to_numpy()
    np.testing.assert_allclose(cells[list(PRED_COLS)].to_numpy(), want, atol=1e-6)
    assert set(cells.source) <= {'stage 2', 'seed', 'prior'}

class _Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags = []
    def handle_starttag(self, tag, attrs): self.tags.append((tag, dict(attrs)))

def test_page_stands_alone(setup):
    "Every image is an embedded PNG (two localisation views and one per level at least); nothing is fetched or run."
    s = setup
    p = _Tags()
    p.feed(s.html)
    names = {t for t, _ in p.tags}
    assert not names & {'script', 'link', 'iframe', 'object', 'embed', 'base', 'form'}
    imgs = [a['src'] for t, a in p.tags if t == 'img']
    assert len(imgs) >= 2 + len(LEVELS)
    for src in imgs:
        assert src.startswith('data:image/png;base64,')
        assert base64.b64decode(src.split(',', 1)[1])[:8] == b'\x89PNG\r\n\x1a\n'
    refs = [a.get(k) for _, a in p.tags for k in ('href', 'src', 'action') if a.get(k)]
    assert all(r.startswith('data:image/png;base64,') for r in refs)
    style = re.search(r'<style>(.*?)</style>', s.html, re.S).group(1)
    assert 'font-family:' in style and '&#' not in style and '&quot;' not in style    # the style is not escaped
    assert 'url(' not in s.html and '@import' not in s.html and 'http' not in s.html.replace('http-equiv', '')
    assert str(s.d) not in s.html and str(s.d.resolve()) not in s.html and '/tmp/' not in s.html
    assert s.html.count('class="cell ') == 25 and f'study {s.studies[0]}' in s.html

def test_text_from_the_data_is_inert(setup, tmp_path):
    "A SeriesDescription holding markup is shown as text; the patient's name and id in its headers stay off the page."
    s = setup
    ph = shutil.copytree(s.ph, tmp_path/'ph', symlinks=True)
    study = s.studies[0]
    series = sorted((ph/'test_images'/str(study)).iterdir())[0]
    evil = '<script>alert(1)</script><img src=x onerror=alert(2)>'
    for f in series.glob('*.dcm'):
        ds = pydicom.dcmread(f)
        ds.SeriesDescription, ds.PatientName, ds.PatientID = evil, 'Quixote^Alonso', 'MRN-0042'
        ds.save_as(f)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        html = StudyReport(study_evidence(ph, s.runs, study, cache_dir=tmp_path/'cache')).html
    assert '&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;' in html
    assert '<script' not in html.lower()
    assert 'onerror=alert' not in html.replace('&lt;img src=x onerror=alert(2)&gt;', '')
    text = re.sub(r'data:image/png;base64,[A-Za-z0-9+/=]+', '', html)       # the images' bytes are not text
    assert 'Quixote' not in text and 'Alonso' not in text and 'MRN-0042' not in text

def test_fallbacks_say_where_the_rows_came_from(setup):
    """Without the Axial T2 localiser the subarticular rows come from the seed model, else from the prior, each named
    with the reason, and still with the values `predict` writes."""
    s = setup
    study = s.studies[0]
    runs = [s.runs/'localize'/'sagittal_t1', s.runs/'localize'/'sagittal_t2_stir', s.runs/'grade']
    prior = load_prior(None, s.ph)
    for models, source in ((runs + [s.d/'seed'], 'seed'), (runs, 'prior')):
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            ev = study_evidence(s.ph, models, study, cache_dir=s.cache)
            sub, _ = predict_two_stage(s.ph, models, cache_dir=s.cache, progress=False)
        sub_rows = ev.rows.col.str.contains('subarticular')
        assert (ev.rows.source[sub_rows] == source).all() and (ev.rows.source[~sub_rows] == 'stage 2').all()
        assert ev.rows.reason[sub_rows].str.startswith('no Axial T2 localiser among the models').all()
        got = ev.rows.set_index('row_id')[list(PRED_COLS)]
        np.testing.assert_allclose(got.to_numpy(), _study_rows(sub, study).loc[got.index].to_numpy(), atol=1e-6)
        at_prior = np.allclose(got[sub_rows.to_numpy()].to_numpy(), prior.loc[ev.rows.col[sub_rows]].to_numpy())
        assert at_prior == (source == 'prior')
        notes = [n for n in re.findall(r'<li>([^<]*)</li>', StudyReport(ev).html) if 'subarticular stenosis: ' in n]
        answered = 'the Axial T2 seed model answered' if source == 'seed' else 'the prior answered'
        assert len(notes) == 10
        assert all(n.endswith(f'no Axial T2 localiser among the models; {answered}') for n in notes)

def test_command_writes_a_page_per_study_and_an_index(setup, tmp_path):
    from lumbar_rsna.cli import main
    s = setup
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        rc = main(['report', '--data', str(s.ph), '--models', str(s.runs), '--studies', 'all',
                   '--out', str(tmp_path/'r'), '--cache', str(s.cache)])
    assert rc == 0
    p = _Tags()
    p.feed((tmp_path/'r'/'index.html').read_text())
    assert [a['href'] for t, a in p.tags if t == 'a'] == [f'{x}.html' for x in s.studies]
    for x in s.studies: assert len(report_cells((tmp_path/'r'/f'{x}.html').read_text())) == 25
    not_a_test_study = ['report', '--data', str(s.ph), '--models', str(s.runs), '--study', '1',
                        '--out', str(tmp_path/'x.html')]
    assert main(not_a_test_study) == 2

def test_kaggle_cell_writes_the_first_study(setup, tmp_path):
    "The Kaggle notebook's report cell, switched on, writes the first test study's page with the submission's values."
    from lumbar_rsna.kaggle import kaggle_notebook
    from lumbar_rsna.runs import Models
    s = setup
    cell = next(c.source for c in kaggle_notebook().cells if 'REPORT = False' in c.source)
    assert 'REPORT = False' in cell
    models = tmp_path/'ds'
    models.mkdir()
    os.symlink(s.runs, models/'models')
    fit_prior(read_train(s.ph/'train.csv')).to_csv(models/'prior.csv')
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        sub, _ = predict_two_stage(s.ph, s.runs, cache_dir=s.cache, progress=False)
        exec(cell.replace('REPORT = False', 'REPORT = True'),
             dict(COMPETITION=s.ph, MODELS=models, WORKING=tmp_path, sub=sub, models=Models.of(models/'models'),
                  method='two-stage', CACHE=s.cache))
    first = int(sub.row_id.iloc[0].split('_')[0])                    # sample_submission.csv's first study
    cells = report_cells((tmp_path/'report.html').read_text())
    assert cells.row_id.str.startswith(f'{first}_').all()
    np.testing.assert_allclose(cells[list(PRED_COLS)].to_numpy(),
                               _study_rows(sub, first).loc[cells.row_id].to_numpy(), atol=1e-6)

def _bands(hit: np.ndarray, min_len: int) -> list[tuple[int, int]]:
    "Runs of True at least `min_len` long: (start, end)."
    edges = np.flatnonzero(np.diff(np.r_[0, hit.astype(int), 0]))
    return [(a, b) for a, b in zip(edges[::2], edges[1::2]) if b - a >= min_len]

@pytest.mark.skipif(find_chromium() is None, reason='no Chromium (Debian: apt-get install chromium)')
def test_chromium_renders_the_summary_on_a_laptop_screen(setup, tmp_path):
    "At 1366 × 900 the page is not blank and the 25 grade cells stand as a 5 × 5 grid on the screen, above the fold."
    from PIL import Image
    s = setup
    page = tmp_path/'report.html'
    page.write_text(s.html)
    img = np.asarray(Image.open(screenshot(page, tmp_path/'shot.png', 1366, 900)).convert('RGB')).astype(int)
    assert img.shape == (900, 1366, 3) and img.std() > 20
    colours = np.array([(0xdf, 0xf3, 0xe3), (0xff, 0xe3, 0xa8), (0xf7, 0xb2, 0xad)])
    cell = (np.abs(img[:, :, None] - colours).max(-1) <= 2).any(-1)
    rows = _bands(cell.sum(1) > 100, 15)
    assert len(rows) == 5, rows
    cols = _bands(cell[rows[0][0]:rows[-1][1]].sum(0) > 10, 60)
    assert len(cols) == 5, cols
    assert rows[-1][1] < 900 and cols[-1][1] < 1366
    widths = [b - a for a, b in cols]
    assert max(widths) - min(widths) <= 4
