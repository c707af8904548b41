"""The golden cases through `meshswitch inject` (the webhook path is tests/api/test_golden_webhook.py)."""

from __future__ import annotations

import pytest
import yaml

from tests.golden import CASES, GOLDEN, check
from tests.helpers import validate_pod
from webhook.cli.main import main


@pytest.mark.parametrize("name", CASES)
def test_golden_case_through_the_cli(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inject", "-f", str(GOLDEN / "cases" / f"{name}.yaml")]) == 0
    injected = yaml.safe_load(capsys.readouterr().out)
    validate_pod(injected)
    check(name, injected)


def test_there_are_golden_cases() -> None:
    assert len(CASES) >= 4
