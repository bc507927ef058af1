"""`panel serve tests/ui/cytometry_app.py`: the studio on generated cytometry cells, for the
Populations browser test (and a first try of that workflow by hand).

2,000 cells drawn from the example knowledge table (`app.demo.example_table`: Pop1 to Pop6 over
markers M1 to M10, in two batches); each page gets its own copy, as if each user had loaded the
same file. A user who has a run opens on it, as in `panel serve app`.
"""
import panel as pn

from app.demo import CYTOMETRY_TITLE, cytometry_demo
from app.runs import REGISTRY
from app.studio import Studio
from app.users import session_owner

N_CELLS = 2000

pn.extension("tabulator", "filedropper", notifications=True)
owner, new_owner = session_owner()
latest = None if new_owner else REGISTRY.latest_of(owner)
if latest is not None and latest.adata is not None:
    Studio().page().servable()  # where this user left off: their latest run, its cells and model
else:
    Studio(cytometry_demo(N_CELLS), title=CYTOMETRY_TITLE).page().servable()
