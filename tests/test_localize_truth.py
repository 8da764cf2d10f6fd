"""`localize --report --truth FILE`: the localisation report against any coordinates file. The phantom's hidden test file
passed as --truth gives the default's report; a missing, malformed or unrelated file is one error line naming it,
given before any localising."""
import pytest
from lumbar_rsna.phantom import make_phantom
from lumbar_rsna.cli import main


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    "A tiny phantom with 3 test studies and a Sagittal T2/STIR localiser trained one epoch on it."
    d = tmp_path_factory.mktemp('truth')
    root = make_phantom(d/'ph', 8, seed=3, test_studies=3, progress=False)
    assert main(['train-localizer', '--recipe', 'tiny', '--series', 'Sagittal T2/STIR', '--data', str(root), '--cache', str(d/'cache'),
                 '--epochs', '1', '--out', str(d/'runs'/'t2')]) == 0
    return root, d


def report(trained, capsys, *extra) -> tuple[int, str, str]:
    root, d = trained
    capsys.readouterr()
    rc = main(['localize', '--data', str(root), '--models', str(d/'runs'), '--cache', str(d/'cache'), '--out', str(d/'c.csv'), '--report', *extra])
    out, err = capsys.readouterr()
    return rc, out, err


def test_truth_file_gives_the_default_report(trained, capsys):
    root, _ = trained
    rc, default, _ = report(trained, capsys)
    assert rc == 0 and 'all: 75 points' in default          # 3 test studies × 25 findings (those of series without a localiser missed)
    rc, given, _ = report(trained, capsys, '--truth', str(root/'phantom_test_coordinates.csv'))
    assert rc == 0 and given == default


def test_missing_or_malformed_truth_is_named(trained, capsys, tmp_path):
    root, _ = trained
    rc, out, err = report(trained, capsys, '--truth', str(tmp_path/'nowhere.csv'))
    assert rc == 2 and 'nowhere.csv' in err and 'wrote' not in out             # refused before localising
    bad = tmp_path/'bad.csv'
    bad.write_text('study_id,series_id,level\n1,2,L1/L2\n')
    rc, out, err = report(trained, capsys, '--truth', str(bad))
    assert rc == 2 and 'bad.csv' in err and 'missing column' in err and 'wrote' not in out
    other = tmp_path/'other.csv'
    other.write_text('study_id,series_id,instance_number,condition,level,x,y\n1,2,3,Spinal Canal Stenosis,L1/L2,10,10\n')
    rc, out, err = report(trained, capsys, '--truth', str(other))
    assert rc == 2 and 'other.csv' in err and 'labels none of the 3 localised test studies' in err


def test_labels_that_contradict_their_neighbours_are_named(trained, capsys, tmp_path):
    "A truth file whose canal points of one study are out of order: the report names them and pools the rest apart."
    import pandas as pd
    root, _ = trained
    t = pd.read_csv(root/'phantom_test_coordinates.csv')
    rc, default, _ = report(trained, capsys)
    assert 'label check' not in default                     # the phantom's labels all pass
    study = t.study_id.iloc[0]
    canal = (t.study_id == study) & (t.condition == 'Spinal Canal Stenosis')
    t.loc[canal, 'y'] = t.loc[canal, 'y'].to_numpy()[::-1]    # L1/L2 at the bottom, L5/S1 at the top
    t.to_csv(tmp_path/'upside_down.csv', index=False)
    rc, out, _ = report(trained, capsys, '--truth', str(tmp_path/'upside_down.csv'))
    lines = out.splitlines()
    assert rc == 0 and lines[-3].startswith('all: 75 points')
    assert lines[-2].startswith(f'label check: 5 of 75 labelled points contradict their neighbours (levels out of order: 5): '
                                f'study {study} Spinal Canal Stenosis L1/L2')
    assert lines[-1].startswith('labels that pass the check: 70 points')
