"""The widgets: they bind to the state layer and lay it out."""
