"""EventLog: cursors, thread safety, bounded memory; the JSONL writer and follower."""
import json
import math
import threading

import pytest
from event_reader import follow

from engine.training.events import EventLog
from engine.training.jsonl import JsonlFollower, write_jsonl


def test_cursor_reads_each_event_once():
    log = EventLog()
    log.append("phase_start", data={"index": 0})
    log.append("step", step=0, data={"total": 1.0})
    first, cursor = log.events_since(0)
    assert [e.seq for e in first] == [0, 1] and cursor == 2
    assert log.events_since(cursor) == ([], 2)
    log.append("step", step=1, data={"total": 0.5})
    new, cursor = log.events_since(cursor)
    assert [e.seq for e in new] == [2] and cursor == 3
    assert log.last("step").data["total"] == 0.5


def test_unknown_kind_is_rejected():
    with pytest.raises(ValueError, match="unknown event kind"):
        EventLog().append("bogus")


def test_step_frame_has_one_column_per_term():
    log = EventLog()
    log.append("step", step=0, epoch=0, phase="a", data={"total": 1.0, "recon": 0.7, "raw/recon": 0.7})
    log.append("validation", data={"total": 2.0})
    log.append("step", step=1, epoch=0, phase="a", data={"total": 0.9, "value": 0.2})
    frame = log.step_frame()
    assert list(frame["step"]) == [0, 1]
    assert {"total", "recon", "raw/recon", "value"} <= set(frame.columns)
    assert math.isnan(frame["value"][0]) and frame["recon"][0] == 0.7
    assert EventLog().step_frame().empty


def test_concurrent_reader_sees_every_seq_exactly_once():
    log = EventLog(recent_steps=1_000_000)
    reader, seen = follow(log)
    writers = [
        threading.Thread(target=lambda: [log.append("step", step=i) for i in range(3000)]) for _ in range(3)
    ]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join()
    log.append("finished")
    reader.join(timeout=30)
    assert seen == list(range(9001))


def test_downsampling_bounds_memory_and_keeps_recent_history_exact():
    log = EventLog(recent_steps=100, archived_steps=50)
    for step in range(20_000):
        log.append("step", step=step, data={"task": step % 2, "total": float(step)})
        if step % 1000 == 0:
            log.append("validation", step=step, data={"total": 1.0})
    events = log.snapshot()
    steps = [e for e in events if e.kind == "step"]
    others = [e for e in events if e.kind != "step"]
    # Bounded: the exact window plus at most `archived_steps` older steps, plus non-step events.
    assert len(steps) <= 100 + 50
    assert len(others) == 20 and len(log) == len(events)
    # The last 100 steps are all there, in order, with contiguous seqs.
    recent = steps[-100:]
    assert [e.step for e in recent] == list(range(19_900, 20_000))
    # Older steps are thinned evenly within each task's series, and both series survive.
    stride = log.stride
    assert stride > 1 and stride & (stride - 1) == 0
    archived = steps[:-100]
    assert {e.data["task"] for e in archived} == {0, 1}
    assert all((e.step // 2) % stride == 0 for e in archived)
    # A reader at 0 gets what is held, in seq order, and a cursor past everything.
    new, cursor = log.events_since(0)
    assert [e.seq for e in new] == sorted({e.seq for e in new}) and cursor == log.next_seq
    # A reader whose cursor fell into the thinned part resumes at the next held event.
    lagging = archived[len(archived) // 2].seq + 1
    new, _ = log.events_since(lagging)
    assert new[0].seq >= lagging and new[-1].seq == log.next_seq - 1


def test_write_jsonl_appends_valid_lines_from_a_cursor(tmp_path):
    log = EventLog()
    log.append("step", step=0, data={"total": float("nan"), "lr": 0.01})
    path = tmp_path / "events.jsonl"
    cursor = write_jsonl(log, path)
    log.append("finished", data={"state": "finished"})
    cursor = write_jsonl(log, path, cursor)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["kind"] for line in lines] == ["step", "finished"] and cursor == 2
    assert lines[0]["data"] == {"total": None, "lr": 0.01}


def test_follower_writes_events_as_they_come(tmp_path):
    log = EventLog()
    path = tmp_path / "run" / "events.jsonl"
    follower = JsonlFollower(log, path, interval=0.01).start()
    for step in range(50):
        log.append("step", step=step, data={"total": 1.0 / (step + 1)})
    log.append("finished")
    follower.close()
    seqs = [json.loads(line)["seq"] for line in path.read_text().splitlines()]
    assert seqs == list(range(51))
