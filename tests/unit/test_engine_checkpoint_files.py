"""What a kill leaves behind: stale checkpoint temporaries, an event file running past the
checkpoint; and checkpoint paths that are not checkpoints."""
import json

import pytest
import torch

from engine.data.errors import InputError
from engine.training import EventLog, load_checkpoint, save_checkpoint
from engine.training.jsonl import keep_events_until


def test_a_checkpoint_write_removes_what_interrupted_writes_left(tmp_path):
    stale = [tmp_path / ".last.pt.abc123.tmp", tmp_path / ".last.pt.zz.tmp"]
    for path in stale:
        path.write_bytes(b"half")
    (tmp_path / ".other.pt.q.tmp").write_bytes(b"another file's")
    save_checkpoint(tmp_path / "last.pt", {"value": 1})
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.pt.q.tmp", "last.pt"]


def test_loading_a_folder_or_a_missing_file_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="is a folder, not a checkpoint file"):
        load_checkpoint(tmp_path)
    with pytest.raises(InputError, match="nothing.pt: does not exist"):
        load_checkpoint(tmp_path / "nothing.pt")
    torch.save(torch.nn.Linear(2, 2), tmp_path / "module.pt")
    with pytest.raises(InputError) as caught:
        load_checkpoint(tmp_path / "module.pt")
    assert "not a Hanami checkpoint" in str(caught.value) and "weights_only" not in str(caught.value)


def test_the_event_file_is_cut_back_to_the_checkpoint(tmp_path):
    path = tmp_path / "events.jsonl"
    lines = [json.dumps({"seq": seq, "kind": "step"}) + "\n" for seq in range(6)]
    path.write_text("".join(lines) + '{"seq": 6, "ki')
    assert keep_events_until(path, 3) == 4
    assert path.read_text() == "".join(lines[:4])
    assert keep_events_until(path, 10) == 4 and keep_events_until(tmp_path / "none.jsonl", 3) == 0


def test_an_empty_event_log_continues_the_numbering():
    log = EventLog()
    log.continue_from(12)
    assert log.append("step").seq == 12 and log.events_since(0)[0][0].seq == 12
    with pytest.raises(RuntimeError):
        log.continue_from(3)
