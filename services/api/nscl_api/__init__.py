"""The HTTP API of nscl."""
