"""The web app of a listening test (Starlette, served by uvicorn)."""

from .app import create_app

__all__ = ["create_app"]
