"""Queue layer: job records, the runners (embedded threads or Celery) and the task.

Nothing here does science: :func:`workers.tasks.run_job` calls
:func:`mer.pipeline.analyze_video` and records what happened.
"""
