"""Progress bars of the kit: delayed, switchable kit-wide (and by TQDM_DISABLE), log-friendly."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recsys_kit import progress as P
from recsys_kit.progress import DELAY_S, progress


@pytest.fixture(autouse=True)
def _clean_switch(monkeypatch):
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    monkeypatch.delenv(P.ENV_SWITCH, raising=False)
    P.set_enabled(None)
    yield
    P.set_enabled(None)


@pytest.fixture()
def at_once(monkeypatch):
    """Show immediately and log every update (no waiting in tests)."""
    monkeypatch.setattr(P, "DELAY_S", 0.0)
    monkeypatch.setattr(P, "LOG_INTERVAL_S", 0.0)


def test_progress_yields_every_item_quietly(capsys):
    assert list(progress(range(5), "epochs")) == [0, 1, 2, 3, 4]
    assert DELAY_S > 0
    assert "epochs" not in capsys.readouterr().err  # a quick loop shows no bar


def test_logs_get_plain_lines_without_carriage_returns(capsys, at_once):
    assert not P.interactive()  # pytest's captured stderr is not a terminal
    assert list(progress(range(3), "ALS iterations")) == [0, 1, 2]
    err = capsys.readouterr().err
    assert "\r" not in err
    lines = err.splitlines()
    assert lines[0].startswith("ALS iterations: 1/3 running")
    assert lines[-1].startswith("ALS iterations: 3/3 done")


@pytest.mark.parametrize(
    ("env", "value"),
    [("TQDM_DISABLE", "1"), ("TQDM_DISABLE", "true"), ("RECSYS_PROGRESS", "0")],
)
def test_environment_switches_every_bar_off(monkeypatch, capsys, at_once, env, value):
    monkeypatch.setenv(env, value)
    assert not P.enabled()
    list(progress(range(3), "epochs", disable=False))  # even when the caller asks for one
    bar = P.progress_bar(4, "steps", disable=False)
    bar.update()
    bar.close()
    assert capsys.readouterr().err == ""


def test_tqdm_disable_zero_keeps_bars(monkeypatch):
    monkeypatch.setenv("TQDM_DISABLE", "0")
    assert P.enabled()


def test_kit_wide_switch_wins_over_the_environment(monkeypatch, capsys, at_once):
    P.set_enabled(False)
    list(progress(range(3), "epochs"))
    assert capsys.readouterr().err == ""
    monkeypatch.setenv("TQDM_DISABLE", "1")
    P.set_enabled(True)
    list(progress(range(2), "epochs"))
    assert "epochs: 2/2 done" in capsys.readouterr().err
    with pytest.raises(TypeError, match="True, False or None"):
        P.set_enabled("off")


def test_interactive_output_uses_tqdm(monkeypatch, capsys, at_once):
    monkeypatch.setattr(P, "interactive", lambda stream=None: True)
    list(progress(range(3), "epochs"))
    assert "epochs" in capsys.readouterr().err  # tqdm's own bar on stderr


def test_models_honour_show_progress_and_the_switch(capsys, at_once):
    from recsys_kit.cf import ALS, BPR

    X = sp.csr_matrix(np.kron(np.eye(2), np.ones((3, 3))))
    ALS(factors=2, iterations=2, show_progress=False).fit(X)
    BPR(factors=2, epochs=2, show_progress=False, device="cpu").fit(X)
    assert capsys.readouterr().err == ""
    ALS(factors=2, iterations=2).fit(X)
    assert "ALS iterations: 2/2 done" in capsys.readouterr().err
    P.set_enabled(False)
    ALS(factors=2, iterations=2, show_progress=True).fit(X)
    BPR(factors=2, epochs=2, device="cpu").fit(X)
    assert capsys.readouterr().err == ""
