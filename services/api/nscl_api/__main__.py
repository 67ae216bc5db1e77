"""`python -m nscl_api`: the `nscl` command where the project is not pip-installed (the image)."""

from nscl_api.cli import app

app(prog_name="nscl")
