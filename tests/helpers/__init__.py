"""Shared test helpers: hand-written incidents and ingest shortcuts."""
