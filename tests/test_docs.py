"""The python examples of docs/fit_and_recover.md run as written."""

import re
from pathlib import Path

import torch

DOC = Path(__file__).resolve().parents[1] / "docs" / "fit_and_recover.md"


def test_fit_and_recover_examples_run():
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.DOTALL)
    assert len(blocks) == 3
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        namespace: dict = {"print": lambda *args, **kwargs: None}
        for block in blocks:
            exec(compile(block, str(DOC), "exec"), namespace)
    finally:
        torch.set_num_threads(before)
    assert namespace["result"].status.value == "not_checked"  # the far-from-solution example
    assert namespace["cp"].success and namespace["net"].status.value == "not_checked"
