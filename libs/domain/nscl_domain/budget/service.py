"""The budget context's job, by the names the job registry declares it under.

The use cases live by concern: ``estimates`` (open, write, read, review), ``routing``
(submission), ``dossiers`` (totals, dossiers, allocations) and ``spending``.
"""

from nscl_domain.budget.dossiers import BuildDossiersArgs, build_dossiers, check_dossier_build

__all__ = ["BuildDossiersArgs", "build_dossiers", "check_dossier_build"]
