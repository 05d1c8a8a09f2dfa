"""The engine as a process: its worker loop, the IPC messages to and from the gateway, the
failpoints tests inject, and the decode check run before trusting a CPU backend."""
