"""Agents and workflows for Musubi, shipped as data: see agents.toml and workflows.toml beside this file."""
