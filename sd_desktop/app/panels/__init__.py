"""The side panel's parts: prompt, parameters, interpolation (the history dock is history.py)."""
