"""`panel serve tests/ui/cytometry_app.py`: the studio on generated cytometry cells, for the
Populations browser test (and a first try of that workflow by hand).

2,000 cells drawn from the example knowledge table (`app.demo.example_table`: Pop1 to Pop6 over
markers M1 to M10, in two batches); each page gets its own copy, as if each user had loaded the
same file.
"""
import panel as pn

from app.demo import CYTOMETRY_TITLE, cytometry_demo
from app.studio import Studio

N_CELLS = 2000

pn.extension("tabulator", "filedropper", notifications=True)
Studio(cytometry_demo(N_CELLS), title=CYTOMETRY_TITLE).page().servable()
