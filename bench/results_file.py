"""Where the benchmarks leave their figures: bench/results/<name>.json (git-ignored)."""
import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def save(name: str, result: dict) -> Path:
    """Print the result as JSON and write it to bench/results/<name>.json."""
    text = json.dumps(result, indent=2)
    print(text)
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(text)
    return path
