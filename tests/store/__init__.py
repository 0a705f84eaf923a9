"""Tests of the S3 engine store (push-engine, fetch-engine, list-engines) against a real moto S3 server."""
