"""What `panel serve app` runs, once per browser session: a fresh studio on the demo data."""
import panel as pn

from app.studio import Studio

pn.extension("tabulator", "filedropper", notifications=True)
Studio().page().servable()
