"""The engine stays headless: importing it loads no UI library (the CLI and workers run without one)."""
import subprocess
import sys


def test_import_engine_loads_no_ui_library():
    code = (
        "import sys, engine, engine.families, engine.cli\n"
        "ui = sorted({m.split('.')[0] for m in sys.modules} & {'panel', 'bokeh', 'holoviews', 'datashader'})\n"
        "print(','.join(ui))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""
