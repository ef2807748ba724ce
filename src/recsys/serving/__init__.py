"""What the online service answers from: the serving bundle, online candidates and blending.

Both the `serving`/`replay` stages and the HTTP service (``src/service``) import this package, so the
lists scored offline by the replay evaluation are built by exactly the code that serves them.
"""
