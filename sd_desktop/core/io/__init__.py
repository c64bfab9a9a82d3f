"""Images in and out of the core, their parameters (A1111 text and our JSON), and output files."""
