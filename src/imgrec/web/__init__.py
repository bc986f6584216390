"""The web tier: an ASGI app that stores uploads, queues requests and answers with labels."""
