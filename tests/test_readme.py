"README.md and nbs/index.ipynb (its twin in the docs) say the same thing; the README names exactly two commands."
import json, re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

def test_index_notebook_is_the_readme():
    nb = json.loads((ROOT/'nbs'/'index.ipynb').read_text())
    md = '\n'.join(''.join(c['source']) for c in nb['cells'] if c['cell_type'] == 'markdown')
    assert md.strip() == (ROOT/'README.md').read_text().strip()

def test_readme_two_commands_match_ci():
    block = re.search(r'## The two commands\n\n```bash\n(.*?)```', (ROOT/'README.md').read_text(), re.S).group(1)
    cmds = [l.split('#')[0].strip() for l in block.strip().splitlines()]
    assert cmds == ['make demo', 'make test']
    assert 'make test' in (ROOT/'.ci'/'run').read_text()
