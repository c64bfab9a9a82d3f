"""The app's state: observable objects with no QtWidgets import (an import-linter contract keeps it so)."""
