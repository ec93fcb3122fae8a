"""Argilla: dataset settings, push, pull and agreement (see issue 4)."""
