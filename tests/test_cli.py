import re
import subprocess
import sys

import pytest

from tlc_hf.cli import main

SUBCOMMANDS = ("params", "train", "sweep", "plan", "compress", "evaluate", "bench", "card", "push", "demo")


def call(argv):
    try:
        return main(argv)
    except SystemExit as exit_info:
        return exit_info.code


def test_help_lists_the_nine_subcommands():
    result = subprocess.run(
        [sys.executable, "-m", "tlc_hf.cli", "--help"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0
    listed = re.findall(r"^    (\w+)", result.stdout, flags=re.MULTILINE)
    assert tuple(listed) == SUBCOMMANDS


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_each_subcommand_answers_help(name, capsys):
    assert call([name, "--help"]) == 0
    assert f"usage: tlc-hf {name}" in capsys.readouterr().out


def test_unknown_flag_is_an_error(capsys):
    assert call(["params", "roberta-base", "--bogus"]) == 2
    assert "unrecognized arguments: --bogus" in capsys.readouterr().err


def test_bad_value_is_a_clean_error_not_a_traceback(tmp_path, capsys):
    out = tmp_path / "never"
    code = call(["train", "--config", "bert-tiny", "--time_budget", "soon", "--output_dir", str(out)])
    assert code == 1
    err = capsys.readouterr().err
    assert "time_budget='soon' is not a duration" in err and "Traceback" not in err
    assert not out.exists()


@pytest.mark.parametrize("argv", [["--help"], ["params", "--help"], ["evaluate", "--help"], ["demo", "--help"]])
def test_help_does_not_import_torch(argv):
    code = (
        f"import sys\nfrom tlc_hf.cli import main\ntry:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
        "print('torch' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.stdout.strip().splitlines()[-1] == "False", result.stderr


def test_progress_bars_in_a_log_file_redraw_at_most_every_ten_seconds():
    code = (
        "import os, sys\nfrom tlc_hf.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "import io\nfrom tqdm import tqdm\nprint(os.environ.get('TQDM_MININTERVAL'), tqdm(total=1, file=io.StringIO()).mininterval)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.stdout.strip().splitlines()[-1] == "10 10.0", result.stderr
