"""README.md's Python API block runs as written, at 32 px and a few steps (issue 31)."""

import os
import re
from pathlib import Path

import pytest

from synthmed.data.sources import phantom_dataset, split_three

README = Path(__file__).resolve().parents[1] / "README.md"
SETTINGS = 'data, steps, budget = "work/mine", 2000, "cpu"'


def _python_api_block() -> str:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("### Python API") :]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


@pytest.mark.slow
def test_readme_python_api_trains_samples_and_evaluates(tmp_path: Path, capsys) -> None:
    code = _python_api_block()
    assert SETTINGS in code  # the line the test turns to tiny settings
    parts = split_three(phantom_dataset(12, 32, seed=0), val=4, test=0)
    for role, part in parts.items():
        part.save(tmp_path / "work" / "mine" / role)
    tiny = code.replace(SETTINGS, 'data, steps, budget = "work/mine", 2, "2"')
    tiny = tiny.replace(
        'synthmed.generate(pipe, "synth/", 200)', 'synthmed.generate(pipe, "synth/", 8)'
    )
    tiny = tiny.replace("seeds=(0, 1, 2, 3)", "seeds=(0, 1), device='cpu', progress=False")
    fidelity = "synthmed.FidelitySettings(extractor_steps=2, critic_steps=0, device='cpu')"
    assert "utility=settings," in code  # where the test adds tiny fidelity settings
    tiny = tiny.replace("utility=settings,", f"utility=settings, fidelity={fidelity},")
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        exec(compile(tiny, "README.md", "exec"), {})
    finally:
        os.chdir(cwd)
    assert (tmp_path / "runs" / "geo" / "generator" / "provenance.json").is_file()
    assert len(list((tmp_path / "synth" / "images").glob("*.png"))) == 8
    import synthmed

    pipe = synthmed.Pipeline.from_folders(tmp_path / "runs" / "geo", tmp_path / "runs" / "tex")
    a, b = pipe(3, seed=5), pipe.sample(3, seed=5)
    assert (a.images == b.images).all() and (a.masks == b.masks).all()
    assert "real+dual GAN" in capsys.readouterr().out
    assert (tmp_path / "report" / "report.html").is_file()
