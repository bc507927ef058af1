"""What `panel serve app` runs, once per browser session: the user's studio (where they left off, else the demo).

A client the access rule refuses (app/access.py) gets only the refusal text, never a studio.
"""
import panel as pn

from app.access import REFUSAL, session_refused
from app.escape import markdown_text
from app.studio import Studio

pn.extension("tabulator", "filedropper", notifications=True)
if session_refused(pn.state.curdoc):
    pn.pane.Markdown(markdown_text(REFUSAL), css_classes=["hanami-refusal"]).servable()
else:
    Studio().page().servable()
