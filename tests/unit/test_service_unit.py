"""configs/gateway.service: a unit systemd can read, starting this gateway's CLI on a config, as a
service user, restarted on failure, draining on SIGTERM."""

from __future__ import annotations

import configparser
import shlex
from pathlib import Path

from gateway.cli import main

UNIT = Path(__file__).resolve().parents[2] / "configs" / "gateway.service"


def test_the_unit_runs_the_gateway_cli_as_a_service() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]  # systemd keys are case-sensitive
    unit.read_string(UNIT.read_text())
    service = unit["Service"]
    argv = shlex.split(service["ExecStart"])
    assert argv[0].endswith("/bin/gateway") and argv[1:3] == ["serve", "--config"]
    assert service["User"] != "root" and service["Restart"] == "on-failure"
    assert service["KillSignal"] == "SIGTERM" and int(service["TimeoutStopSec"]) >= 30
    assert unit["Install"]["WantedBy"] == "multi-user.target"
    try:  # the CLI accepts exactly those arguments (its parser exits 0 on --help after them)
        main([*argv[1:], "--help"])
    except SystemExit as stop:
        assert stop.code == 0
