"""The `dreamgym` command, run as a user would."""

import json
import subprocess
import sys
import tempfile

# subprocesses run outside the source tree, whose dreamgym/ folder would shadow the installed package
OUTSIDE = tempfile.gettempdir()


def run(*args):
    return subprocess.run(
        cwd=OUTSIDE, args=[sys.executable, "-m", "dreamgym", *args], capture_output=True, text=True, timeout=300
    )


def test_list_shows_the_zoo():
    out = run("list")
    assert out.returncode == 0, out.stderr
    assert "Dream-HalfCheetah-v0" in out.stdout and "step-ensemble" in out.stdout and "HalfCheetah-v5" in out.stdout
    assert "Dream-HalfCheetah-RSSM-v0" in out.stdout and "rssm" in out.stdout


def test_info():
    out = run("info", "Dream-HalfCheetah-v0")
    assert out.returncode == 0, out.stderr
    assert "Box(-1.0, 1.0, (6,), float32)" in out.stdout and "context length:    1 " in out.stdout
    # the trustworthy dream's defaults are said where a user looks first
    assert "training horizon:  5 steps" in out.stdout and "penalty λ=4.996, limit τ=none" in out.stdout
    out = run("info", "Dream-HalfCheetah-RSSM-v0")
    assert out.returncode == 0 and "context length:    10" in out.stdout and "training horizon" not in out.stdout


def test_rollout_prints_return_and_speed():
    out = run("rollout", "Dream-HalfCheetah-v0", "--num-envs", "16", "--steps", "50", "--seed", "3")
    assert out.returncode == 0, out.stderr
    assert "mean return" in out.stdout and "env-steps/s" in out.stdout


def test_unknown_id_is_a_clear_error():
    out = run("info", "Dream-Nope-v0")
    assert out.returncode == 2 and "neither a registered dream id" in out.stderr


COMMANDS = (
    "list",
    "info",
    "rollout",
    "play",
    "replay",
    "record",
    "bench",
    "soak",
    "evaluate",
    "train",
    "transfer",
    "rllib",
)


def test_help_lists_every_command_with_one_line_each():
    out = run("--help")
    assert out.returncode == 0, out.stderr
    lines = {ln.split()[0]: ln for ln in out.stdout.splitlines() if ln.startswith("  ") and ln.split()}
    assert list(lines) == list(COMMANDS)
    assert all(len(ln.split()) > 2 for ln in lines.values())  # a description beside every name
    assert run().returncode == 2  # no command: the same list on stderr


def test_every_built_in_command_documents_every_option():
    from dreamgym.cli import BUILTIN

    for name, (cls, _) in BUILTIN.items():
        out = run(name, "--help")
        assert out.returncode == 0, out.stderr
        assert cls.__doc__.strip() in " ".join(out.stdout.split())
        for field in cls.__dataclass_fields__:
            assert field.replace("_", "-") in out.stdout or field == "id", (name, field)


def test_readme_forms_still_parse():
    out = run("list", "--markdown")
    assert out.returncode == 0 and out.stdout.startswith("| id | family |"), out.stderr
    out = run("info", "Dream-HalfCheetah-v0", "--json")
    assert out.returncode == 0, out.stderr
    assert "fidelity" in json.loads(out.stdout.strip().splitlines()[-1])


def test_unknown_command_and_bad_option_exit_2():
    out = run("nope")
    assert out.returncode == 2 and "unknown command 'nope'" in out.stderr and "rollout" in out.stderr
    out = run("rollout", "Dream-HalfCheetah-v0", "--num-envs", "many")
    assert out.returncode == 2 and "num-envs" in out.stderr


def test_a_plugin_command_that_cannot_load_names_the_pip_command(monkeypatch, capsys):
    from importlib.metadata import EntryPoint

    from dreamgym import cli

    ghost = EntryPoint(name="ghost", value="dreamgym.export.no_such_module:run", group=cli.GROUP)
    monkeypatch.setattr(cli, "plugin_commands", lambda: {"ghost": ghost})
    assert cli.main(["ghost", "--x"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("dreamgym ghost: error:") and 'pip install "dreamgym[export]"' in err
    assert "not installed" in cli.describe(ghost) and "dreamgym[export]" in cli.describe(ghost)


def test_plugin_commands_get_their_arguments(monkeypatch):
    from importlib.metadata import EntryPoint

    from dreamgym import cli

    got = []
    monkeypatch.setattr(cli, "plugin_commands", lambda: {"echo": EntryPoint("echo", "x:y", cli.GROUP)})
    monkeypatch.setattr(cli, "_load", lambda name, ep: lambda argv: got.append(argv) or 7)
    assert cli.main(["echo", "a", "--b", "1"]) == 7 and got == [["a", "--b", "1"]]


def test_info_of_a_multi_agent_bundle_lists_its_agents(tiny_tag):
    out = run("info", str(tiny_tag))
    assert out.returncode == 0, out.stderr
    for agent in ("adversary_0", "adversary_1", "agent_0"):
        assert f"agent {agent}:" in out.stdout
    assert "make_parallel" in out.stdout and "real windows" in out.stdout
