"""The app tier: a worker takes batches of requests, classifies them and answers.

- ``loop``: the worker loop (receive a batch, hold it, handle it, survive its failures).
- ``batch``: the steps of one batch (parse, classify, store, reply, delete).
- ``lease``: extending the visibility of the requests in hand while the worker is alive.
- ``reply_queues``: the reply queues answered on, and which ones are gone for now.
- ``batching``: forming batches by size and wait, one result per item (pure).
- ``heartbeat``: a worker's state in the store, read by the fleets and the autoscaler.
- ``dead_letters``: answering requests whose workers kept dying.
- ``main``: the entry point of one worker process (``imgrec worker``).

Importing this package imports nothing else: the fleets read heartbeats without loading the
model.
"""
