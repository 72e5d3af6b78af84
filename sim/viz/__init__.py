"""The browser dashboard (Solara, on the Mesa model): controls, live plots and a provider table.

Needs the ``viz`` extra.  The model never imports this package; it builds on
``sim.model.Market`` through ``sim.viz.market.DashboardMarket``.

Modules: ``params`` (which controls exist and how they change a config, no UI),
``market`` (the model class Reset re-creates from the controls), ``figures`` (plots
and the table from the recorder's frames, no UI), ``components`` (the plots and
table as Solara components), ``controls`` (Reset/Play/Step and the settings),
``page`` (the layout), ``app`` (the page served by ``aicloud dashboard``).
"""

# The server process reads its base config from here (``solara run`` imports the app module itself).
CONFIG_ENV = "AICLOUD_DASHBOARD_CONFIG"
