"""``chinwag chat``: a full-screen terminal client that speaks only the public HTTP API.

``commands`` parses what the user types, ``state`` keeps the token and the last
seen seq between runs, ``client`` talks HTTP, ``model`` turns queue items into
buffers (pure), ``render`` draws lines, and ``app`` (with ``widgets``) is the
textual UI on top; ``main`` holds the command-line options.
"""
