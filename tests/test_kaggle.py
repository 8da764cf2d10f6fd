"The Kaggle side: the committed submission notebook is the one the package writes; the wheel builds offline."
import zipfile
import nbformat
from lumbar_rsna.kaggle import kaggle_notebook, project_root, NOTEBOOK_PATH, build_wheel

def _cells(nb): return [(c.cell_type, c.source) for c in nb.cells]

def test_committed_notebook_is_current():
    committed = nbformat.read(project_root()/NOTEBOOK_PATH, as_version=4)
    assert _cells(committed) == _cells(kaggle_notebook()), 'kaggle_submission/ is stale: run `lumbar-rsna kaggle-notebook`'

def test_wheel_builds_offline_with_every_module(tmp_path):
    "The wheel holds every module, and building it writes nothing into the checkout (no build/, no *.egg-info)."
    root = project_root()
    state = lambda: {p: p.stat().st_mtime for g in ('*', 'build/**/*', '*.egg-info/**/*') for p in root.glob(g)}
    before = state()
    whl = build_wheel(tmp_path)
    names = set(zipfile.ZipFile(whl).namelist())
    mods = {p.name for p in (root/'lumbar_rsna').glob('*.py')}
    assert {f'lumbar_rsna/{m}' for m in mods} <= names
    assert state() == before
