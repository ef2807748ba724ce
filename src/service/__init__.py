"""The recommendation service: an HTTP API over the serving bundle and an embedded event store.

Start it with ``bash scripts/serve.sh`` (= ``python -m src.service``); settings come from params.yaml's
``service:`` section and ``RECSYS_*`` environment variables (see ``settings.py``). This package imports
``src.recsys``; nothing in ``src.recsys`` imports it.
"""
