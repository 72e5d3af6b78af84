"""The browser dashboard (Mesa SolaraViz): controls, live plots and a provider table.

Needs the ``viz`` extra.  The model never imports this package; it builds on
``sim.model.Market`` through ``sim.viz.market.DashboardMarket``.

Modules: ``params`` (which controls exist and how they change a config, no UI),
``market`` (the model class SolaraViz re-creates on Reset), ``figures`` (plots
and the table from the recorder's frames, no UI), ``components`` (Solara
components), ``app`` (the page served by ``aicloud dashboard``).
"""

# The server process reads its base config from here (``solara run`` imports the app module itself).
CONFIG_ENV = "AICLOUD_DASHBOARD_CONFIG"
