"""The AWS backend: S3 store, SQS queues, EC2 fleet, and ``imgrec aws up/status/down``.

boto3 is imported only inside this package (the ``aws`` extra installs it).
"""
