"""Tests of the musubi command line."""
