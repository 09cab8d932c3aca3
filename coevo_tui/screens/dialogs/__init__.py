"""coevo's dialogs: modal screens that ask one thing and return a typed result.

One module per dialog. A screen opens a dialog by importing it (and `CoevoScreen.ask` for
a worker to await the answer); dialogs import no screen, so they can be shared (the
rationale dialog serves Label and Compare). Full screens open each other only through the
registry (`screens/registry.py`, `app.open_screen`). The help dialog (`?`) is opened by the
app over any screen. Their styles are in `styles/dialogs.tcss`.
"""
