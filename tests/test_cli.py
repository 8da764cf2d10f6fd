"End-to-end checks of the `lumbar-rsna` command line, run as a user would run it."
import subprocess, sys
import numpy as np, pandas as pd
import pytest
from lumbar_rsna.core import read_sample_submission, validate_submission

def cli(*args, cwd=None):
    return subprocess.run([sys.executable, '-c', 'import sys; from lumbar_rsna.cli import main; sys.exit(main())', *map(str, args)], capture_output=True, text=True, cwd=cwd)

def test_prior_on_real_files_matches_sample_submission(real_csvs, tmp_path):
    out = tmp_path/'submission.csv'
    r = cli('prior', '--data', real_csvs, '--out', out)
    assert r.returncode == 0, r.stderr
    sub, sample = read_sample_submission(out), read_sample_submission(real_csvs/'sample_submission.csv')
    assert sub.row_id.tolist() == sample.row_id.tolist()
    assert list(pd.read_csv(out).columns) == list(pd.read_csv(real_csvs/'sample_submission.csv').columns)
    validate_submission(sub, [44036939])
    # the weighted prior puts more mass on Severe than the raw frequency (6%) for spinal L4/L5
    assert sub.set_index('row_id').loc['44036939_spinal_canal_stenosis_l4_l5', 'severe'] > 0.2

def test_score_reproduces_reference_points(real_csvs, tmp_path):
    from lumbar_rsna.core import read_train, fit_prior, prior_submission
    train = read_train(real_csvs/'train.csv')
    prior_submission(fit_prior(train), train.study_id).to_csv(tmp_path/'s.csv', index=False)
    r = cli('score', '--solution', real_csvs/'train.csv', '--submission', tmp_path/'s.csv')
    assert r.returncode == 0, r.stderr
    assert 'score: 0.7897' in r.stdout and 'any_severe_spinal: 0.6981' in r.stdout

def test_bad_submission_is_a_clear_error(real_csvs, tmp_path):
    pd.DataFrame({'row_id': ['4003253_spinal_canal_stenosis_l1_l2'], 'normal_mild': [1.0], 'moderate': [0.0], 'severe': [0.0]}).to_csv(tmp_path/'s.csv', index=False)
    r = cli('score', '--solution', real_csvs/'train.csv', '--submission', tmp_path/'s.csv')
    assert r.returncode == 2 and 'scored rows missing' in r.stderr and 'Traceback' not in r.stderr

def test_phantom_command_and_its_errors(tmp_path):
    r = cli('phantom', '--out', tmp_path/'ph', '--studies', 3, '--test-studies', 1, '--seed', 4)
    assert r.returncode == 0, r.stderr
    assert len(pd.read_csv(tmp_path/'ph'/'train.csv')) == 3
    before = (tmp_path/'ph'/'train.csv').read_bytes()
    r = cli('phantom', '--out', tmp_path/'ph', '--studies', 2)
    assert r.returncode == 2 and 'not empty' in r.stderr and 'Traceback' not in r.stderr
    assert (tmp_path/'ph'/'train.csv').read_bytes() == before
    r = cli('phantom', '--out', tmp_path/'x', '--studies', 0)
    assert r.returncode == 2 and 'positive integer' in r.stderr

def test_preprocess_and_predict_commands(tmp_path):
    ph = tmp_path/'ph'
    assert cli('phantom', '--out', ph, '--studies', 4, '--test-studies', 1).returncode == 0
    r = cli('preprocess', '--data', ph, '--cache', tmp_path/'cache', '--split', 'all', '--size', 32, '--workers', 1)
    assert r.returncode == 0 and 'series cached, 0 failed' in r.stdout, r.stderr
    r = cli('predict', '--data', ph, '--models', tmp_path/'none', '--out', tmp_path/'s.csv')
    assert r.returncode == 2 and 'none' in r.stderr and not (tmp_path/'s.csv').exists()

# --- hardening (issue 12): bad inputs a user or a hostile one gives the command line ---
import json, os, re, shutil, warnings
from pathlib import Path
from lumbar_rsna.cli import main, parser

ROOT = Path(__file__).resolve().parents[1]

def run_main(capsys, *args):
    "`lumbar-rsna args` in this process (fast): (exit status, stdout, stderr)."
    rc = main([str(a) for a in args]); o = capsys.readouterr()
    return rc, o.out, o.err

def one_line_error(rc, err, *names):
    assert rc == 2 and 'Traceback' not in err and len(err.strip().splitlines()) == 1, err
    for n in names: assert str(n) in err, (n, err)

@pytest.fixture(scope='module')
def tiny_run(tmp_path_factory):
    "A 12-study phantom, its cache and one tiny trained run (Sagittal T2/STIR: the fewest labels)."
    from lumbar_rsna.phantom import make_phantom
    from lumbar_rsna.train import train
    from lumbar_rsna.train import recipe
    d = tmp_path_factory.mktemp('cli')
    ph = make_phantom(d/'ph', 12, seed=0, test_studies=3, progress=False)
    train(recipe('series', 'tiny', series_type='Sagittal T2/STIR', data=str(ph), cache=str(d/'cache'), epochs=1), d/'runs'/'sagittal_t2_stir', progress=False)
    return ph, d/'runs', d/'cache'

def copy_run(runs, dst):
    shutil.copytree(runs/'sagittal_t2_stir', dst); return dst

@pytest.fixture
def unwritable(tmp_path):
    "A folder this process cannot write into (a chmod 555 folder, or /sys where the tests run as root)."
    d = tmp_path/'ro'; d.mkdir(); d.chmod(0o555)
    for c in (d, Path('/sys')):
        try: (c/'.probe').touch()
        except OSError: return c
        (c/'.probe').unlink()
    pytest.skip('no unwritable folder here')

def test_kaggle_dataset_never_deletes_its_inputs(tiny_run, tmp_path, capsys):
    "Item 1: an output folder that is or holds the models folder is refused before anything is written."
    ph, runs, _ = tiny_run
    ds = tmp_path/'DS'; run = copy_run(runs, ds/'models'/'sagittal_t2_stir')
    for models in (ds/'models', ds):
        rc, out, err = run_main(capsys, 'kaggle-dataset', '--models', models, '--out', ds, '--data', ph)
        one_line_error(rc, err, 'contains the models')
    assert (run/'best.pt').exists() and (run/'config.json').exists()

def test_kaggle_dataset_replaces_an_earlier_build(tiny_run, tmp_path, monkeypatch):
    "Item 1: a rebuild leaves no stale run folder of an earlier one (Kaggle's predict would find 'a second model')."
    import lumbar_rsna.kaggle as K
    monkeypatch.setattr(K, 'build_wheel', lambda d: Path(shutil.copy2(__file__, Path(d)/'lumbar_rsna-0-py3-none-any.whl')))
    ph, runs, _ = tiny_run
    out = tmp_path/'DS'
    K.build_kaggle_dataset(runs, out, ph)
    copy_run(runs, out/'models'/'old_run')                      # what an earlier build with another run folder left
    (out/'notes.txt').write_text('mine')
    K.build_kaggle_dataset(runs, out, ph)
    assert sorted(p.name for p in (out/'models').iterdir()) == ['sagittal_t2_stir']
    assert not (out/'notes.txt').exists() and not list(tmp_path.glob('.DS*'))
    (tmp_path/'other').mkdir(); (tmp_path/'other'/'f').write_text('x')
    with pytest.raises(FileExistsError, match='not a Kaggle dataset'): K.build_kaggle_dataset(runs, tmp_path/'other', ph)
    assert (tmp_path/'other'/'f').read_text() == 'x'

def test_kaggle_dataset_needs_data_and_says_where_the_prior_comes_from(tiny_run, tmp_path, monkeypatch, capsys):
    "Item 21: no silent phantom prior: --data is required, and the metadata names the prior's source."
    import lumbar_rsna.kaggle as K
    monkeypatch.setattr(K, 'build_wheel', lambda d: Path(shutil.copy2(__file__, Path(d)/'lumbar_rsna-0-py3-none-any.whl')))
    ph, runs, _ = tiny_run
    with pytest.raises(SystemExit): parser().parse_args(['kaggle-dataset', '--models', str(runs), '--out', str(tmp_path/'x')])
    assert '--data' in capsys.readouterr().err
    meta = json.loads((K.build_kaggle_dataset(runs, tmp_path/'DS', ph)/'dataset-metadata.json').read_text())
    assert str(ph) not in meta['description'] and 'prior fitted on train.csv' in meta['description']   # no path of this machine
    assert 'PHANTOM' in meta['description']

def test_run_config_keeps_absolute_paths_and_checks_the_dataset(tmp_path):
    "Item 11: a run trained with relative --data/--cache calibrates from another folder, and refuses a different dataset at that path."
    (tmp_path/'a').mkdir(); (tmp_path/'b').mkdir()
    assert cli('phantom', '--out', 'ph', '--studies', 9, '--test-studies', 1, cwd=tmp_path/'a').returncode == 0
    r = cli('train', '--data', 'ph', '--cache', 'cache', '--series', 'Sagittal T2/STIR', '--recipe', 'tiny', '--epochs', 1, '--out', 'run', cwd=tmp_path/'a')
    assert r.returncode == 0, r.stderr
    cfg = json.loads((tmp_path/'a'/'run'/'config.json').read_text())
    assert cfg['data'] == str(tmp_path/'a'/'ph') and cfg['cache'] == str(tmp_path/'a'/'cache') and cfg['data_id']
    assert cli('phantom', '--out', 'ph', '--studies', 9, '--test-studies', 1, cwd=tmp_path/'b').returncode == 0   # same name, elsewhere
    r = cli('calibrate', tmp_path/'a'/'run', cwd=tmp_path/'b')
    assert r.returncode == 0, r.stderr
    assert cli('phantom', '--out', 'ph', '--studies', 9, '--seed', 1, '--overwrite', cwd=tmp_path/'a').returncode == 0   # another dataset in its place
    r = cli('calibrate', tmp_path/'a'/'run', cwd=tmp_path/'b')
    assert r.returncode == 2 and 'not the dataset' in r.stderr and str(tmp_path/'a'/'ph') in r.stderr, r.stderr

def test_unwritable_output_fails_before_the_work(tiny_run, unwritable, tmp_path, capsys):
    "Item 15: a read-only output is one line at once, not a traceback after all the work."
    ph, runs, _ = tiny_run
    rc, out, err = run_main(capsys, 'train', '--data', ph, '--cache', tmp_path/'cache', '--series', 'Axial T2', '--recipe', 'tiny', '--out', unwritable/'run')
    one_line_error(rc, err, unwritable, 'not writable')
    assert not (tmp_path/'cache').exists()
    rc, out, err = run_main(capsys, 'kaggle-dataset', '--models', runs, '--data', ph, '--out', unwritable/'DS')
    one_line_error(rc, err, 'not writable')

def test_bad_files_are_named(tiny_run, tmp_path, capsys):
    "Item 16: a file that is not what it should be is named in a one-line error."
    ph, runs, _ = tiny_run
    run = copy_run(runs, tmp_path/'run')
    (run/'best.pt').write_bytes(b'not a checkpoint')
    one_line_error(*run_main(capsys, 'calibrate', run)[::2], run/'best.pt')
    run = copy_run(runs, tmp_path/'run2'); (run/'config.json').write_text('{"epochs": 1,')
    one_line_error(*run_main(capsys, 'calibrate', run)[::2], run/'config.json')
    run = copy_run(runs, tmp_path/'run3'); (run/'temperature.json').write_text('{oops')
    one_line_error(*run_main(capsys, 'predict', '--data', ph, '--models', run, '--out', tmp_path/'s.csv')[::2], run/'temperature.json')
    (tmp_path/'empty.csv').write_text('')
    one_line_error(*run_main(capsys, 'score', '--solution', tmp_path/'empty.csv', '--submission', tmp_path/'empty.csv')[::2], tmp_path/'empty.csv')
    d = tmp_path/'latin'; shutil.copytree(ph, d, ignore=shutil.ignore_patterns('*_images'))
    (d/'train.csv').write_bytes((d/'train.csv').read_bytes() + 'é'.encode('latin-1'))
    one_line_error(*run_main(capsys, 'prior', '--data', d, '--out', tmp_path/'s.csv')[::2], d/'train.csv', 'UTF-8')
    one_line_error(*run_main(capsys, 'predict', '--data', ph, '--models', runs, '--prior', ph/'train.csv', '--out', tmp_path/'s.csv')[::2], ph/'train.csv', 'prior')

@pytest.mark.parametrize('opt,val,msg', [('--epochs', 0, 'epochs'), ('--image-size', 0, 'image_size'), ('--freeze', 2, 'freeze'),
                                         ('--slices', 0, 'slices'), ('--cache-size', 0, 'cache_size')])
def test_train_settings_are_validated(opt, val, msg, tmp_path, capsys):
    "Item 17: impossible settings are refused before any work."
    rc, out, err = run_main(capsys, 'train', '--data', tmp_path/'none', '--series', 'Axial T2', '--recipe', 'tiny', '--out', tmp_path/'run', opt, val)
    one_line_error(rc, err, msg)

def test_weights_that_are_not_weights(tiny_run, tmp_path, capsys):
    "Item 17: a --weights file that is not weights is named in a one-line error."
    ph, _, cache = tiny_run
    (tmp_path/'w.safetensors').write_bytes(b'junk' * 10); (tmp_path/'w.pt').write_bytes(b'junk' * 10)
    for w in (tmp_path/'w.safetensors', tmp_path/'w.pt'):
        rc, out, err = run_main(capsys, 'train', '--data', ph, '--cache', cache, '--series', 'Sagittal T2/STIR', '--recipe', 'tiny', '--out', tmp_path/w.suffix, '--weights', w)
        one_line_error(rc, err, w, 'weights')

def test_full_recipe_needs_starting_weights(tiny_run, tmp_path, capsys):
    """Issue 21: the full recipe expects ImageNet features, so without --weights or --pretrained it is refused in one
    line naming the three flags, before any work; with --random-init it trains from random weights, freezing nothing."""
    ph, _, cache = tiny_run
    start = ('train', '--data', ph, '--cache', cache, '--series', 'Sagittal T2/STIR', '--out', tmp_path/'run')
    rc, out, err = run_main(capsys, *start)
    one_line_error(rc, err, '--weights FILE', '--pretrained', '--random-init')
    assert not (tmp_path/'run').exists()
    small = ('--model', 'test_efficientnet', '--image-size', 48, '--cache-size', 48, '--slices', 3, '--epochs', 1,
             '--batch-size', 4, '--n-folds', 3, '--workers', 0)
    rc, out, err = run_main(capsys, *start, *small, '--random-init')
    assert rc == 0, err
    cfg = json.loads((tmp_path/'run'/'config.json').read_text())
    assert (cfg['random_init'], cfg['freeze'], cfg['schedule'], cfg['weight_decay']) == (True, 0.0, 'cosine', 0.01)
    lines = out.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith('Sagittal T2/STIR epoch 0: train loss '), out
    assert lines[1].startswith(f"{tmp_path/'run'}: best epoch 0, validation competition score "), out
    assert 'validation weighted cross-entropy' in lines[0]                   # the series model's loss, named

def test_prior_is_smoothed_on_a_small_train_set(tmp_path):
    "Item 20: a class absent from a column of a 6-study train set is not given p≈0, and on the phantom's hidden labels the smoothed prior scores far better than the raw frequencies."
    from lumbar_rsna.core import fit_prior, prior_submission, read_train
    from lumbar_rsna.metrics import score
    assert cli('phantom', '--out', tmp_path/'ph', '--studies', 6, '--test-studies', 40).returncode == 0
    assert cli('prior', '--data', tmp_path/'ph', '--out', tmp_path/'s.csv').returncode == 0
    labels, truth = read_train(tmp_path/'ph'/'train.csv'), read_train(tmp_path/'ph'/'phantom_test_labels.csv')
    raw, smoothed = fit_prior(labels, pseudo=0), fit_prior(labels)
    assert raw.values.min() == 0 and smoothed.values.min() > 0.005
    mine, unsmoothed = score(truth, read_sample_submission(tmp_path/'s.csv'))[0], score(truth, prior_submission(raw, truth.study_id))[0]
    assert mine < unsmoothed - 0.1, (mine, unsmoothed)

def test_every_option_has_help():
    "`phantom --help` and the others say what each option does."
    sub = parser()._subparsers._group_actions[0].choices
    bare = [f'{n} {a.option_strings[0]}' for n, s in sub.items() for a in s._actions if a.option_strings and a.dest != 'help' and not a.help]
    assert bare == []

def test_warnings_print_once_on_one_line(tmp_path, capsys):
    "A warning is one line `lumbar-rsna <cmd>: warning: …`, not the message and then the line of code that raised it."
    from lumbar_rsna.core import LABEL_COLS
    pd.DataFrame([[1, *['Normal/Mild'] * 25]], columns=['study_id', *LABEL_COLS]).to_csv(tmp_path/'train.csv', index=False)
    (tmp_path/'test_series_descriptions.csv').write_text('study_id,series_id,series_description\n9,90,Axial T2\n')
    (tmp_path/'sample_submission.csv').write_text('row_id,normal_mild,moderate,severe\n8_spinal_canal_stenosis_l1_l2,1,0,0\n')
    before = warnings.showwarning
    rc, out, err = run_main(capsys, 'prior', '--data', tmp_path, '--out', tmp_path/'s.csv')
    assert rc == 0 and err.startswith('lumbar-rsna prior: warning: ') and len(err.strip().splitlines()) == 1, err
    assert warnings.showwarning is before

def _checkout_state():
    "The top-level entries of the checkout and everything under build/ and *.egg-info."
    return {p: p.stat().st_mtime for g in ('*', 'build/**/*', '*.egg-info/**/*') for p in ROOT.glob(g)}

def test_readme_command_line_runs_as_written(tmp_path):
    "Every line of the README's command-line walkthrough runs, in order, in a fresh folder; nothing is written into the checkout."
    block = re.search(r'## Command line\n.*?```bash\n(.*?)```', (ROOT/'README.md').read_text(), re.S).group(1)
    shim = f'lumbar-rsna() {{ "{sys.executable}" -c "import sys; from lumbar_rsna.cli import main; sys.exit(main())" "$@"; }}\n'
    before = _checkout_state()
    r = subprocess.run(['bash', '-ec', shim + block], cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert read_sample_submission(tmp_path/'submission.csv').row_id.tolist() == pd.read_csv(tmp_path/'phantom'/'sample_submission.csv').row_id.tolist()
    assert (tmp_path/'kaggle_dataset'/'prior.csv').exists() and list((tmp_path/'kaggle_submission').glob('*.ipynb'))
    assert _checkout_state() == before

def test_readme_folds_walkthrough_runs_as_written(tmp_path):
    "The README's folds walkthrough (train every fold, out-of-fold coordinates, stage 2, calibrate, cv, predict) runs as written on a tiny phantom."
    block = re.search(r'### Folds, ensembles and the CV score\n.*?```bash\n(.*?)```', (ROOT/'README.md').read_text(), re.S).group(1)
    shim = f'lumbar-rsna() {{ "{sys.executable}" -c "import sys; from lumbar_rsna.cli import main; sys.exit(main())" "$@"; }}\n'
    setup = 'lumbar-rsna phantom --out phantom --studies 12 --test-studies 3 --seed 0\n'
    r = subprocess.run(['bash', '-ec', shim + setup + block], cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert sorted(p.parent.name for p in (tmp_path/'runs'/'grade').glob('fold*/best.pt')) == ['fold0', 'fold1', 'fold2']
    assert 'CV score' in r.stdout and pd.read_csv(tmp_path/'cv.csv').folds.tolist() == ['fold 0', 'fold 1', 'fold 2', 'all']
    assert read_sample_submission(tmp_path/'submission.csv').row_id.tolist() == pd.read_csv(tmp_path/'phantom'/'sample_submission.csv').row_id.tolist()
