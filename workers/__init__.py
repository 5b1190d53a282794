"""Celery side of the desk: the app (queues, routes, schedule) and its thin tasks."""
