"""The dashboard: its routes over HTTP, and its pages in Chromium."""
