"""`python -m engine ...` (and `torchrun -m engine ...`): the headless command line."""
import os
import sys

from engine.cli import main
from engine.training import exit_rank

status = main()
if int(os.environ.get("WORLD_SIZE", "1")) > 1:
    exit_rank(status)  # a safe end for a torchrun rank: see engine/training/distributed.py
sys.exit(status)
