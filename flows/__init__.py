"""Prefect flows and the command-line interface of normloom."""
