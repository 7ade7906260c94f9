"""Background jobs in the engine: long work (indexing, later orchestration runs and syncs).

Light: importing this package imports nothing heavy.  The pieces:

- :mod:`core.jobs.model`: a job's fields, states and allowed transitions (:class:`Job`);
- :mod:`core.jobs.handle`: what a running job's code sees (:class:`JobHandle`);
- :mod:`core.jobs.service`: the :class:`JobService` the engine holds as ``engine.jobs``:
  the registry of kinds, start, cancel, the scheduler, resume after a restart;
- :mod:`core.jobs.coalesce`: progress events at a bounded rate;
- :mod:`core.jobs.testkinds`: the ``test.count`` kind, registered only under the test hook
  ``MUSUBI_TEST_JOB_KINDS=1``.

docs/jobs.md describes the mechanism for users and for authors of new kinds.
"""

from core.jobs.handle import JobHandle
from core.jobs.model import ACTIVE, STATES, TERMINAL, Job
from core.jobs.service import JobKind, JobService, Runner

__all__ = ["ACTIVE", "STATES", "TERMINAL", "Job", "JobHandle", "JobKind", "JobService", "Runner"]
