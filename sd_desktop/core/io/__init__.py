"""Images in and out of the core, their parameters (A1111 text, our JSON, other apps' formats), and output files."""
