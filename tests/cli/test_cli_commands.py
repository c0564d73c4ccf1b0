"""The command line as operators use it: real processes, exit codes, messages."""

from __future__ import annotations

import re
from pathlib import Path


from calsync.cli import main

README = (Path(__file__).parents[2] / "README.md").read_text()


def commands():
    """(full name, command) of every command, the subcommands of groups (`auth google`) too."""
    import click

    for name, command in main.commands.items():
        yield name, command
        if isinstance(command, click.Group):
            for sub, subcommand in command.commands.items():
                yield f"{name} {sub}", subcommand


def test_every_command_has_help_and_is_in_the_readme():
    for name, command in commands():
        assert command.help, f"calsync {name} has no help text"
        assert re.search(rf"calsync[^\n`]*\b{name}\b", README), f"README does not show `calsync {name}`"


def test_every_option_is_in_the_readme():
    import click

    for name, command in commands():
        for param in command.params:
            if not isinstance(param, click.Option) or param.hidden:
                continue
            for flag in [*param.opts, *param.secondary_opts]:
                if flag.startswith("--") and flag != "--help":
                    assert flag in README, f"README does not mention `calsync {name} {flag}`"


def test_shell_completion_as_documented():
    import os
    import subprocess
    import sys

    assert "_CALSYNC_COMPLETE=bash_source calsync" in README
    calsync = Path(sys.executable).with_name("calsync")
    done = subprocess.run([str(calsync)], env={**os.environ, "_CALSYNC_COMPLETE": "bash_source"},
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0 and "_calsync_completion" in done.stdout


def test_sync_exits_zero_and_reports_each_calendar(cli, make_config):
    done = cli("--config", str(make_config()), "sync")
    assert done.returncode == 0, done.stderr
    assert "alice@acme.test: created 3" in done.stdout
    assert "Salesforce API calls:" in done.stdout


def test_sync_exits_one_when_a_calendar_fails(cli, make_config, google_emu):
    google_emu.backend.add_user("erin@acme.test", "Erin", "UTC")
    path = make_config(sync={"users": ["alice@acme.test", "erin@acme.test"]})
    done = cli("--config", str(path), "sync")
    assert done.returncode == 1
    assert "erin@acme.test" in done.stdout and "FAILED" in done.stdout


def test_bad_configuration_exits_78_naming_the_key(cli, tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('[sync]\nusers = ["a@x.test"]\nlookback_days = "30"\n')
    done = cli("--config", str(path), "sync")
    assert done.returncode == 78
    assert "sync.lookback_days" in done.stderr


def test_missing_configuration_file_is_a_clear_error(cli, tmp_path):
    done = cli("--config", str(tmp_path / "nope.toml"), "sync")
    assert done.returncode == 78
    assert "not found" in done.stderr
    assert "Traceback" not in done.stderr


def test_unknown_user_option_is_a_usage_error(cli, make_config):
    done = cli("--config", str(make_config()), "sync", "--user", "zed@acme.test")
    assert done.returncode == 2
    assert "not a configured user" in done.stderr


def test_log_lines_never_carry_the_access_token(cli, make_config, tmp_path):
    path = make_config()
    token = re.search(r'access_token = "([^"]+)"', path.read_text()).group(1)
    done = cli("--config", str(path), "--log-level", "debug", "sync")
    assert done.returncode == 0
    assert token not in done.stderr and token not in done.stdout
    assert 'msg="created"' in done.stderr


def test_sandbox_command_syncs_the_demo_company(cli, tmp_path):
    done = cli("sandbox", "--dir", str(tmp_path / "sbx"), "--google-port", "0", "--salesforce-port", "0")
    assert done.returncode == 0, done.stderr
    assert "Salesforce Events that landed:" in done.stdout
    assert done.stdout.count("Globex renewal: pricing review") == 2
    assert (tmp_path / "sbx" / "calsync.toml").exists()


def test_sandbox_prints_one_event_per_line(cli, tmp_path):
    # echo escapes control characters (data from outside never reaches the terminal raw): a
    # table handed to it whole came out on one line with literal "\\n" between the rows.
    done = cli("sandbox", "--dir", str(tmp_path / "sbx"), "--google-port", "0", "--salesforce-port", "0")
    assert done.returncode == 0, done.stderr
    rows = done.stdout.split("Salesforce Events that landed:", 1)[1].strip().splitlines()
    assert "\\n" not in done.stdout
    assert rows[0].split()[:2] == ["Assigned", "To"]
    assert sum(1 for row in rows if "Globex renewal: pricing review" in row) == 2
    assert len(rows) >= 4


def test_scripts_resync_passes_global_options_wherever_they_are(make_config, tmp_path):
    import os
    import subprocess
    import sys

    script = Path(__file__).parents[2] / "scripts" / "resync"
    venv = Path(sys.executable).parent.parent  # this environment's calsync
    path = make_config()
    done = subprocess.run(
        ["bash", str(script), "--dry-run", "-c", str(path), "--user", "alice@acme.test",
         "--log-level=debug"],
        capture_output=True, text=True, timeout=60, env={**os.environ, "CALSYNC_VENV": str(venv)},
    )
    assert done.returncode == 0, done.stderr
    assert "would create" in done.stdout and "dry run: nothing was written" in done.stdout
    assert 'msg="http request"' in done.stderr  # --log-level reached calsync


def test_documented_command_lines_parse():
    """Every `calsync ...` line of a code block in README.md or systemd/README.md names a real
    command with real options (click's own parser, with --help at the end); optional parts in
    [...] and alternatives in (... | ...) are left out."""
    import shlex

    from click.testing import CliRunner

    docs = README + (Path(__file__).parents[2] / "systemd" / "README.md").read_text()
    blocks = re.findall(r"^\s*```[a-z]*\n(.*?)^\s*```", docs, re.M | re.S)
    # `calsync ...`, `/opt/calsync/bin/calsync ...` and `$C ...` (systemd/README.md's
    # C=/opt/calsync/bin/calsync), under sudo or not.
    lines = {"calsync " + (m.group(1) or m.group(2)) for block in blocks
             for m in re.finditer(r"^\s*(?:\$ )?(?:sudo -u calsync )?(?:(?:/opt/calsync/bin/)?calsync (.*)|\$C (.*))$",
                                  block, re.M)}
    assert len(lines) >= 20, lines
    for line in sorted(lines):
        text = re.split(r"\s#", line)[0].replace("...", "")
        while re.search(r"\[[^\[\]]*\]|\([^()]*\)", text):
            text = re.sub(r"\[[^\[\]]*\]|\([^()]*\)", "", text)
        words = shlex.split(text)[1:]
        result = CliRunner().invoke(main, [*words, "--help"])
        assert result.exit_code == 0, f"{line!r}: {result.output}"
