"""The training runtime: Trainer, event stream, schedules and stories, checkpoints, devices, DDP."""
from engine.training.checkpoint import load_checkpoint, save_checkpoint
from engine.training.devices import resolve_device
from engine.training.distributed import DistributedContext, exit_rank
from engine.training.events import Event, EventLog
from engine.training.jsonl import JsonlFollower, write_jsonl
from engine.training.result import TrainingRun
from engine.training.schedules import WeightSchedule
from engine.training.story import Phase, Story
from engine.training.trainer import Trainer, TrainerStatus

__all__ = [
    "DistributedContext",
    "Event",
    "EventLog",
    "JsonlFollower",
    "Phase",
    "Story",
    "Trainer",
    "TrainerStatus",
    "TrainingRun",
    "WeightSchedule",
    "exit_rank",
    "load_checkpoint",
    "resolve_device",
    "save_checkpoint",
    "write_jsonl",
]
