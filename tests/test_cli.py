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
    assert 'score: 0.7897' in r.stdout and 'any_severe_spinal: 0.6980' in r.stdout

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
