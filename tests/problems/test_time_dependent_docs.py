"""The python examples of docs/time_dependent.md run and print what they say."""

import contextlib
import io
import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "time_dependent.md"


def test_time_dependent_examples_run(one_thread):
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.DOTALL)
    assert len(blocks) == 4
    namespace: dict = {}
    for block in blocks:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(block, str(DOC), "exec"), namespace)
        expected = [c.strip() for c in re.findall(r"print\(.*\)\s*#\s*(.+)", block)]
        assert out.getvalue().splitlines() == expected
