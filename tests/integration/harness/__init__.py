"""Test harness for authshim's integration tests: real Squid / nginx / curl, a Python upload
origin, in-process fakes for what no real server does on demand, and the authshim process
itself. See conftest.py for the fixtures built from these pieces."""
