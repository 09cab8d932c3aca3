"""The dialogs (modal screens) that screens open; each returns a typed result."""
