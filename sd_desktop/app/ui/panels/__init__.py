"""The side panel's parts: prompt, parameters, interpolation."""
