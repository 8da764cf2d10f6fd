import os
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT.parent/'shared'/'data'/'rsna2024_real'

@pytest.fixture
def real_csvs():
    "The real competition CSVs beside the checkout; the test is skipped when they are absent."
    if not (REAL/'train.csv').exists(): pytest.skip(f'real competition CSVs not found at {REAL}')
    return REAL
