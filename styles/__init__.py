"""coevo's stylesheets, installed as the package `coevo_tui.styles` (pyproject.toml maps it
to this folder): app.tcss for what is app-wide, then one .tcss per screen, and dialogs.tcss
for the dialogs. Each screen loads its own through its CSS_PATH; theme variables only."""
