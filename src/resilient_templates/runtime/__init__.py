"""The runtime that runs inside failure containers: analysis and notification.

Import budget: stdlib, ``resilient_templates.policy`` and ``resilient_templates.errors`` only
at import time. Anything heavier (re2, Jinja2, psycopg) is imported inside the function that
needs it. ``tests/test_imports.py`` enforces this.
"""
