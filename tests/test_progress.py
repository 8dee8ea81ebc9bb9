"""Delayed progress bars of the kit's training loops."""

from recsys_kit.progress import DELAY_S, progress


def test_progress_yields_every_item_quietly(capsys):
    assert list(progress(range(5), "epochs")) == [0, 1, 2, 3, 4]
    assert DELAY_S > 0
    assert "epochs" not in capsys.readouterr().err  # a quick loop shows no bar
